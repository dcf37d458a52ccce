# What a user at a terminal sees and does: Ctrl-C during 'enqueue -' takes back what it
# wrote; a second Ctrl-C on a foreground 'worker start' kills the running jobs; detached
# workers' log lines carry a time; an empty list says so and states are in colour on a
# terminal (not in a pipe, not with NO_COLOR).
. "$QUEUECTL_TEST_LIB"

# A non-interactive shell starts background jobs with SIGINT ignored; a terminal's
# Ctrl-C reaches a process whose SIGINT is not. This runs a command the way a shell at a
# terminal would: SIGINT at its default, in a process group of its own (setsid).
with_sigint() {
  exec setsid python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# --- Ctrl-C while 'enqueue -' writes: nothing is enqueued, and tmp/ keeps nothing of it.
q enqueue --id before --command true >/dev/null
# Enough lines that writing them lasts seconds (fewer in the slower sanitizer build).
seq 1 $((150000 / SLOW)) | sed 's/.*/{"command":"echo &"}/' >"$T/lines"
with_sigint "$QUEUECTL" --spool "$S" enqueue - <"$T/lines" >"$T/ids" 2>"$T/err" &
E=$!
wait_until 20 sh -c "ls -f '$S/tmp' | grep -q '^\.queuectl\.$E\.'"
kill -INT "$E"
rc=0
wait "$E" || rc=$?
assert_eq "$rc" 130 "exit status of an interrupted enqueue (128 + SIGINT)"
assert_eq "$(ls -A "$S/tmp" | grep -c "^\.queuectl\.$E\.")" 0 "temporaries left in tmp/"
assert_eq "$(ls "$S/pending")" "before.json" "pending/ after an interrupted enqueue"
[ ! -s "$T/ids" ] || fail "an interrupted enqueue printed ids"

# --- A foreground supervisor: the first Ctrl-C lets the running job finish and says how
# to force; the second kills it.
q enqueue "{\"id\":\"long\",\"max_retries\":0,\"command\":\"echo \$\$ > $T/long; exec sleep 300\"}" >/dev/null
with_sigint "$QUEUECTL" --spool "$S" worker start --count 1 2>"$T/sup.err" &
P=$!
wait_until 20 test -s "$T/long"
JOB=$(cat "$T/long")
kill -INT -- "-$P" # as a terminal sends it: to the whole foreground group
wait_until 10 grep -q "Ctrl-C again to kill them now" "$T/sup.err"
alive "$JOB" || fail "the first Ctrl-C ended the running job"
alive "$P" || fail "the supervisor exited with a job still running"
kill -INT -- "-$P"
rc=0
wait "$P" || rc=$?
assert_eq "$rc" 0 "the supervisor's exit status"
wait_until 5 not_alive "$JOB"
assert_eq "$(q show long | json "j['state'], j['last_error']")" "dead stopped by 'queuectl worker stop --now'"
assert_contains "$(cat "$T/sup.err")" "stopping now"

# --- detached.log: each line starts with its time.
start_workers 1
q worker stop >/dev/null
LOG="$S/workers/detached.log"
[ -s "$LOG" ] || fail "no detached.log"
bad=$(grep -cvE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z queuectl\[[0-9]+\]: ' "$LOG" || true)
assert_eq "$bad" 0 "lines of detached.log without a time: $(head -3 "$LOG")"

# --- A terminal: an empty list says so; states in colour, unless NO_COLOR is set.
on_tty() { # COMMAND...: run it on a pseudo-terminal, print what it wrote there
  script -qec "$(printf '%q ' "$@")" /dev/null </dev/null | tr -d '\r'
}
assert_eq "$(on_tty "$QUEUECTL" --spool "$S" list --state failed)" "no failed jobs"
assert_eq "$(q list --state failed)" "" "an empty list in a pipe"
out=$(on_tty "$QUEUECTL" --spool "$S" list)
assert_contains "$out" $'\033[1;31mdead'
out=$(on_tty env NO_COLOR=1 "$QUEUECTL" --spool "$S" list)
case "$out" in *$'\033'*) fail "colour with NO_COLOR set: $out" ;; esac
case "$(q list)" in *$'\033'*) fail "colour in a pipe" ;; esac
out=$(on_tty "$QUEUECTL" --spool "$S" show nosuch 2>&1)
assert_contains "$out" $'queuectl: \033[1;31merror\033[0m: no such job'

# --- 'enqueue -' on a terminal that lasts over a second shows its progress on stderr,
# and clears it: stdout has the ids alone.
N=$((100000 * 2 / (SLOW + 1)))
seq 1 $N | sed 's/.*/{"command":"echo &"}/' >"$T/batch"
out=$(on_tty sh -c "'$QUEUECTL' --spool '$S' enqueue - <'$T/batch' >'$T/batch.ids'")
assert_contains "$out" "queuectl: enqueue: "
assert_contains "$out" " of $N jobs written"
assert_eq "$(wc -l <"$T/batch.ids")" "$N" "ids printed"
head -5000 "$T/lines" | q enqueue - 2>"$T/quiet" >/dev/null
assert_eq "$(cat "$T/quiet")" "" "progress when stderr is not a terminal"

# --- 'worker start --detach' on a terminal: while the supervisor reads the spool for its
# workers, past the first second, how far it is; stdout keeps the PIDs alone. Without
# pending.index every job's file is read. How long that takes depends on the machine:
# a start over 1.5 s must have shown progress, one under a second none.
q queue pause default >/dev/null # the workers run nothing
rm -f "$S/pending.index"
t0=$(date +%s%N)
out=$(on_tty sh -c "'$QUEUECTL' --spool '$S' worker start --detach --count 2 >'$T/pids'")
took=$((($(date +%s%N) - t0) / 1000000))
q worker stop >/dev/null
assert_eq "$(grep -cx '[0-9]*' "$T/pids")" 3 "PIDs printed by worker start --detach"
echo "worker start --detach on $(ls -f "$S/pending" | wc -l) files: $took ms"
if [ "$took" -ge 1500 ]; then
  assert_contains "$out" "queuectl: worker start: reading the waiting jobs: "
  assert_contains "$out" " so far"
elif [ "$took" -lt 1000 ]; then
  assert_eq "$out" "" "progress of a start under a second"
fi
q worker start --detach 2>"$T/quiet" >/dev/null
q worker stop >/dev/null
assert_eq "$(grep -c 'reading the waiting' "$T/quiet")" 0 "progress when stderr is not a terminal"
echo "ok"
