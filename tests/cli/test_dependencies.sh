# after: checked at enqueue, jobs start only once what they come after has completed,
# and a dead dependency kills its dependents, transitively (SPEC section 7).
. "$QUEUECTL_TEST_LIB"

new_spool
# Checked at enqueue: an unknown id, the job itself, a later line: exit 1, nothing enqueued.
expect 1 q enqueue --command true --after nosuch
assert_one_error_line
assert_contains "$ERR" "no such job 'nosuch'"
expect 1 q enqueue '{"id":"self","command":"true","after":["self"]}'
assert_contains "$ERR" "cannot come after itself"
expect 2 q enqueue --command true --after 'bad id'
expect 2 q enqueue '{"command":"true","after":"x"}'
expect 1 q enqueue - <<'IN'
{"id":"l1","command":"true","after":["l2"]}
{"id":"l2","command":"true"}
IN
assert_contains "$ERR" "line 1: no such job 'l2'"
assert_eq "$(count pending)" 0 "jobs enqueued by a refused batch"
# On a new spool only earlier lines can be named; nothing is created otherwise.
expect 1 q --spool "$T/new" enqueue --command true --after x
[ ! -e "$T/new" ] || fail "a refused enqueue created a spool"

# A diamond and a chain, enqueued before any worker runs, each job appending its name.
log="$T/order"
job() { printf '{"id":"%s","command":"echo %s >> %s","after":%s}\n' "$1" "$1" "$log" "$2"; }
{
  job d0 '[]'
  job d1 '["d0"]'
  job d2 '["d0"]'
  job d3 '["d1","d2"]'
  job c0 '[]'
  for i in 1 2 3 4 5; do job "c$i" "[\"c$((i - 1))\"]"; done
} >"$T/batch"
expect 0 q enqueue - <"$T/batch"
# Priority would run d3 first if dependencies were ignored.
q enqueue --id top --command "echo top >> $log" --priority 9 --after d3 >/dev/null
expect 0 q list --state pending
assert_contains "$OUT" "(after: d1, d2)"
start_workers 2
expect 0 q wait d3 c5 top --timeout $((20 * SLOW))
pos() { grep -nx "$1" "$log" | cut -d: -f1; }
for pair in d0:d1 d0:d2 d1:d3 d2:d3 d3:top c0:c1 c1:c2 c2:c3 c3:c4 c4:c5; do
  a=${pair%:*} b=${pair#*:}
  [ "$(pos "$a")" -lt "$(pos "$b")" ] || fail "$b ran before $a: $(tr '\n' ' ' <"$log")"
done
assert_eq "$(wc -l <"$log")" 11 "jobs run"

# A dead dependency: its dependents go to dead/ without running, transitively, naming it.
q enqueue --id bad --command 'exit 4' --max-retries 0 --delay 1 >/dev/null
q enqueue --id x1 --command "echo x1 >> $log" --after bad >/dev/null
q enqueue --id x2 --command "echo x2 >> $log" --after x1 >/dev/null
q enqueue --id x3 --command "echo x3 >> $log" --after x2 --after c5 >/dev/null
expect 4 q wait bad x3 --timeout $((20 * SLOW)) # the first listed dead job decides: exit 4
expect 1 q wait x3 bad # x3 never ran: no exit code
for x in x1 x2 x3; do
  assert_eq "$(state_of $x)" dead "state of $x"
done
assert_eq "$(q show x1 | json "j['last_error']")" "dependency bad failed"
assert_eq "$(q show x3 | json "j['last_error']")" "dependency x2 failed"
! grep -q '^x' "$log" || fail "a job whose dependency died ran"

# A dependency that completes while its dependent waits (an event, not a poll): a held
# job released later. `low` runs after `after-late` unless after-late is kept waiting.
q enqueue --id late --command true --hold >/dev/null
q enqueue --id after-late --command "echo after-late >> $log" --after late >/dev/null
q enqueue --id low --command true --priority -1 >/dev/null
expect 0 q wait low --timeout $((10 * SLOW))
assert_eq "$(state_of after-late)" pending "a job ran before its dependency"
q release late >/dev/null
expect 0 q wait after-late --timeout $((10 * SLOW))

# A dependency purged after it completed counts as completed.
q enqueue --id p1 --command true >/dev/null
q enqueue --id p2 --command "echo p2 >> $log" --after p1 --delay $((2 * SLOW)) >/dev/null
expect 0 q wait p1 --timeout $((10 * SLOW))
q purge --state completed >/dev/null
expect 0 q wait p2 --timeout $((10 * SLOW))
grep -qx p2 "$log" || fail "p2 did not run after its purged dependency"

# A cancelled (dead) dependency of a job that waits already.
q enqueue --id k1 --command true --hold >/dev/null
q enqueue --id k2 --command "echo k2 >> $log" --after k1 >/dev/null
q cancel k1 >/dev/null
expect 1 q wait k2 --timeout $((10 * SLOW))
assert_eq "$(q show k2 | json "j['last_error']")" "dependency k1 failed"
