# serve: the REST API against a real server on a free loopback port.
. "$QUEUECTL_TEST_LIB"
PROM="$(dirname "$QUEUECTL_TEST_LIB")/prom_check.py"

SERVER=""
ON_EXIT='[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null'
start_server() { # [extra args...]
  rm -f "$T/serve.out" # opened by the child, maybe after the wait below first looks
  "$QUEUECTL" --spool "$S" serve --listen 127.0.0.1:0 "$@" >"$T/serve.out" 2>"$T/serve.err" &
  SERVER=$!
  wait_until 10 grep -q "http://" "$T/serve.out"
  URL=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$T/serve.out")
}
stop_server() {
  kill -TERM "$SERVER"
  wait "$SERVER" || fail "serve exited $? on SIGTERM"
  SERVER=""
}
# http METHOD PATH [curl args...]: sets CODE and BODY. A POST says it sends JSON, as
# the dashboard does (the server refuses any other; see test_serve_guard.sh).
http() {
  local m=$1 p=$2
  shift 2
  local type=()
  [ "$m" = POST ] && type=(-H 'Content-Type: application/json')
  CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X "$m" "${type[@]}" "$@" "$URL${p#/}")
  BODY=$(cat "$T/body")
}

q enqueue --command true --id p1 >/dev/null
q enqueue --command true --id p2 >/dev/null
q enqueue --command true --id p3 >/dev/null
q cancel p3 >/dev/null
start_server
assert_contains "$URL" "http://127.0.0.1:"

http GET /api/status
assert_eq "$CODE" 200
assert_eq "$BODY" "$(q status --json)" "/api/status vs status --json"
http GET "/api/jobs?state=pending"
assert_eq "$BODY" "$(q list --state pending --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))')" \
  "/api/jobs vs list --json"
# paging
CODE=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "${URL}api/jobs?state=pending&limit=1&offset=1")
assert_eq "$(json "[x['id'] for x in j]" <"$T/body")" "['p2']" "page 2 of 1"
grep -qi '^X-Total-Count: 2' "$T/headers" || fail "X-Total-Count missing"
http GET "/api/jobs?state=bogus"
assert_eq "$CODE" 400
assert_contains "$BODY" '"error"'
http GET "/api/jobs?limit=-1"
assert_eq "$CODE" 400
http GET /api/jobs/p1
assert_eq "$CODE" 200
assert_eq "$(printf '%s' "$BODY" | json "j['id'], j['state']")" "p1 pending"
http GET /api/jobs/nosuch
assert_eq "$CODE" 404
http GET /api/jobs/bad%20id
assert_eq "$CODE" 400

# enqueue
http POST /api/jobs -d '{"command":"echo from-api","id":"api1"}'
assert_eq "$CODE" 201
assert_eq "$(printf '%s' "$BODY" | json "j['id']")" api1
assert_eq "$(state_of api1)" pending
http POST /api/jobs -d '{"command":"x","id":"api1"}'
assert_eq "$CODE" 409 "duplicate id"
http POST /api/jobs -d '{"comand":"x"}'
assert_eq "$CODE" 400 "missing command"
assert_contains "$BODY" "missing field 'command'"
http POST /api/jobs -d 'not json'
assert_eq "$CODE" 400
head -c 2000000 /dev/zero | tr '\0' x >"$T/big"
http POST /api/jobs --data-binary @"$T/big"
assert_eq "$CODE" 413
http DELETE /api/jobs/p1
assert_eq "$CODE" 405
http PUT /api/status -d ''
assert_eq "$CODE" 405

# actions
http POST /api/jobs/p3/retry -d ''
assert_eq "$CODE" 200
assert_eq "$(state_of p3)" pending
http POST /api/jobs/p3/retry -d ''
assert_eq "$CODE" 409 "retry of a pending job"
http POST /api/jobs/p2/cancel -d ''
assert_eq "$CODE" 200
assert_eq "$(state_of p2)" dead
http POST /api/jobs/nosuch/cancel -d ''
assert_eq "$CODE" 404
# Delete one job: completed or dead only.
http POST /api/jobs/p1/purge -d ''
assert_eq "$CODE" 409 "delete of a pending job"
assert_eq "$(state_of p1)" pending

# hold, release, queues (SPEC section 7)
q enqueue --id qa --command true --queue builds --tag t1 --delay 3600 >/dev/null
http POST /api/jobs/qa/hold -d ''
assert_eq "$CODE" 200
assert_eq "$(printf '%s' "$BODY" | json "j['state']")" held
http POST /api/jobs/qa/hold -d ''
assert_eq "$CODE" 409 "hold of a held job"
http GET "/api/jobs?state=held"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['qa']"
http POST /api/jobs/qa/release -d ''
assert_eq "$CODE" 200
assert_eq "$(state_of qa)" pending
http GET "/api/jobs?queue=builds"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['qa']"
http GET "/api/jobs?tag=t1&state=pending"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['qa']"
http GET "/api/jobs?tag=nope"
assert_eq "$BODY" "[]"
http GET "/api/jobs?queue=bad%20name"
assert_eq "$CODE" 400
# Newest first, and the search (id, command or tag, any case), with paging and totals.
http GET "/api/jobs?state=pending&order=newest"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['qa', 'api1', 'p3', 'p1']"
http GET "/api/jobs?order=sideways"
assert_eq "$CODE" 400
assert_contains "$BODY" "expected oldest or newest"
http GET "/api/jobs?q=P"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['p1', 'p2', 'p3', 'api1']"
http GET "/api/jobs?q=FROM-api"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['api1']"
http GET "/api/jobs?q=t1&state=pending"
assert_eq "$(printf '%s' "$BODY" | json "[x['id'] for x in j]")" "['qa']"
CODE=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "${URL}api/jobs?q=p&order=newest&limit=2&offset=1")
assert_eq "$(json "[x['id'] for x in j]" <"$T/body")" "['p3', 'p2']" "a page of a search, newest first"
grep -qi '^X-Total-Count: 4' "$T/headers" || fail "X-Total-Count of a search: $(cat "$T/headers")"
http POST /api/queues/builds/pause -d ''
assert_eq "$CODE" 200
http GET /api/queues
assert_eq "$(printf '%s' "$BODY" | json "[(x['queue'], x['paused'], x['pending']) for x in j if x['queue'] == 'builds']")" "[('builds', True, 1)]"
http POST /api/queues/builds/resume -d ''
assert_eq "$CODE" 200
assert_eq "$(q queue list --json | json "[x['paused'] for x in j if x['queue'] == 'builds'][0]")" False
http GET /api/queues/builds/pause
assert_eq "$CODE" 405
http POST /api/queues/bad%20name/pause -d ''
assert_eq "$CODE" 400

# workers through the API: they outlive the server
http POST /api/workers/start -d '{"count":2}'
assert_eq "$CODE" 201
SUP=$(printf '%s' "$BODY" | json "j['supervisor']")
wait_until 10 is_state api1 completed
http GET /api/jobs/api1/log
assert_contains "$BODY" "from-api"
# Slices of the log, for a reader that follows it: from a byte, or the last bytes.
LOG=$(cat "$S/done/api1.log")
SIZE=$(stat -c %s "$S/done/api1.log")
CODE=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "${URL}api/jobs/api1/log?tail=9")
assert_eq "$(cat "$T/body")" "$(tail -c 9 "$S/done/api1.log")" "the last 9 bytes"
grep -qi "^X-Log-Offset: $((SIZE - 9))" "$T/headers" || fail "X-Log-Offset of a tail: $(cat "$T/headers")"
grep -qi "^X-Log-Size: $SIZE" "$T/headers" || fail "X-Log-Size: $(cat "$T/headers")"
http GET "/api/jobs/api1/log?from=5"
assert_eq "$BODY" "$(tail -c +6 "$S/done/api1.log")" "from byte 5"
http GET "/api/jobs/api1/log?from=$SIZE"
assert_eq "$CODE/$BODY" "200/" "from the end"
http GET "/api/jobs/api1/log?from=99999999&tail=3"
assert_eq "$CODE/$BODY" "200/" "from beyond the end"
http GET "/api/jobs/api1/log?tail=-1"
assert_eq "$CODE" 400
[ -n "$LOG" ] || fail "api1 has no log"
http GET /api/workers
assert_eq "$(printf '%s' "$BODY" | json "len(j)")" 2
for bad in '{"count":0}' '{"count":4294967297}' '{"count":18446744073709551615}'; do
  http POST /api/workers/start -d "$bad"
  assert_eq "$CODE" 400 "start with $bad"
done
assert_eq "$(count workers)" 2 "workers after refused starts"
http GET /metrics
assert_eq "$CODE" 200
printf '%s\n' "$BODY" | python3 "$PROM" >/dev/null || fail "/metrics is not valid exposition"

# Delete a completed job; retry all and purge all dead (what `dlq retry --all` and
# `dlq purge` do).
http POST /api/jobs/api1/purge -d ''
assert_eq "$CODE" 200
[ ! -e "$S/done/api1.json" ] && [ ! -e "$S/done/api1.log" ] || fail "the API's delete left api1's files"
http GET /api/jobs/api1
assert_eq "$CODE" 404
printf '{"id":"d1","command":"true","state":"dead","attempts":1}\n' >"$S/dead/d1.json"
printf '{"id":"d2","command":"true","state":"dead","attempts":1}\n' >"$S/dead/d2.json"
http POST /api/dlq/retry -d ''
assert_eq "$CODE" 200
assert_eq "$(printf '%s' "$BODY" | json "sorted(j['retried'])")" "['d1', 'd2', 'p2']"
wait_until 10 is_state d1 completed
wait_until 10 is_state d2 completed
printf '{"id":"d3","command":"true","state":"dead","attempts":1}\n' >"$S/dead/d3.json"
echo output >"$S/dead/d3.log"
http POST /api/dlq/purge -d ''
assert_eq "$CODE" 200
assert_eq "$(printf '%s' "$BODY" | json "j['purged']")" 1
assert_eq "$(count dead)" 0 "dead jobs after purge all"
[ ! -e "$S/dead/d3.log" ] || fail "purge all dead left a log"
CODE=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "$URL")
assert_eq "$CODE" 200
assert_contains "$(cat "$T/body")" "<title>queuectl</title>"
# No other site may frame the page (clickjacking), and it loads nothing from elsewhere.
grep -qi '^X-Frame-Options: DENY' "$T/headers" || fail "no X-Frame-Options: $(cat "$T/headers")"
grep -qi "^Content-Security-Policy: default-src 'none';.*frame-ancestors 'none'" "$T/headers" ||
  fail "no Content-Security-Policy: $(cat "$T/headers")"
stop_server
alive "$SUP" || fail "workers died with the server"
start_server
http POST /api/workers/stop -d '{}'
assert_eq "$CODE" 202
wait_until 20 count_is workers 0
stop_server

# A token guards every request, reads included; only the page itself is served without
# it (it asks for the token).
printf 's3cret\n' >"$T/token"
q enqueue --id p4 --command true >/dev/null
q cancel p4 >/dev/null
start_server --token-file "$T/token"
http POST /api/jobs -d '{"command":"true"}'
assert_eq "$CODE" 401
http POST /api/jobs/p4/retry -d '' -H 'Authorization: Bearer wrong'
assert_eq "$CODE" 401
assert_eq "$(state_of p4)" dead
http POST /api/jobs/p4/retry -d '' -H 'Authorization: Bearer s3cret'
assert_eq "$CODE" 200
for path in /api/status /api/jobs /api/jobs/p1 /api/jobs/p1/log /api/workers /metrics; do
  http GET "$path"
  assert_eq "$CODE" 401 "GET $path without the token"
  http GET "$path" -H 'Authorization: Bearer s3cre' # a prefix of it
  assert_eq "$CODE" 401 "GET $path with a wrong token"
  http GET "$path" -H 'authorization: BEARER s3cret' # the scheme in any case
  assert_eq "$CODE" 200 "GET $path with the token"
done
http GET /
assert_eq "$CODE" 200 "the page itself, which asks for the token"
stop_server

# Bad options
expect 2 q serve --listen nonsense
assert_one_error_line
: >"$T/empty"
expect 2 q serve --listen 127.0.0.1:0 --token-file "$T/empty"
assert_one_error_line
expect 0 q serve --help
assert_contains "$OUT" "127.0.0.1:8080"
echo "ok"
