# cancel, purge and the dead-letter queue commands.
. "$QUEUECTL_TEST_LIB"

q enqueue --command true --id p1 >/dev/null
expect 0 q cancel p1
assert_eq "$(q show p1 | json "j['state'], j['last_error']")" "dead cancelled"
[ -f "$S/dead/p1.json" ] && [ ! -e "$S/pending/p1.json" ] || fail "cancel did not move the file"
# Cancel of a dead job: exit 1, nothing changed.
cp "$S/dead/p1.json" "$T/before"
expect 1 q cancel p1
assert_one_error_line
assert_contains "$ERR" "it is dead"
cmp -s "$S/dead/p1.json" "$T/before" || fail "failed cancel changed the file"
expect 1 q cancel nosuch
expect 2 q cancel 'bad/id'

# A failed job can be cancelled too (a file put in failed/ by hand, as a worker would).
printf '{"id":"f1","command":"false","attempts":1,"max_retries":3,"next_run_at":"2999-01-01T00:00:00Z"}\n' >"$S/failed/f1.json"
expect 0 q cancel f1
assert_eq "$(state_of f1)" dead

# dlq retry: back to pending, attempts 0, next_run_at gone, last_error kept.
printf '{"id":"d1","command":"false","attempts":4,"max_retries":3,"next_run_at":"2999-01-01T00:00:00Z","last_error":"exit status 1","exit_code":1,"state":"dead"}\n' >"$S/dead/d1.json"
echo "old output" >"$S/dead/d1.log"
expect 0 q dlq retry d1
assert_eq "$OUT" "retried d1"
assert_eq "$(q show d1 | json "j['state'], j['attempts'], 'next_run_at' in j, j['last_error'], j['exit_code']")" \
  "pending 0 False exit status 1 1"
[ -f "$S/pending/d1.log" ] || fail "the log did not follow the job"
expect 1 q dlq retry d1
assert_contains "$ERR" "not dead"
expect 2 q dlq retry
expect 2 q dlq retry d1 --all

# dlq retry --all
q cancel d1 >/dev/null
expect 0 q dlq retry --all
assert_eq "$(count dead)" 0
assert_eq "$(count pending)" 3

# purge: only completed or dead; age from updated_at.
printf '{"id":"old","command":"true","updated_at":"2000-01-01T00:00:00Z"}\n' >"$S/done/old.json"
echo out >"$S/done/old.log"
printf '{"id":"new","command":"true","updated_at":"2999-01-01T00:00:00Z"}\n' >"$S/done/new.json"
expect 0 q purge --state done --older-than 3600
assert_eq "$OUT" "purged 1 completed job"
assert_eq "$(files done)" "new.json"
expect 2 q purge --state pending
assert_one_error_line
expect 2 q purge
expect 2 q purge --state completed --older-than -5
expect 0 q purge --state completed
assert_eq "$(files done)" ""

# purge ID...: completed or dead jobs by id, with their logs; any other state or an
# unknown id is an error that changes nothing, and the other ids are still purged.
printf '{"id":"c1","command":"true","state":"completed"}\n' >"$S/done/c1.json"
echo out >"$S/done/c1.log"
q enqueue --command true --id w1 >/dev/null
q enqueue --command true --id x1 >/dev/null
q cancel x1 >/dev/null
cp "$S/pending/w1.json" "$T/w1.before"
expect 1 q purge c1 w1 nosuch x1
assert_eq "$OUT" "purged c1
purged x1"
assert_contains "$ERR" "cannot purge job 'w1': it is pending"
assert_contains "$ERR" "no such job 'nosuch'"
[ ! -e "$S/done/c1.json" ] && [ ! -e "$S/done/c1.log" ] && [ ! -e "$S/dead/x1.json" ] || fail "purge ID left files"
cmp -s "$S/pending/w1.json" "$T/w1.before" || fail "purge of a pending job changed it"
expect 2 q purge w1 --state dead
expect 2 q purge w1 --older-than 60
assert_one_error_line
q cancel w1 >/dev/null

# Purging a dead job that others wait for: they would run once it is gone (a purged job
# counts as completed), so they go to dead/ first, naming it, as a worker would send
# them; by id and by state, held jobs and delayed ones too.
q enqueue --id base1 --command true >/dev/null
q enqueue --id held1 --command true --after base1 --hold >/dev/null
q enqueue --id later1 --command true --after base1 --delay 1h >/dev/null
q enqueue --id other1 --command true >/dev/null
q cancel base1 >/dev/null
expect 0 q purge base1
assert_eq "$(q show held1 | json "j['state'], j['last_error']")" "dead dependency base1 failed"
assert_eq "$(q show later1 | json "j['state'], j['last_error']")" "dead dependency base1 failed"
assert_eq "$(state_of other1)" pending
q enqueue --id base2 --command true >/dev/null
q enqueue --id held2 --command true --after base2 --hold >/dev/null
q cancel base2 >/dev/null
expect 0 q dlq purge
assert_eq "$(q show held2 | json "j['state'], j['last_error']")" "dead dependency base2 failed"
expect 0 q dlq purge
q cancel other1 >/dev/null

# dlq purge removes the record and the .orig of an invalid drop-in.
printf 'garbage' >"$S/dead/g.json.orig"
printf '{"id":"g","command":"","state":"dead","original_file":"g.json.orig","last_error":"invalid JSON"}\n' >"$S/dead/g.json"
expect 1 q dlq retry g
assert_contains "$ERR" "invalid file"
expect 0 q dlq purge --older-than 0
assert_eq "$(files dead)" ""
echo "ok"
