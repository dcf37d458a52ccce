# Input that can never run is refused at enqueue (exit 2, one line naming the field and
# the limit), the spool path is never silently the default, only commands that write
# create a spool, and one damaged or foreign file in any state directory never stops
# list, dlq list, status, metrics or the API for the rest (SPEC section 5).
. "$QUEUECTL_TEST_LIB"
PROM="$(dirname "$QUEUECTL_TEST_LIB")/prom_check.py"

# --- The spool's path, and who creates a spool ---------------------------------------------
expect 2 q --spool '' status
assert_one_error_line
assert_contains "$ERR" "--spool is empty"
expect 2 env QUEUECTL_SPOOL= "$QUEUECTL" status
assert_one_error_line
assert_contains "$ERR" "QUEUECTL_SPOOL is set but empty"
for cmd in "status" "list" "show x" "logs x" "cancel x" "dlq list" "dlq retry --all" "config list" "config get max-retries" \
  "worker status" "worker stop" "metrics" "purge --state done"; do
  # shellcheck disable=SC2086
  expect 1 q $cmd
  assert_one_error_line
  assert_contains "$ERR" "no spool at '$S'"
  assert_contains "$ERR" "created by the first"
  [ -e "$S" ] && fail "'$cmd' created the spool"
done
# Bad usage is reported before the spool is looked at.
expect 2 q show 'bad id'
expect 2 q list --state sleeping
expect 2 q config get no-such-key
# Commands that write create it, but only once their input has passed.
expect 2 q enqueue '{"command":5}'
expect 2 q config set max-retries -1
printf '{"command":"true"}\n{"comand":"x"}\n' >"$T/badlines"
expect 2 q enqueue - <"$T/badlines"
[ -e "$S" ] && fail "a refused command created the spool"
mkdir "$T/notaspool"
expect 1 q --spool "$T/notaspool" list
assert_contains "$ERR" "not a queuectl spool"
[ -z "$(ls -A "$T/notaspool")" ] || fail "a read-only command wrote into a directory that is not a spool"
expect 0 q config set max-retries 3
[ -d "$S/pending" ] || fail "config set did not create the spool"

# --- What can never run, or is not a new job ------------------------------------------------
refused() { # WHAT KEYWORD ENQUEUE-ARGS...
  local what=$1 key=$2
  shift 2
  expect 2 q enqueue "$@"
  assert_one_error_line
  assert_contains "$ERR" "$key" "$what"
}
# Too large for execve(2): fed through stdin, as a shell could not pass them as arguments.
refused_lines() { # WHAT KEYWORD FILE
  expect 2 q enqueue - <"$3"
  assert_one_error_line
  assert_contains "$ERR" "$2" "$1"
}
python3 -c "import json; print(json.dumps({'command': 'x' * 131072}))" >"$T/bigcmd"
refused_lines "a command past 128 KiB" "field 'command' is 131072 bytes" "$T/bigcmd"
python3 -c "import json; print(json.dumps({'command': 'true', 'env': {'V': 'x' * 140000}}))" >"$T/bigenv"
refused_lines "an env value past 128 KiB" "field 'env'" "$T/bigenv"
python3 -c "import json; print(json.dumps({'command': 'true', 'env': {'V%d' % i: 'x' * 100000 for i in range(40)}}))" >"$T/manyenv"
refused_lines "an environment past ARG_MAX" "execve" "$T/manyenv"
refused "attempts 7" "attempts" '{"command":"true","attempts":7}'
refused "a state" "state" '{"command":"true","state":"dead"}'
refused "an exit code" "exit_code" '{"command":"true","exit_code":3}'
refused "a last error" "last_error" '{"command":"true","last_error":"no"}'
refused "a retry time" "next_run_at" '{"command":"true","next_run_at":"2026-01-01T00:00:00Z"}'
refused "a day that does not exist" "run_at" '{"command":"true","run_at":"2027-02-29T10:00:00Z"}'
refused "--run-at on a day that does not exist" "2027-02-29" --command true --run-at 2027-02-29T10:00:00Z
refused "an id starting with -" "not starting with" --command true --id=-dash
refused "an id starting with - in JSON" "invalid id" '{"command":"true","id":"-dash"}'
refused "an env name with a space" "A B" --command true --env 'A B=c'
refused "an env name with a digit first" "1A" '{"command":"true","env":{"1A":"x"}}'
refused "nested 65 levels" "nested deeper than 64" "{\"command\":\"true\",\"x\":$(printf '[%.0s' $(seq 64))$(printf ']%.0s' $(seq 64))}"
python3 -c "print('{\"command\":\"true\",\"x\":' + '[' * 100000 + ']' * 100000 + '}')" >"$T/deep"
refused_lines "100,000 nested arrays" "line 1: JSON nested deeper than 64 levels" "$T/deep"
# What the QueueCTL assignment's examples carry passes: the initial values.
expect 0 q enqueue '{"id":"job1","command":"true","state":"pending","attempts":0,"max_retries":3,"exit_code":null,"last_error":null,"next_run_at":null}'
expect 0 q enqueue '{"command":"true","run_at":"2028-02-29T10:00:00Z","env":{"_OK1":"y"}}'
# created_at and updated_at are queuectl's to set.
expect 0 q enqueue '{"id":"old","command":"true","created_at":"2001-01-01T00:00:00Z"}'
[ "$(q show old | json "j['created_at'][:4]")" != 2001 ] || fail "a given created_at was kept"

# --- One bad or foreign file in every state directory ---------------------------------------
q enqueue --command true --id good >/dev/null
for d in pending processing failed done dead; do
  printf 'not json' >"$S/$d/bad-$d.json"
  printf '{"command": 5}' >"$S/$d/type-$d.json"
  printf '[1,2]' >"$S/$d/arr-$d.json"
  printf '{"command":"true","id":7}' >"$S/$d/idnum-$d.json"
  python3 -c "print('[' * 100000 + ']' * 100000)" >"$S/$d/deep-$d.json"
  printf '{"command":"true"}\0\0' >"$S/$d/nul-$d.json"
  mkfifo "$S/$d/fifo-$d.json"
  mkdir "$S/$d/dir-$d.json"
  ln -s /etc/passwd "$S/$d/link-$d.json"
done
expect 0 q list --json
python3 - "$T/out" <<'PY' || fail "list --json"
import json, sys
jobs = json.load(open(sys.argv[1]))
ids = {j["id"] for j in jobs}
assert {"good", "job1", "old"} <= ids, ids
bad = [j for j in jobs if "invalid" in j]
assert len(bad) == 30, [j["id"] for j in bad]           # 6 kinds in 5 directories
assert all(j["state"] for j in bad)
assert {j["id"] for j in bad if j["id"].startswith("idnum")} == {"idnum-" + d for d in ["pending", "processing", "failed", "done", "dead"]}
PY
expect 0 q list
assert_contains "$OUT" "INVALID"
assert_contains "$OUT" "good"
expect 0 q dlq list --json
assert_eq "$(printf '%s' "$OUT" | json "len(j)")" 6 "dlq list with bad files"
expect 0 q status --json
assert_eq "$(printf '%s' "$OUT" | json "j['pending']")" 10 "pending counted (4 jobs and 6 bad files)"
expect 0 q metrics
printf '%s\n' "$OUT" | python3 "$PROM" >/dev/null || fail "metrics with bad files is not valid exposition"
expect 1 q show bad-dead
assert_one_error_line
assert_contains "$ERR" "not a valid job"
"$QUEUECTL" --spool "$S" serve --listen 127.0.0.1:0 >"$T/serve.out" 2>"$T/serve.err" &
SERVER=$!
ON_EXIT='kill $SERVER 2>/dev/null'
wait_until 10 grep -q "http://" "$T/serve.out"
URL=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$T/serve.out")
for s in pending processing failed done dead; do
  code=$(curl -s -o "$T/api" -w '%{http_code}' "${URL}api/jobs?state=$s")
  assert_eq "$code" 200 "/api/jobs?state=$s with bad files"
  assert_eq "$(json "len([x for x in j if 'invalid' in x])" <"$T/api")" 6 "invalid entries in /api/jobs?state=$s"
done
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "${URL}api/status")" 200 "/api/status with bad files"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "${URL}metrics")" 200 "/metrics with bad files"
echo "ok"
