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
# loop would show): its CPU time is that of a wait that gives up at once (the start and
# exit of the process, which a sanitizer build makes costly), plus next to nothing.
python3 - "$QUEUECTL" <<'PY' || fail "wait --timeout"
import resource, subprocess, sys, time

def timed(timeout):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run([sys.argv[1], "wait", "later", "--timeout", timeout], capture_output=True, text=True)
    took = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert p.returncode == 124, (p.returncode, p.stderr)
    assert "later" in p.stderr and "timed out" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1, p.stderr
    return took, cpu

_, base = timed("0")
took, cpu = timed("2")
assert took >= 2, took
assert cpu - base < 0.05, f"wait used {cpu:.3f} s of CPU in a 2 s wait, {base:.3f} s when it gives up at once"
print(f"CPU of a 2 s wait: {cpu:.3f} s; of one that gives up at once: {base:.3f} s")
PY

# Woken by events, not a loop: a 2 s wait makes one poll(2) call, not one per tick.
strace -f -qq -e trace=poll,ppoll -o "$T/polls" "$QUEUECTL" wait later --timeout 2 2>/dev/null && fail "wait did not time out"
polls=$(grep -c 'poll(' "$T/polls")
[ "$polls" -le 2 ] || fail "a 2 s wait made $polls poll calls: $(head -5 "$T/polls")"

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
