# hold and release in every state, enqueue --hold, and how status, list, show and cancel
# see held jobs (SPEC section 7).
. "$QUEUECTL_TEST_LIB"

new_spool
q enqueue --id p --command 'true' >/dev/null
q enqueue --id h --command 'true' --hold >/dev/null
[ -f "$S/held/h.json" ] || fail "enqueue --hold did not put the job in held/"
assert_eq "$(state_of h)" held "state of an enqueue --hold job"
assert_eq "$(q status --json | json "j['held']")" 1 "held count"
expect 0 q status
assert_contains "$OUT" "held        1"
expect 0 q list --state held --json
assert_eq "$(printf '%s' "$OUT" | json "[x['id'] for x in j]")" "['h']" "list --state held"

# a drop-in no worker has seen is held as a job of queuectl's own (id, created_at)
printf '{"command":"true"}' >"$S/tmp/d"
mv "$S/tmp/d" "$S/pending/dropped.json"
expect 0 q hold dropped
assert_eq "$(json "(j['id'], j['state'], 'created_at' in j)" <"$S/held/dropped.json")" "('dropped', 'held', True)"
printf '{"command":"true","attempts":3}' >"$S/tmp/d"
mv "$S/tmp/d" "$S/pending/bad-drop.json"
expect 1 q hold bad-drop
assert_contains "$ERR" "not a valid job"
[ -f "$S/pending/bad-drop.json" ] || fail "a refused hold moved the file"
rm "$S/pending/bad-drop.json"

# pending -> held, with the content of the held state written before it arrives
expect 0 q hold p
assert_eq "$OUT" "held p"
[ -f "$S/held/p.json" ] && [ ! -f "$S/pending/p.json" ] || fail "hold did not move p to held/"
assert_eq "$(json "j['state']" <"$S/held/p.json")" held "held/p.json content"

# held, again: exit 1, nothing changed
before=$(cat "$S/held/p.json")
expect 1 q hold p
assert_one_error_line
assert_contains "$ERR" "it is held"
assert_eq "$(cat "$S/held/p.json")" "$before" "a refused hold changed the file"

# release: back to pending/, attempts kept
expect 0 q release p h
assert_eq "$OUT" "released p
released h"
[ -f "$S/pending/p.json" ] && [ -f "$S/pending/h.json" ] || fail "release did not move the jobs to pending/"
assert_eq "$(state_of p)" pending
expect 1 q release p
assert_contains "$ERR" "it is pending, not held"

# failed -> held: next_run_at kept while held, removed on release; attempts kept
q enqueue --id f --command 'exit 3' --max-retries 2 >/dev/null
q config set backoff-base 1000 >/dev/null
q hold p h >/dev/null
start_workers 1 # `dropped` stays held
wait_until 10 is_state f failed
q worker stop >/dev/null
expect 0 q hold f
assert_eq "$(state_of f)" held
assert_eq "$(json "j['attempts']" <"$S/held/f.json")" 1 "attempts of a held failed job"
assert_eq "$(json "'next_run_at' in j" <"$S/held/f.json")" True "next_run_at while held"
expect 0 q release f
assert_eq "$(json "j['attempts']" <"$S/pending/f.json")" 1 "attempts after release"
assert_eq "$(json "'next_run_at' in j" <"$S/pending/f.json")" False "next_run_at after release"

# a held job never starts; released, it runs. Held first at the highest priority, it
# would run before `z` if holding did nothing.
q enqueue --id r --command 'true' --priority 9 >/dev/null
q hold r >/dev/null
q cancel f >/dev/null
q enqueue --id z --command 'true' >/dev/null
start_workers 1
expect 0 q wait z --timeout $((10 * SLOW))
assert_eq "$(state_of r)" held "a held job was started"
q release r >/dev/null
wait_until 10 is_state r completed

# processing, completed, dead: hold and release refuse (exit 1)
q enqueue --id slow --command "touch $T/slow.started; sleep 30" >/dev/null
wait_until 10 test -f "$T/slow.started"
expect 1 q hold slow
assert_contains "$ERR" "it is processing"
expect 1 q hold r
assert_contains "$ERR" "it is completed"
expect 1 q hold f
assert_contains "$ERR" "it is dead"
expect 1 q release r
expect 1 q hold nosuch
assert_contains "$ERR" "no such job 'nosuch'"
# several ids: each is tried, the failure reported, exit 1
q enqueue --id h2 --command true --delay 3600 >/dev/null
expect 1 q hold h2 r
assert_eq "$OUT" "held h2"
assert_contains "$ERR" "it is completed"
expect 2 q hold 'bad id'

# cancel takes a held job to dead/
expect 0 q cancel h
assert_eq "$(state_of h)" dead
assert_eq "$(q show h | json "j['last_error']")" cancelled
q worker stop --now >/dev/null
