# Graceful stop waits for the running job; --now kills it; Ctrl-C reaches workers only.
. "$QUEUECTL_TEST_LIB"

start_workers 1
q enqueue "{\"id\":\"long\",\"command\":\"sleep 2; echo finished\"}" >/dev/null
wait_until 10 is_state long processing
T0=$(date +%s.%N)
expect 0 q worker stop
T1=$(date +%s.%N)
assert_eq "$(state_of long)" completed "job after a graceful stop"
assert_contains "$(q logs long)" "finished"
assert_eq "$(count workers)" 0
# A stopped worker takes no new job.
q enqueue --command true --id after >/dev/null
assert_eq "$(state_of after)" pending

# --now: the job's group gets SIGTERM; the run counts as failed.
q cancel after >/dev/null
start_workers 1
q enqueue "{\"id\":\"killme\",\"max_retries\":2,\"command\":\"sleep 603\"}" >/dev/null
wait_until 10 is_state killme processing
expect 0 q worker stop --now
q show killme >"$T/k.json"
assert_eq "$(json "j['state'], j['attempts'], j['exit_code']" <"$T/k.json")" "failed 1 143"
assert_contains "$(json "j['last_error']" <"$T/k.json")" "stop --now"
pgrep -fx 'sleep 603' >/dev/null && fail "the job's process survived stop --now"
q cancel killme >/dev/null

# Ctrl-C at the terminal: SIGINT to the foreground process group. Workers stop
# gracefully; the job (its own process group) is not interrupted.
q enqueue "{\"id\":\"ctrlc\",\"command\":\"sleep 2; echo survived\"}" >/dev/null
setsid sh -c "exec '$QUEUECTL' worker start --count 2" >"$T/fg.out" 2>"$T/fg.err" &
wait_until 10 is_state ctrlc processing
SUP=$(q worker status --json | json "j[0]['supervisor']")
kill -INT -- "-$SUP"
wait_until 20 not_alive $SUP
assert_eq "$(state_of ctrlc)" completed "job after Ctrl-C"
assert_contains "$(q logs ctrlc)" "survived"
# The foreground supervisor says where it runs and that it stops, on stderr only.
assert_eq "$(cat "$T/fg.out")" "" "supervisor stdout"
assert_contains "$(cat "$T/fg.err")" "2 workers running on $S; stop with Ctrl-C or 'queuectl worker stop'"
assert_contains "$(cat "$T/fg.err")" "stopping: running jobs finish first"
assert_eq "$(tail -n 1 "$T/fg.err" | sed -E 's/^([0-9TZ:.-]+ )?queuectl\[[0-9]*\]: //')" "stopped" "last line"
echo "ok"
