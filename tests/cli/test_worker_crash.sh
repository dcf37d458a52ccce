# kill -9: the job is recovered, and a command still alive is never started twice.
. "$QUEUECTL_TEST_LIB"

q config set backoff-base 1
RUNS="$T/runs"
# Each run records its start and end; a run lasts until the test creates $T/go, so the
# first one is still running while the test looks, however slow the machine.
q enqueue "{\"id\":\"crash\",\"max_retries\":3,\"command\":\"echo start \$(date +%s.%N) >>$RUNS; while [ ! -e $T/go ]; do sleep 0.05; done; echo end \$(date +%s.%N) >>$RUNS\"}" >/dev/null
start_workers 1
wait_until 10 grep -q start "$RUNS"
W=$(q worker status --json | json "j[0]['pid']")
kill -9 "$W"
# The supervisor replaces the worker; the command is still running and holds the lock.
wait_until 10 sh -c "'$QUEUECTL' worker status --json | grep -q '\"pid\"' && ! '$QUEUECTL' worker status --json | grep -q '\"pid\": $W,'"
assert_eq "$(state_of crash)" processing "state while the orphaned command runs"
assert_eq "$(grep -c start "$RUNS")" 1 "runs while the orphaned command runs"
touch "$T/go"
wait_until 30 is_state crash completed
q show crash >"$T/c.json"
assert_eq "$(json "j['attempts']" <"$T/c.json")" 2 "attempts (the lost run counts)"
assert_eq "$(grep -c start "$RUNS")" 2 "runs"
python3 - "$RUNS" <<'PY' || fail "runs overlapped: $(cat "$RUNS")"
import sys
ev = [l.split() for l in open(sys.argv[1])]
starts = [float(t) for k, t in ev if k == "start"]
ends = [float(t) for k, t in ev if k == "end"]
# The second run started only after the first command ended.
sys.exit(0 if len(ends) == 2 and starts[1] >= ends[0] else 1)
PY

# kill -9 of the worker and its job together: recovered within 5 s, retried.
q enqueue "{\"id\":\"both\",\"max_retries\":1,\"command\":\"test -e $T/second || { touch $T/second; sleep 601; }\"}" >/dev/null
wait_until 10 test -e "$T/second"
W=$(q worker status --json | json "[w['pid'] for w in j if w['job'] == 'both'][0]")
JOBPG=$(ps -o pgid= -p "$(pgrep -f "^sleep 60[12]$" | head -1)" | tr -d ' ')
kill -9 "$W"
kill -9 -- "-$JOBPG"
T0=$SECONDS
wait_until 15 is_state both completed
[ $((SECONDS - T0)) -le 12 ] || fail "recovery took $((SECONDS - T0)) s"
assert_eq "$(q show both | json "j['attempts']")" 2

# A dead worker out of retries goes to dead/ with "worker died".
q enqueue "{\"id\":\"last\",\"max_retries\":0,\"command\":\"sleep 602\"}" >/dev/null
wait_until 10 is_state last processing
W=$(q worker status --json | json "[w['pid'] for w in j if w['job'] == 'last'][0]")
JOBPG=$(ps -o pgid= -p "$(pgrep -f "^sleep 60[12]$" | head -1)" | tr -d ' ')
kill -9 "$W"
kill -9 -- "-$JOBPG"
wait_until 15 is_state last dead
assert_eq "$(q show last | json "j['last_error']")" "worker died"

# kill -9 of the supervisor: its workers notice and exit; a new one recovers.
SUP=$(head -1 "$T/pids")
kill -9 "$SUP"
wait_until 15 count_is workers 0
echo "ok"
