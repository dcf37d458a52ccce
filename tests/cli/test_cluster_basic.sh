# cluster join, status and leave, and enqueue --cluster, against a real nats-server with
# JetStream (SPEC section 8); the main binary never loads libnats.
. "$QUEUECTL_TEST_LIB"
if ! command -v nats-server >/dev/null; then
  echo "skipped: no nats-server (apt-get install nats-server)"
  exit 77
fi
HELPER="$(dirname "$QUEUECTL")/queuectl-cluster"

# The plain CLI does not load the NATS client (nor OpenSSL through it); the helper does.
# (A name of libnats's API is in a binary that links it, statically or not.)
grep -q natsConnection_Connect "$QUEUECTL" && fail "queuectl contains the NATS client"
ldd "$QUEUECTL" 2>/dev/null | grep -q 'libnats\|libssl' && fail "queuectl loads libnats or OpenSSL"
grep -q natsConnection_Connect "$HELPER" || fail "queuectl-cluster lacks the NATS client"

NATS=""
ON_EXIT='[ -n "$NATS" ] && kill -9 "$NATS" 2>/dev/null'
start_nats() { # [port]: a JetStream server on loopback, its store in $T/nats
  nats-server -js -a 127.0.0.1 -p "${1:--1}" -sd "$T/nats" >"$T/nats.log" 2>&1 &
  NATS=$!
  wait_until 10 grep -q "Listening for client connections on" "$T/nats.log"
  wait_until 10 grep -q "Server is ready" "$T/nats.log"
  PORT=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$T/nats.log" | head -1)
}
waiting() { q cluster status --json | json "j['stream']['waiting']"; }

new_spool
expect 1 q cluster status
assert_one_error_line
assert_contains "$ERR" "has joined no cluster: run 'queuectl cluster join URL' first"
expect 2 q cluster join ''
assert_one_error_line
expect 2 q cluster join 127.0.0.1:4222 --stream 'bad.name'
assert_one_error_line

start_nats
expect 0 q cluster join "127.0.0.1:$PORT"
assert_contains "$OUT" "stream QUEUECTL"
assert_eq "$(json "j['cluster']['servers']" <"$S/config.json")" "['nats://127.0.0.1:$PORT']"
run q cluster status --json
assert_eq "$RC" 0
assert_eq "$(printf '%s' "$OUT" | json "(j['stream']['name'], j['stream']['waiting'], j['stream']['replicas'])")" \
  "('QUEUECTL', 0, 1)"
expect 0 q cluster join "127.0.0.1:$PORT" # again: the stream is there already

# Every form of enqueue publishes instead of writing pending/.
expect 0 q enqueue --cluster --id c1 --command 'echo one'
assert_eq "$OUT" c1
expect 0 q enqueue --cluster '{"command":"echo two","queue":"builds"}'
printf '%s\n' '{"id":"l1","command":"true"}' '' '{"command":"true","priority":5}' '{"id":"l3","command":"true"}' |
  q enqueue --cluster - >"$T/ids"
assert_eq "$(wc -l <"$T/ids")" 3 "ids printed for three lines"
assert_eq "$(sed -n 1p "$T/ids")" l1
assert_eq "$(waiting)" 5 "jobs waiting in the stream"
assert_eq "$(q status --json | json "j['pending']")" 0 "local pending jobs"
# A repeated id is dropped by the server: publishing again is safe.
expect 0 q enqueue --cluster --id c1 --command 'echo one'
assert_eq "$(waiting)" 5 "jobs waiting after a repeated id"

# Bad input: one line, exit 2, nothing published.
printf '%s\n' '{"command":"true"}' '{"command":' >"$T/bad"
expect 2 q enqueue --cluster - <"$T/bad"
assert_one_error_line
assert_contains "$ERR" "line 2"
expect 2 q enqueue --cluster --command true --after c1
assert_one_error_line
expect 2 q enqueue --cluster --command true --wait
assert_one_error_line
assert_eq "$(waiting)" 5 "jobs waiting after bad input"
run q cluster status
assert_contains "$OUT" "stream QUEUECTL: 5 jobs waiting"

# A worker on the joined spool takes the stream's jobs: each is written into pending/
# and runs here, under the local guarantees.
start_workers 2
waiting_is() { [ "$(waiting)" = "$1" ]; }
wait_until 20 waiting_is 0
expect 0 q wait --cluster --timeout 20 c1 l1 l3
assert_eq "$(state_of c1)" completed "c1, locally"
run q show --cluster c1
assert_eq "$RC" 0
assert_eq "$(printf '%s' "$OUT" | json "(j['id'], j['state'], j['host'], j['attempts'], j['exit_code'])")" \
  "('c1', 'completed', '$(hostname):$S', 1, 0)"
grep -q "intake: taking jobs from the stream QUEUECTL" "$S/workers/detached.log" || fail "the intake did not say it started"
# The job file says where it came from (a field other programs may read, kept in every state).
assert_eq "$(json "j['cluster']" <"$S/done/c1.json")" "{'stream': 'QUEUECTL', 'host': '$(hostname):$S'}"

# The intake takes only as many jobs as there are idle workers: while both workers run a
# job, the other jobs wait in the stream, not in this spool.
# Each job waits for the gate file: the workers stay busy until the test opens it.
for i in 1 2 3 4; do
  printf '{"id":"h%d","command":"until [ -e %s/gate ]; do sleep 0.05; done"}\n' "$i" "$T"
done | q enqueue --cluster - >/dev/null
wait_until 20 count_is processing 2
for _ in 1 2 3; do
  assert_eq "$(count pending)/$(count processing)/$(waiting)" "0/2/2" \
    "jobs pending here / running / waiting in the stream, both workers busy"
  sleep 0.2
done
touch "$T/gate"
expect 0 q wait --cluster --timeout 30 h1 h2 h3 h4

# Any NATS client can enqueue (libnats here, not queuectl): a job with no id takes the
# message id, or one made of the message's place in the stream.
"$NATS_PUB" "nats://127.0.0.1:$PORT" queuectl.jobs.default "{\"command\":\"echo foreign > $T/foreign\"}"
wait_until 20 test -s "$T/foreign"
"$NATS_PUB" "nats://127.0.0.1:$PORT" queuectl.jobs.default '{"command":"exit 4","max_retries":0}' foreign2
expect 4 q wait --cluster --timeout 20 foreign2
assert_eq "$(state_of foreign2)" dead
# A message that is not a job is quarantined like a bad drop-in, and acknowledged.
"$NATS_PUB" "nats://127.0.0.1:$PORT" queuectl.jobs.default 'not a job' bad1
wait_until 20 is_state bad1 dead
wait_until 20 waiting_is 0

# wait --cluster: the exit code of a dead job; 124 and the unfinished ids on a timeout.
expect 0 q enqueue --cluster --id slow1 --command 'sleep 30'
expect 124 q wait --cluster --timeout 0.5 slow1 c1
assert_eq "$(printf '%s\n' "$ERR" | wc -l)" 1 "lines on stderr"
assert_contains "$ERR" "not finished: slow1"
expect 0 q enqueue --cluster --id three --max-retries 0 --command 'exit 3'
expect 3 q wait --cluster --timeout 20 c1 three
expect 1 q show --cluster nosuchjob
assert_one_error_line
assert_contains "$ERR" "no host has taken job nosuchjob"
expect 2 q wait --cluster 'bad id'
assert_one_error_line

# The server gone: one clear line, exit 1; the local spool and its workers go on.
kill -9 "$NATS"
wait "$NATS" 2>/dev/null || true
NATS=""
expect 1 q enqueue --cluster --command true
assert_one_error_line
assert_contains "$ERR" "cannot reach the NATS servers nats://127.0.0.1:$PORT"
expect 0 q enqueue --id local1 --command true
expect 0 q wait --timeout 20 local1

# The server back, on its store: the intake reconnects and takes jobs again.
start_nats "$PORT"
expect 0 q enqueue --cluster --id after1 --command true
expect 0 q wait --cluster --timeout 60 after1
assert_eq "$(state_of after1)" completed
grep -q "intake: lost the connection to the NATS servers" "$S/workers/detached.log" ||
  fail "the intake did not say it lost the servers"

# worker stop stops the intake too.
expect 0 q worker stop --now
pgrep -f "queuectl-cluster --intake $S\$" >/dev/null && fail "the intake outlived its supervisor"

expect 0 q cluster leave
assert_contains "$OUT" "left the cluster"
assert_eq "$(json "'cluster' in j" <"$S/config.json")" False
expect 1 q enqueue --cluster --command true
assert_contains "$ERR" "has joined no cluster"
echo "ok"
