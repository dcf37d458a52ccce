# Ctrl-C at a foreground supervisor's terminal (SIGINT to its whole process group) reaches the
# supervisor and its workers, never the jobs: each job runs in its own process group (SPEC 3).
# The workers then stop gracefully: no new job, the running ones finish, exit 0.
. "$QUEUECTL_TEST_LIB"

RUNS="$T/runs"
: >"$RUNS"
NEXT=1
# add N: drops N more jobs into pending/ (tmp/ then rename, as any program may). Each records its
# start and its end; they are short, so the workers spend much of their time claiming and starting
# jobs, where a Ctrl-C must not reach the job either. max_retries 0: a run that went wrong stays
# visible in dead/.
add() {
  python3 - "$S" "$RUNS" "$NEXT" "$1" <<'PY'
import json, os, sys
spool, runs, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for i in range(first, first + n):
    jid = "j%d" % i
    cmd = "echo s %s >>%s; echo e %s >>%s" % (jid, runs, jid, runs)
    tmp = os.path.join(spool, "tmp", jid + ".part")
    with open(tmp, "w") as f:
        json.dump({"command": cmd, "max_retries": 0}, f)
    os.rename(tmp, os.path.join(spool, "pending", jid + ".json"))
PY
  NEXT=$((NEXT + $1))
}
q config set max-retries 3 >/dev/null # creates the spool (the default value)
add 1200

# Few python3 runs per round (each costs ~0.1-0.2 s): plain text tools where they do.
# num KEY: the integer value of "KEY" in the JSON on stdin (the first one)
num() { grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }
nworkers() { q worker status --json | grep -o '"pid": *[0-9]*' | wc -l | tr -d ' '; }
ready() { [ "$(nworkers)" = 2 ]; }
lines() { wc -l <"$RUNS" | tr -d ' '; }
grown() { [ "$(lines)" -ge "$1" ]; }

MYPG=$(ps -o pgid= -p $$ | tr -d ' ')
ROUNDS=0
START=$SECONDS
while [ $ROUNDS -lt 30 ] && [ $((SECONDS - START)) -lt 20 ]; do
  ROUNDS=$((ROUNDS + 1))
  [ "$(q status --json | num pending)" -ge 600 ] || add 600
  # A foreground supervisor in its own session and process group, as at a terminal.
  setsid -w "$QUEUECTL" worker start --count 2 2>>"$T/supervisor.log" &
  PID=$!
  wait_until 20 ready
  SUP=$(q worker status --json | num supervisor)
  PGID=$(ps -o pgid= -p "$SUP" | tr -d ' ')
  [ -n "$PGID" ] && [ "$PGID" != "$MYPG" ] || fail "the supervisor is not in a process group of its own"
  # Ctrl-C while jobs keep starting: after a random number of further job starts and ends.
  wait_until 20 grown $(($(lines) + 1 + RANDOM % 24))
  kill -INT -- "-$PGID"
  wait_until 20 not_alive "$SUP"
  set +e
  wait "$PID"
  RC=$?
  set -e
  [ "$RC" = 0 ] || fail "round $ROUNDS: the supervisor exited $RC after Ctrl-C; log: $(tail -5 "$T/supervisor.log")"
  q status --json >"$T/st.json"
  if [ "$(num processing <"$T/st.json")$(num failed <"$T/st.json")$(num dead <"$T/st.json")" != 000 ]; then
    DETAIL=$(for st in dead failed processing; do q list --state $st --json; done | python3 -c "
import json, sys
d = json.JSONDecoder(); s = sys.stdin.read().strip(); out = []
while s:
    arr, n = d.raw_decode(s); s = s[n:].strip()
    out += ['%s %s exit_code=%s last_error=%s' % (x['id'], x.get('state'), x.get('exit_code'), x.get('last_error')) for x in arr]
print('; '.join(out))")
    fail "round $ROUNDS: after Ctrl-C: $(tr -d ' \n' <"$T/st.json"): $DETAIL; supervisor log: $(tail -8 "$T/supervisor.log")"
  fi
  # Every run that started ended, and none ran twice.
  BADRUNS=$(awk '{ n[$1 " " $2]++ } END { for (k in n) { split(k, a, " ");
      if (a[1] == "s" && !(("e " a[2]) in n)) print "no end: " a[2]; if (n[k] > 1) print "twice: " k } }' "$RUNS")
  [ -z "$BADRUNS" ] || fail "round $ROUNDS: $BADRUNS"
done
DONE=$(q status --json | num completed)
echo "$ROUNDS rounds of Ctrl-C, $DONE jobs completed"
[ "$DONE" -gt 0 ] || fail "no job ran"
echo "ok"
