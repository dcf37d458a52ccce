# Priority, then FIFO; delayed and scheduled jobs wait for their time.
. "$QUEUECTL_TEST_LIB"

ORDER="$T/order"
add() { q enqueue "{\"id\":\"$1\",\"priority\":$2,\"command\":\"echo $1 >>$ORDER\"}" >/dev/null; }
add low1 0
add high1 10
add low2 0
add mid1 5
add high2 10
add neg -1
start_workers 1
wait_until 20 count_is completed 6
assert_eq "$(tr '\n' ' ' <"$ORDER")" "high1 high2 mid1 low1 low2 neg " "run order"
q worker stop >/dev/null

# Two workers index the waiting jobs once, in their supervisor: the order holds there
# too. The urgent job is the newest; each job takes a second, so if the two workers did
# not both start with it first, two other jobs would be recorded before it.
ORDER2="$T/order2"
for i in 1 2 3 4 5 6; do
  q enqueue --id "batch$i" --command "echo batch$i >>$ORDER2; sleep 1" >/dev/null
done
q enqueue --id urgent --priority 9 --command "echo urgent >>$ORDER2; sleep 1" >/dev/null
start_workers 2
wait_until 30 count_is completed 13
head -2 "$ORDER2" | grep -qx urgent || fail "urgent job not among the first two started: $(tr '\n' ' ' <"$ORDER2")"
head -3 "$ORDER2" | grep -qx batch1 || fail "oldest job not among the first three: $(tr '\n' ' ' <"$ORDER2")"

# Delayed: not before its time, and soon after it.
NOW=$(date +%s.%N)
q enqueue --command "date +%s.%N >$T/delayed" --delay 2 --id delayed >/dev/null
assert_eq "$(state_of delayed)" pending
wait_until 15 is_state delayed completed
python3 -c "import sys; d=float(open('$T/delayed').read())-$NOW; print('delay', d); sys.exit(0 if 1.95 <= d <= 6 else 1)" ||
  fail "delayed job ran at the wrong time"

# Scheduled with --run-at; a later, higher-priority scheduled job does not block it.
AT=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%S.%NZ)
q enqueue --command "date +%s.%N >$T/sched" --run-at "$AT" --id sched >/dev/null
q enqueue --command true --run-at "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" --priority 99 --id future >/dev/null
wait_until 15 is_state sched completed
python3 - "$AT" "$(cat "$T/sched")" <<'PY' || fail "scheduled job ran at the wrong time"
import sys, datetime
at = datetime.datetime.fromisoformat(sys.argv[1][:26] + "+00:00").timestamp()
ran = float(sys.argv[2])
print("late by", ran - at)
sys.exit(0 if -0.05 <= ran - at <= 4 else 1)
PY
assert_eq "$(state_of future)" pending
echo "ok"
