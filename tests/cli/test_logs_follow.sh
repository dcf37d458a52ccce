# logs --follow prints output as it comes and returns when the job is done or dead.
. "$QUEUECTL_TEST_LIB"

start_workers 1
q enqueue "{\"id\":\"talk\",\"command\":\"echo one; while [ ! -e $T/go ]; do sleep 0.05; done; echo two\"}" >/dev/null
q logs --follow talk >"$T/followed" &
F=$!
wait_until 10 grep -q one "$T/followed"
kill -0 $F || fail "logs --follow exited while the job runs"
touch "$T/go"
wait_until 10 sh -c "! kill -0 $F"
wait $F || fail "logs --follow exit status"
assert_contains "$(cat "$T/followed")" "two"
assert_contains "$(cat "$T/followed")" "completed"

# A job that fails for good: --follow returns once it is dead, with every run's output,
# and exits with the job's exit code, as wait does.
q enqueue '{"id":"bad","max_retries":1,"command":"echo try; exit 5"}' >/dev/null
q config set backoff-base 1
expect 5 timeout 30 "$QUEUECTL" logs -f bad
assert_eq "$(printf '%s\n' "$OUT" | grep -c '^try$')" 2 "output of both runs"
assert_eq "$(state_of bad)" dead
expect 1 q logs nosuch
assert_one_error_line
echo "ok"
