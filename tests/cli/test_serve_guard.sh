# serve is a door to running shell commands (SPEC section 5): requests a web page could
# forge are refused, a foreign Host is refused (DNS rebinding), the port is never
# shared, and an address other than loopback needs a token. Each attack is checked by
# its effect: nothing is enqueued.
. "$QUEUECTL_TEST_LIB"

SERVER=""
ON_EXIT='[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null'
new_spool
start_server() { # LISTEN [extra args...]
  # The shell opens serve.out in the child, maybe after the wait below first looks: the
  # last server's line must not be there to be read.
  rm -f "$T/serve.out"
  "$QUEUECTL" --spool "$S" serve --listen "$@" >"$T/serve.out" 2>"$T/serve.err" &
  SERVER=$!
  wait_until 10 grep -q "http://" "$T/serve.out"
  URL=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$T/serve.out")
  HOSTPORT=${URL#http://}
  HOSTPORT=${HOSTPORT%/}
  PORT=${HOSTPORT##*:}
}
stop_server() {
  kill -TERM "$SERVER"
  wait "$SERVER" || fail "serve exited $? on SIGTERM"
  SERVER=""
}
# req PATH [curl args...]: a POST by default; sets CODE and BODY
req() {
  local p=$1
  shift
  CODE=$(curl -s -o "$T/body" -w '%{http_code}' "$@" "$URL${p#/}")
  BODY=$(cat "$T/body")
}
pending() { q status --json | json "j['pending']"; }

start_server 127.0.0.1:0

# What a page of another site can send without asking (a form, a no-cors fetch): no
# JSON content type. Refused, and nothing is enqueued.
for type in 'text/plain' 'application/x-www-form-urlencoded' 'multipart/form-data; boundary=x' ''; do
  req /api/jobs -X POST -H "Content-Type: $type" --data-binary '{"command":"touch '"$T"'/pwned"}'
  assert_eq "$CODE" 403 "POST with Content-Type '$type'"
  assert_contains "$BODY" "Content-Type: application/json"
done
req /api/jobs -X POST --data-binary '{"command":"touch x"}' -H 'Content-Type:' # none at all
assert_eq "$CODE" 403 "POST without Content-Type"
# JSON from another origin (a script there would need a preflight, never granted).
req /api/jobs -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example' \
  --data-binary '{"command":"touch x"}'
assert_eq "$CODE" 403 "POST from another origin"
assert_contains "$BODY" "evil.example"
req /api/jobs -X POST -H 'Content-Type: application/json' -H 'Origin: null' --data-binary '{"command":"touch x"}'
assert_eq "$CODE" 403 "POST from an opaque origin"
req /api/jobs -X OPTIONS -H 'Origin: http://evil.example' -H 'Access-Control-Request-Method: POST'
assert_eq "$CODE" 405 "a CORS preflight"
grep -qi '^access-control-allow' <(curl -s -D - -o /dev/null -X OPTIONS "${URL}api/jobs") &&
  fail "a CORS header was sent"
assert_eq "$(pending)" 0 "jobs enqueued by forged requests"

# DNS rebinding: another site's name resolved to us. Reads and writes alike.
for host in evil.example evil.example:"$PORT" 127.0.0.2:"$PORT" "localhost:1"; do
  req /api/status -H "Host: $host"
  assert_eq "$CODE" 403 "GET with Host $host"
  req /api/jobs -X POST -H "Host: $host" -H 'Content-Type: application/json' --data-binary '{"command":"true"}'
  assert_eq "$CODE" 403 "POST with Host $host"
done
req / -H "Host: evil.example:$PORT"
assert_eq "$CODE" 403 "the page itself with a foreign Host"
assert_eq "$(pending)" 0 "jobs enqueued with a foreign Host"

# What this server's own page sends passes: JSON, its own origin, a loopback name; a POST
# without a body is fine.
for host in "127.0.0.1:$PORT" "localhost:$PORT" "LOCALHOST:$PORT"; do
  req /api/status -H "Host: $host"
  assert_eq "$CODE" 200 "GET with Host $host"
done
req /api/jobs -X POST -H 'Content-Type: application/json; charset=utf-8' -H "Origin: http://$HOSTPORT" \
  --data-binary '{"command":"true","id":"own"}'
assert_eq "$CODE" 201 "POST from the server's own origin"
q cancel own >/dev/null
req /api/jobs/own/retry -X POST -H 'Content-Type: application/json'
assert_eq "$CODE" 200 "a POST without a body"
assert_eq "$(state_of own)" pending

# The workflow's routes (SPEC section 7) are guarded alike, each checked by its effect:
# a forged release leaves the job held, a forged pause leaves the queue running.
q enqueue --id heldjob --command true --hold >/dev/null
for path in /api/jobs/heldjob/release /api/jobs/own/hold /api/queues/default/pause; do
  req "$path" -X POST -H 'Content-Type: text/plain'
  assert_eq "$CODE" 403 "POST $path without JSON"
  req "$path" -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example'
  assert_eq "$CODE" 403 "POST $path from another origin"
  req "$path" -X POST -H 'Content-Type: application/json' -H "Host: evil.example:$PORT"
  assert_eq "$CODE" 403 "POST $path with a foreign Host"
done
assert_eq "$(state_of heldjob)" held "state after forged releases"
assert_eq "$(state_of own)" pending "state after forged holds"
assert_eq "$(q queue list --json | json "[x['paused'] for x in j if x['queue'] == 'default']")" "[False]"

# The port is never shared: a second server on it fails with one clear line.
expect 1 q serve --listen "127.0.0.1:$PORT"
assert_one_error_line
assert_contains "$ERR" "in use"
req /api/status
assert_eq "$CODE" 200 "the first server still answers"
stop_server

# Off loopback, a token is required, and then for every request.
expect 2 q serve --listen "0.0.0.0:0"
assert_one_error_line
assert_contains "$ERR" "--token-file"
printf 'tok3n\n' >"$T/token"
start_server 0.0.0.0:0 --token-file "$T/token"
URL="http://127.0.0.1:$PORT/"
req /api/status
assert_eq "$CODE" 401 "a read without the token off loopback"
req /api/status -H 'Authorization: Bearer tok3n'
assert_eq "$CODE" 200
req /api/jobs -X POST -H 'Authorization: Bearer tok3n' -H 'Content-Type: text/plain' --data-binary '{"command":"true"}'
assert_eq "$CODE" 403 "the token does not excuse a forgeable request"
stop_server

# An address that does not resolve says so.
expect 1 q serve --listen nosuchhost.invalid:0
assert_one_error_line
assert_contains "$ERR" "does not resolve"
[ -e "$T/pwned" ] && fail "a forged request ran a command"
echo "ok"
