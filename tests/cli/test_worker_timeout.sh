# A timeout kills the job's whole process group.
. "$QUEUECTL_TEST_LIB"

start_workers 1
q enqueue "{\"id\":\"slow\",\"timeout\":1,\"max_retries\":0,\"command\":\"sleep 300 & echo \$! >$T/child; sleep 300\"}" >/dev/null
wait_until 15 is_state slow dead
q show slow >"$T/s.json"
assert_eq "$(json "j['last_error'], j['exit_code']" <"$T/s.json")" "timeout 143"
CHILD=$(cat "$T/child")
wait_until 5 sh -c "! kill -0 $CHILD"

# A job that ignores SIGTERM is killed after the grace period.
q enqueue "{\"id\":\"stubborn\",\"timeout\":0.5,\"max_retries\":0,\"command\":\"trap '' TERM; sleep 300\"}" >/dev/null
wait_until 15 is_state stubborn dead
assert_eq "$(q show stubborn | json "j['last_error']")" "timeout"
# Config supplies the default timeout.
q config set timeout 1
q enqueue '{"id":"deflt","max_retries":0,"command":"sleep 300"}' >/dev/null
wait_until 15 is_state deflt dead
assert_eq "$(q show deflt | json "j['timeout'], j['last_error']")" "1 timeout"
echo "ok"
