# enqueue: the three input forms, defaults from config, durable files, ids.
. "$QUEUECTL_TEST_LIB"

expect 0 q enqueue '{"id":"job1","command":"sleep 2"}'
assert_eq "$OUT" "job1" "printed id"
assert_eq "$ERR" "" "stderr"
[ -f "$S/pending/job1.json" ] || fail "job file not in pending/"
assert_eq "$(stat -c %a "$S")" 700 "spool mode"
assert_eq "$(stat -c %a "$S/pending")" 700 "pending mode"
assert_eq "$(files tmp)" "" "tmp/ after enqueue"
q show job1 >"$T/show.json"
assert_eq "$(json "j['command'], j['state'], j['attempts'], j['max_retries'], j['priority'], j['timeout'], j['exit_code'], j['last_error']" <"$T/show.json")" \
  "sleep 2 pending 0 3 0 0 None None" "stored fields"
# created_at: RFC 3339 UTC with microseconds
json "j['created_at']" <"$T/show.json" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$' ||
  fail "created_at format"

# --cwd (made absolute) and --env (added to the object's env; each flag wins for its name).
mkdir -p "$T/work dir"
expect 0 sh -c "cd '$T/work dir' && exec '$QUEUECTL' --spool '$S' enqueue --command pwd --cwd ./ --env A=1 --env 'B=x=y' --id wd1"
q show wd1 >"$T/wd1.json"
assert_eq "$(json "j['cwd'], j['env']" <"$T/wd1.json")" "$T/work dir {'A': '1', 'B': 'x=y'}"
expect 0 q enqueue '{"id":"wd2","command":"true","env":{"A":"0","C":"3"}}' --env A=1
assert_eq "$(q show wd2 | json "j['env']")" "{'A': '1', 'C': '3'}"
for bad in '--env A' '--env =v' "--cwd $T/nowhere" "--cwd $T/wd1.json"; do
  expect 2 q enqueue --command true $bad
  assert_one_error_line
done
assert_eq "$(files pending)" "job1.json wd1.json wd2.json" "pending/ after refused flags"

# --command with flags; config supplies defaults for what is not given.
q config set max-retries 5
q config set priority 2
expect 0 q enqueue --command 'echo "a b"' --timeout 1.5 --delay 60
ID=$OUT
q show "$ID" >"$T/j.json"
assert_eq "$(json "j['command'], j['max_retries'], j['priority'], j['timeout']" <"$T/j.json")" 'echo "a b" 5 2 1.5'
python3 - "$T/j.json" <<'PY' || fail "run_at should be about 60 s after created_at"
import json, sys, datetime
j = json.load(open(sys.argv[1]))
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
d = (p(j["run_at"]) - p(j["created_at"])).total_seconds()
sys.exit(0 if 59 <= d <= 61 else 1)
PY
expect 0 q enqueue --command true --run-at 2030-01-01T00:00:00+01:00 --priority -4 --max-retries 0 --id sched
q show sched >"$T/s.json"
assert_eq "$(json "j['run_at'], j['priority'], j['max_retries']" <"$T/s.json")" "2029-12-31T23:00:00.000000Z -4 0"

# Generated ids sort in creation order.
A=$(q enqueue --command true)
B=$(q enqueue --command true)
[ "$A" \< "$B" ] || fail "ids not time-ordered: $A then $B"

# Unknown fields are kept.
expect 0 q enqueue '{"command":"true","id":"annot","x-team":{"name":"ops"}}'
assert_eq "$(q show annot | json "j['x-team']['name']")" "ops"

# Bulk: one id per line in input order, blank lines skipped.
printf '{"command":"true","id":"b1"}\n\n{"command":"true"}\n{"command":"true","id":"b3"}\n' >"$T/bulk"
expect 0 q enqueue - <"$T/bulk"
assert_eq "$(printf '%s\n' "$OUT" | wc -l)" 3 "bulk id count"
assert_eq "$(printf '%s\n' "$OUT" | sed -n 1p)" b1
assert_eq "$(printf '%s\n' "$OUT" | sed -n 3p)" b3
assert_eq "$(files tmp)" "" "tmp/ after bulk"

# Bulk is all or nothing: a bad line 3 enqueues nothing.
BEFORE=$(count pending)
printf '{"command":"true"}\n{"command":"true"}\n{"command":5}\n' >"$T/bad"
expect 2 q enqueue - <"$T/bad"
assert_one_error_line
assert_contains "$ERR" "line 3:"
assert_eq "$(count pending)" "$BEFORE" "pending after a rejected batch"
# A duplicate of an existing id, also in bulk: the operation failed (1), as for one
# enqueue; the same id twice in one batch is bad input (2).
printf '{"command":"true","id":"new1"}\n{"command":"true","id":"job1"}\n' >"$T/dup"
expect 1 q enqueue - <"$T/dup"
assert_one_error_line
assert_contains "$ERR" "line 2: a job with id 'job1' already exists"
expect 1 q show new1
printf '{"command":"true","id":"twice"}\n{"command":"true","id":"twice"}\n' >"$T/dup2"
expect 2 q enqueue - <"$T/dup2"
assert_contains "$ERR" "line 2: duplicate id 'twice'"

# Two concurrent enqueues of one id: exactly one succeeds.
for i in 1 2 3 4 5 6; do
  (q enqueue "{\"id\":\"race\",\"command\":\"true\"}" >"$T/race.$i" 2>&1 && echo ok >>"$T/race.wins") &
done
wait
assert_eq "$(wc -l <"$T/race.wins")" 1 "concurrent enqueues of one id that succeeded"

# --spool after the command words, and QUEUECTL_SPOOL.
S2="$T/other"
expect 0 q enqueue --command true --id s2 --spool "$S2"
[ -f "$S2/pending/s2.json" ] || fail "--spool after the command"
expect 0 q --spool "$S2" show s2
echo "ok"
