# A worker runs a job to done/ with its log; status, worker status, foreground stop.
. "$QUEUECTL_TEST_LIB"

new_spool
expect 0 q worker status --json
assert_eq "$OUT" "[]"
expect 0 q worker status
assert_eq "$OUT" "no workers running"
expect 0 q worker start --detach --count 2
assert_eq "$(printf '%s\n' "$OUT" | wc -l)" 3 "printed PIDs (supervisor + 2 workers)"
SUP=$(printf '%s\n' "$OUT" | head -1)
kill -0 "$SUP" || fail "supervisor $SUP not running"
assert_eq "$(count workers)" 2 "workers in status"
q worker status --json >"$T/ws.json"
assert_eq "$(json "len(j), sorted(j[0].keys()), j[0]['supervisor'] == $SUP, j[0]['job']" <"$T/ws.json")" \
  "2 ['job', 'pid', 'since', 'supervisor'] True None"

# The detached processes hold no inherited stdio.
for pid in $(cat "$T/out"); do
  for fd in 0 1 2; do
    target=$(readlink "/proc/$pid/fd/$fd")
    case "$target" in /dev/null | "$S/workers/detached.log") ;; *) fail "pid $pid fd $fd is $target" ;; esac
  done
done

q enqueue '{"id":"hello","command":"echo out; echo err >&2; exit 0"}' >/dev/null
wait_until 10 is_state hello completed
q show hello >"$T/h.json"
assert_eq "$(json "j['attempts'], j['exit_code'], j['last_error'], j['state']" <"$T/h.json")" "1 0 None completed"
[ -f "$S/done/hello.log" ] || fail "log not beside the job in done/"
expect 0 q logs hello
assert_contains "$OUT" "out"
assert_contains "$OUT" "err"
assert_contains "$OUT" "attempt 1 of 4"

# While a job runs: it is in processing/ with its log, and worker status names it. The job
# runs until the test has looked (it waits for a file the test creates), however slow
# the machine.
q enqueue "{\"id\":\"slow\",\"command\":\"echo started; while [ ! -e '$T/go' ]; do sleep 0.05; done\"}" >/dev/null
wait_until 10 is_state slow processing
wait_until 10 test -f "$S/processing/slow.log"
assert_eq "$(q show slow | json "j['attempts'], j['state']")" "1 processing" "attempts while running"
# A run that lasts gets its start written into the file itself (after 50 ms).
raw_started() { [ "$(json "j['attempts'], j['state']" <"$S/processing/slow.json")" = "1 processing" ]; }
wait_until 10 raw_started
wait_until 10 sh -c "'$QUEUECTL' worker status --json | grep -q '\"slow\"'"
expect 0 q worker status
assert_contains "$OUT" "slow"
touch "$T/go"
wait_until 20 is_state slow completed

# Environment of a job: cwd and env honoured, QUEUECTL_JOB_ID set.
mkdir "$T/wd"
q enqueue "{\"id\":\"envjob\",\"command\":\"pwd; echo \$FOO \$QUEUECTL_JOB_ID\",\"cwd\":\"$T/wd\",\"env\":{\"FOO\":\"bar\"}}" >/dev/null
wait_until 10 is_state envjob completed
assert_contains "$(q logs envjob)" "$T/wd"
assert_contains "$(q logs envjob)" "bar envjob"

expect 0 q worker stop
assert_eq "$OUT" "stopped 2 worker processes"
assert_eq "$(count workers)" 0
alive "$SUP" && fail "supervisor still alive after worker stop"
expect 0 q worker stop
assert_eq "$OUT" "no workers were running"

# Foreground: SIGTERM stops it with exit 0.
"$QUEUECTL" worker start --count 1 >"$T/fg.out" 2>"$T/fg.err" &
FG=$!
wait_until 10 count_is workers 1
kill -TERM $FG
set +e
wait $FG
RC=$?
set -e
assert_eq "$RC" 0 "foreground supervisor exit status after SIGTERM"
assert_eq "$(count workers)" 0
echo "ok"
