# Named queues: a concurrency limit held across workers and supervisors and across
# kill -9, pause and resume, worker start --queue, queue list (SPEC section 7).
. "$QUEUECTL_TEST_LIB"

new_spool
expect 2 q queue set 'bad name' --concurrency 1
expect 2 q queue set solo --concurrency 0
expect 2 q enqueue --command true --queue 'a b'
expect 0 q queue set solo --concurrency 1
expect 0 q queue list --json
assert_eq "$(printf '%s' "$OUT" | json "[(x['queue'], x['concurrency'], x['paused']) for x in j]")" "[('solo', 1, False)]"

# Each job of `solo` takes a lock of its own while it runs (mkdir is atomic): a second one
# running at the same time finds it taken and says so. The `other` jobs must use the free
# workers meanwhile.
cat >"$T/solo.sh" <<SH
mkdir "$T/solo.lock" 2>/dev/null || echo "\$QUEUECTL_JOB_ID" >>"$T/overlap"
echo "\$QUEUECTL_JOB_ID" >>"$T/solo.ran"
sleep 0.2
[ -e "$T/other.ran" ] && touch "$T/other-during-solo"
rmdir "$T/solo.lock" 2>/dev/null || true
SH
for i in 1 2 3 4 5 6; do q enqueue --id "s$i" --queue solo --command "sh $T/solo.sh" >/dev/null; done
for i in 1 2 3 4 5 6; do q enqueue --id "o$i" --queue other --command "echo o >>$T/other.ran; sleep 0.1" >/dev/null; done
q worker start --detach --count 2 >"$T/pids1"
q worker start --detach --count 1 >"$T/pids2"
expect 0 q wait s1 s2 s3 s4 s5 s6 o1 o2 o3 o4 o5 o6 --timeout $((30 * SLOW))
[ ! -e "$T/overlap" ] || fail "two jobs of a queue limited to 1 ran at once: $(cat "$T/overlap")"
assert_eq "$(wc -l <"$T/solo.ran")" 6 "solo jobs run"
[ -e "$T/other-during-solo" ] || fail "no job of another queue ran while the limited queue's job ran"
expect 0 q queue list --json
assert_eq "$(printf '%s' "$OUT" | json "[(x['queue'], x['completed']) for x in j]")" "[('other', 6), ('solo', 6)]"

# kill -9 of the worker whose job holds the slot: the slot is free only once the orphaned
# command has ended, not before. `hold1` waits for a file; `next` (same queue) must not
# start meanwhile, though other workers are idle.
rm -f "$T/solo.ran"
q enqueue --id hold1 --queue solo --command "echo hold1 >>$T/solo.ran; while [ ! -e $T/go ]; do sleep 0.05; done" >/dev/null
wait_until 10 grep -qx hold1 "$T/solo.ran"
pid=$(q worker status --json | json "[w['pid'] for w in j if w['job'] == 'hold1'][0]")
kill -9 "$pid"
wait_until 10 not_alive "$pid"
q enqueue --id next --queue solo --command "echo next >>$T/solo.ran" >/dev/null
q enqueue --id marker --queue other --command true --priority -5 >/dev/null
expect 0 q wait marker --timeout $((10 * SLOW)) # the workers are up and have looked
! grep -qx next "$T/solo.ran" || fail "a job started while the orphaned command held the queue's only slot"
touch "$T/go"
expect 0 q wait next --timeout $((10 * SLOW))
assert_eq "$(state_of hold1)" failed "the killed worker's job"

# Pause: no new start; running jobs finish; resume starts them again, within ~100 ms.
q queue set solo --concurrency 4 >/dev/null
q queue pause solo
for i in 1 2 3; do q enqueue --id "p$i" --queue solo --command "echo p$i >>$T/paused.ran" >/dev/null; done
q enqueue --id m2 --queue other --command true --priority -5 >/dev/null
expect 0 q wait m2 --timeout $((10 * SLOW))
[ ! -e "$T/paused.ran" ] || fail "a job of a paused queue started"
assert_eq "$(count pending)" 3
expect 0 q queue list --json
assert_eq "$(printf '%s' "$OUT" | json "[x['paused'] for x in j if x['queue'] == 'solo'][0]")" True
t0=$(date +%s%N)
q queue resume solo
expect 0 q wait p1 p2 p3 --timeout $((10 * SLOW))
ms=$((($(date +%s%N) - t0) / 1000000))
echo "resume to three jobs done: $ms ms"

# Pause and resume take effect within 100 ms (the workers watch config.json): a stream of
# short jobs is paused; none starts later than the pause's return plus that bound (with
# some room for a start already under way on a loaded machine), and after resume the
# next one starts as soon.
q queue resume solo >/dev/null
for i in $(seq 1 60); do echo "{\"id\":\"st$i\",\"queue\":\"stream\",\"command\":\"date +%s%N >>$T/stream.starts; sleep 0.05\"}"; done |
  q enqueue - >/dev/null
wait_until 10 test -s "$T/stream.starts"
q queue pause stream
paused_at=$(date +%s%N)
q enqueue --id m4 --queue other --command true --priority -5 >/dev/null
expect 0 q wait m4 --timeout $((10 * SLOW)) # every worker has looked since
last=$(sort -n "$T/stream.starts" | tail -1)
late=$(((last - paused_at) / 1000000))
echo "last start after the pause returned: $late ms"
[ "$late" -le $((250 * SLOW)) ] || fail "a job of a paused queue started $late ms after the pause"
left=$(count pending)
[ "$left" -gt 0 ] || fail "the pause came too late to test anything"
n_before=$(wc -l <"$T/stream.starts")
resumed_at=$(date +%s%N)
q queue resume stream
started_again() { [ "$(wc -l <"$T/stream.starts")" -gt "$n_before" ]; } # counted at each try
wait_until 10 started_again
first=$(sort -n "$T/stream.starts" | awk -v t="$resumed_at" '$1 > t' | head -1)
echo "first start after resume: $(((first - resumed_at) / 1000000)) ms"
[ $(((first - resumed_at) / 1000000)) -le $((250 * SLOW)) ] || fail "resume took over $((250 * SLOW)) ms"
q queue pause stream >/dev/null # the rest stays waiting

# Pause while a job runs: it finishes; the next one waits.
q queue pause solo
q enqueue --id after-pause --queue solo --command true >/dev/null
q enqueue --id m3 --queue other --command true --priority -5 >/dev/null
expect 0 q wait m3 --timeout $((10 * SLOW))
assert_eq "$(state_of after-pause)" pending
q queue resume solo
expect 0 q wait after-pause --timeout $((10 * SLOW))
q worker stop >/dev/null

# worker start --queue: only those queues.
q enqueue --id only-a --queue a --command true >/dev/null
q enqueue --id only-b --queue b --command true >/dev/null
q worker start --detach --queue a >/dev/null
expect 0 q wait only-a --timeout $((10 * SLOW))
assert_eq "$(state_of only-b)" pending "a worker of queue a took a job of b"
q worker stop >/dev/null
expect 0 q list --queue b --json
assert_eq "$(printf '%s' "$OUT" | json "[x['id'] for x in j]")" "['only-b']"
expect 0 q queue unset solo --concurrency
expect 2 q worker start --queue 'x y'
