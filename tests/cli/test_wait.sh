# wait and enqueue --wait: the exit codes of SPEC section 7, and no CPU while waiting.
. "$QUEUECTL_TEST_LIB"

new_spool
expect 1 q wait nosuch
assert_one_error_line
assert_contains "$ERR" "no such job 'nosuch'"
expect 2 q wait
expect 2 q wait 'bad id'

q enqueue --id ok --command true >/dev/null
q enqueue --id three --command 'exit 3' --max-retries 0 >/dev/null
q enqueue --id cancelled --command true --hold >/dev/null
q cancel cancelled >/dev/null
q enqueue --id later --command true --hold >/dev/null

# A timeout: 124, the unfinished jobs named; and no CPU spent over a 2 s wait (a poll
# loop would show). Python measures the child's CPU time.
python3 - "$QUEUECTL" <<'PY' || fail "wait --timeout"
import resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run([sys.argv[1], "wait", "later", "--timeout", "2"], capture_output=True, text=True)
took = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
assert p.returncode == 124, (p.returncode, p.stderr)
assert "later" in p.stderr and "timed out" in p.stderr, p.stderr
assert p.stderr.count("\n") == 1, p.stderr
assert took >= 2, took
assert cpu < 0.1, f"wait used {cpu:.3f} s of CPU in a 2 s wait"
PY

# Finished already: no waiting.
start_workers 1
expect 0 q wait ok --timeout $((10 * SLOW))
expect 3 q wait three --timeout $((10 * SLOW))
expect 1 q wait cancelled
# The first listed dead job decides.
expect 3 q wait ok three cancelled
expect 1 q wait cancelled three
# Waiting on a job that finishes later: woken by its arrival in done/.
q release later >/dev/null
expect 0 q wait later --timeout $((10 * SLOW))

# enqueue --wait: the id, then the job's outcome as the exit status.
expect 0 q enqueue --id w1 --command 'echo hi' --wait
assert_eq "$OUT" "w1"
expect 7 q enqueue --command 'exit 7' --max-retries 0 --wait
expect 0 q enqueue --wait - <<'IN'
{"id":"b1","command":"true"}
{"id":"b2","command":"true","after":["b1"]}
IN
assert_eq "$OUT" "b1
b2"
expect 0 sh -c "'$QUEUECTL' enqueue --command true --wait >/dev/null && echo deployed >'$T/deployed'"
[ -f "$T/deployed" ] || fail "enqueue --wait && ... did not go on"
