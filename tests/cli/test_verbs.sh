# The everyday verbs (SPEC section 5): cancel of a running job, retry of a finished one,
# logs --follow's exit status, help [COMMAND], -V.
. "$QUEUECTL_TEST_LIB"

# --- cancel a running job: its whole process group ends, it goes to dead/, no retry.
start_workers 1
q enqueue "{\"id\":\"long\",\"max_retries\":3,\"command\":\"sh -c 'echo \$\$ > $T/child; sleep 300' & echo \$! > $T/bg; echo started; wait\"}" >/dev/null
wait_until 10 test -s "$T/child"
CHILD=$(cat "$T/child")
alive "$CHILD" || fail "the job's child is not running"
expect 0 q cancel long
assert_eq "$OUT" "cancelled long"
# It returned only once the job was in dead/, its run recorded as cancelled.
assert_eq "$(q show long | json "j['state'], j['last_error'], j['attempts']")" "dead cancelled 1"
wait_until 5 not_alive "$CHILD"
[ ! -e "$S/workers/cancel-long" ] || fail "the cancel request was left behind"
assert_contains "$(q logs long)" "cancelled"
# The worker goes on with the next job.
q enqueue '{"id":"next","command":"true"}' >/dev/null
expect 0 q wait --timeout 30 next

# A job that ignores SIGTERM is killed after the grace.
q enqueue "{\"id\":\"stubborn\",\"command\":\"trap '' TERM; touch $T/s; while :; do sleep 0.1; done\"}" >/dev/null
wait_until 10 test -e "$T/s"
expect 0 q cancel stubborn
assert_eq "$(state_of stubborn)" dead

# The command of a job whose worker died: cancel ends it (its lock is the proof).
q worker stop >/dev/null
q enqueue "{\"id\":\"orphan\",\"command\":\"echo \$\$ > $T/orphan; exec sleep 300\"}" >/dev/null
start_workers 1
wait_until 10 test -s "$T/orphan"
OPID=$(cat "$T/orphan")
for p in $(cat "$T/pids"); do kill -9 "$p"; done
for p in $(cat "$T/pids"); do wait_until 10 not_alive "$p"; done
alive "$OPID" || fail "the orphaned command died with its worker"
expect 0 q cancel orphan
assert_eq "$(q show orphan | json "j['state'], j['last_error']")" "dead cancelled"
wait_until 5 not_alive "$OPID"

# Other states: pending and held as before; completed and dead refused, nothing changed.
expect 0 q enqueue --hold --command true --id h1
expect 0 q enqueue --command true --id p1
expect 0 q cancel h1 p1
assert_eq "$OUT" "cancelled h1
cancelled p1"
cp "$S/dead/p1.json" "$T/p1.before"
expect 1 q cancel p1 nosuch
assert_contains "$ERR" "it is dead"
assert_contains "$ERR" "no such job 'nosuch'"
cmp -s "$S/dead/p1.json" "$T/p1.before" || fail "a refused cancel changed the file"

# --- retry: a completed or a dead job runs again with attempts 0.
start_workers 1
q enqueue "{\"id\":\"again\",\"command\":\"echo run >> $T/runs\"}" >/dev/null
expect 0 q wait --timeout 30 again
# A completed and a dead job at once (the dead one is quick: a command that ends on its
# own; "long" would keep the one worker busy).
q enqueue '{"id":"quick","max_retries":0,"command":"exit 5"}' >/dev/null
expect 5 q wait --timeout 30 quick
expect 0 q retry again quick
assert_eq "$OUT" "retried again
retried quick"
expect 0 q wait --timeout 30 again
expect 5 q wait --timeout 30 quick
assert_eq "$(wc -l <"$T/runs")" 2 "runs of the retried job"
assert_eq "$(q show again | json "j['state'], j['attempts']")" "completed 1"
assert_eq "$(q show quick | json "j['state'], j['attempts']")" "dead 1"
# The cancelled job runs again, and is cancelled again.
expect 0 q retry long
wait_until 10 is_state long processing
expect 0 q cancel long
q enqueue '{"id":"waiting","command":"true","run_at":"2099-01-01T00:00:00Z"}' >/dev/null
cp "$S/pending/waiting.json" "$T/w.before"
expect 1 q retry waiting
assert_one_error_line
assert_contains "$ERR" "only completed and dead jobs can be retried"
cmp -s "$S/pending/waiting.json" "$T/w.before" || fail "a refused retry changed the file"
expect 1 q dlq retry again
assert_contains "$ERR" "not dead"
expect 2 q retry
assert_one_error_line

# --- logs --follow exits with the job's outcome, as wait does.
q enqueue '{"id":"seven","max_retries":0,"command":"echo out; exit 7"}' >/dev/null
expect 7 timeout 30 "$QUEUECTL" --spool "$S" logs --follow seven
assert_contains "$OUT" "out"
expect 0 timeout 30 "$QUEUECTL" --spool "$S" logs --follow again
# Cancelled, while it ran or before: no exit code of its own, so 1 (as wait says).
expect 1 timeout 30 "$QUEUECTL" --spool "$S" logs --follow long
assert_eq "$(q show long | json "j['exit_code']")" None
expect 1 timeout 30 "$QUEUECTL" --spool "$S" logs --follow p1

# --- help [COMMAND] and -V.
expect 0 q help
assert_contains "$OUT" "Usage:"
assert_contains "$OUT" "enqueue"
expect 0 q help worker start
assert_contains "$OUT" "--count"
assert_eq "$OUT" "$("$QUEUECTL" worker start --help)" "help worker start is worker start --help"
expect 2 q help wrker
assert_one_error_line
assert_contains "$ERR" "did you mean 'worker'"
expect 0 "$QUEUECTL" -V
assert_contains "$OUT" "queuectl "
echo "ok"
