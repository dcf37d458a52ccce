# Retries with exponential backoff, then dead/; dlq retry runs it again.
. "$QUEUECTL_TEST_LIB"

q config set backoff-base 2
RUNS="$T/runs"
# Each run appends its start time; fails until the marker exists.
q enqueue "{\"id\":\"flaky\",\"max_retries\":2,\"command\":\"date +%s.%N >>$RUNS; test -e $T/fixed\"}" >/dev/null
start_workers 1
wait_until 30 is_state flaky dead
assert_eq "$(wc -l <"$RUNS")" 3 "runs (max_retries 2 = 3 runs)"
q show flaky >"$T/f.json"
assert_eq "$(json "j['attempts'], j['exit_code'], j['last_error']" <"$T/f.json")" "3 1 exit status 1"
# Gaps: 2^1 = 2 s, then 2^2 = 4 s (generous upper bounds for a loaded machine).
python3 - "$RUNS" <<'PY' || fail "backoff gaps wrong: $(cat "$RUNS")"
import sys
t = [float(x) for x in open(sys.argv[1])]
g1, g2 = t[1] - t[0], t[2] - t[1]
print("gaps", g1, g2)
sys.exit(0 if 1.9 <= g1 <= 5 and 3.9 <= g2 <= 8 else 1)
PY
assert_eq "$(grep -c 'attempt' "$S/dead/flaky.log")" 3 "run headers in the log"

# dlq retry: attempts reset, runs again, succeeds this time.
touch "$T/fixed"
expect 0 q dlq retry flaky
wait_until 10 is_state flaky completed
assert_eq "$(wc -l <"$RUNS")" 4 "runs after dlq retry"
assert_eq "$(q show flaky | json "j['attempts'], j['exit_code'], j['last_error']")" "1 0 None"

# max_retries 0: one run, straight to dead.
q enqueue "{\"id\":\"once\",\"max_retries\":0,\"command\":\"echo x >>$T/once; exit 7\"}" >/dev/null
wait_until 10 is_state once dead
assert_eq "$(wc -l <"$T/once")" 1
assert_eq "$(q show once | json "j['exit_code']")" 7
# A job killed by a signal reports 128+N.
q enqueue '{"id":"sig","max_retries":0,"command":"kill -9 $$"}' >/dev/null
wait_until 10 is_state sig dead
assert_eq "$(q show sig | json "j['exit_code'], j['last_error']")" "137 killed by signal 9 (SIGKILL)"
q worker stop >/dev/null

# A retry is not hidden from an idle worker by its stale entry for the same job. Worker B
# is busy when job x arrives, so B indexes x as pending; worker A runs x, which fails,
# and then takes a long job. When B is free, x's retry must be B's to run, not wait
# for A to finish (10 s) or for B's next full rescan (60 s).
XRUNS="$T/xruns"
q enqueue --id b1 --command "sleep 3" >/dev/null
start_workers 1
wait_until 10 is_state b1 processing
q enqueue "{\"id\":\"x\",\"priority\":9,\"max_retries\":1,\"command\":\"date +%s.%N >>$XRUNS; exit 1\"}" >/dev/null
q enqueue --id long --priority 1 --command "sleep 10" >/dev/null
start_workers 1
wait_until 30 is_state x dead
python3 - "$XRUNS" <<'PY' || fail "retry of x waited for the busy worker: $(cat "$XRUNS")"
import sys
t = [float(x) for x in open(sys.argv[1])]
print("retry gap", t[1] - t[0])
sys.exit(0 if len(t) == 2 and 1.9 <= t[1] - t[0] <= 7 else 1)
PY
echo "ok"
