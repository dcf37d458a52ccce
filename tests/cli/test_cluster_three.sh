# A three-node JetStream cluster of Debian's nats-server on loopback, and three spools,
# each with its own `worker start --count 2`, standing for three hosts (SPEC section 8):
# 3,000 jobs from a fourth process, a node killed, a host killed and restarted, all the
# servers stopped and started again, and wait --cluster across hosts.
. "$QUEUECTL_TEST_LIB"
if ! command -v nats-server >/dev/null; then
  echo "skipped: no nats-server (apt-get install nats-server)"
  exit 77
fi
N=3000

read -r P1 P2 P3 R1 R2 R3 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
PORT=("" "$P1" "$P2" "$P3")
ROUTE=("" "$R1" "$R2" "$R3")
NODE=("" "" "" "")
ON_EXIT='for p in "${NODE[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done; for h in a b c; do timeout 30 "$QUEUECTL" --spool "$T/$h" worker stop --now >/dev/null 2>&1; done'
start_node() { # N: node N, its store in $T/nN
  local i=$1 routes=""
  for j in 1 2 3; do
    [ "$j" = "$i" ] || routes="${routes:+$routes,}nats://127.0.0.1:${ROUTE[$j]}"
  done
  nats-server -js -a 127.0.0.1 -p "${PORT[$i]}" -sd "$T/n$i" --server_name "n$i" --cluster_name queuectl \
    --cluster "nats://127.0.0.1:${ROUTE[$i]}" --routes "$routes" >>"$T/n$i.log" 2>&1 &
  NODE[$i]=$!
}
kill_node() {
  kill -9 "${NODE[$1]}"
  wait "${NODE[$1]}" 2>/dev/null || true
  NODE[$1]=""
}
URLS="127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"
on() { local h=$1; shift; "$QUEUECTL" --spool "$T/$h" "$@"; }
done_count() { on "$1" status --json | json "j['completed']"; }
total_done() { echo $(($(done_count a) + $(done_count b) + $(done_count c))); }
at_least() { [ "$(total_done)" -ge "$1" ]; }
waiting() { on d cluster status --json | json "j['stream']['waiting']"; }
waiting_is() { [ "$(waiting)" = "$1" ]; }

for i in 1 2 3; do start_node "$i"; done
# The first join waits for the cluster to elect its leader; it makes the stream, with a
# replica on each node.
wait_until 60 on a cluster join "$URLS"
assert_eq "$(on a cluster status --json | json "j['stream']['replicas']")" 3 "replicas"
for h in b c d; do expect 0 on "$h" cluster join "$URLS"; done
for h in a b c; do on "$h" worker start --detach --count 2 >"$T/$h.pids"; done

# 3,000 jobs from a fourth process (a joined spool with no workers). Each job appends a
# line to its own marker file: a second line is a second run.
mkdir "$T/marks"
python3 -c "
import json
for i in range(1, $N + 1):
    print(json.dumps({'id': 'j%d' % i, 'command': 'echo x >> $T/marks/j%d' % i}))" >"$T/jobs"
expect 0 on d enqueue --cluster - <"$T/jobs"
assert_eq "$(printf '%s\n' "$OUT" | wc -l)" "$N" "ids printed"

# A node dies mid-run: the other two keep the stream (replicas 3, quorum 2).
wait_until 120 at_least 300
kill_node 2
# A host dies mid-run (its supervisor, workers and intake, at once) and starts again.
wait_until 120 at_least 1200
mapfile -t pids_b <"$T/b.pids"
intake_b=$(pgrep -f "queuectl-cluster --intake $T/b\$")
kill -9 "${pids_b[@]}" $intake_b || true
for p in "${pids_b[@]}" $intake_b; do wait_until 10 not_alive "$p"; done
on b worker start --detach --count 2 >"$T/b.pids"
start_node 2

# Every job runs; the stream empties (a job host b took but had not acknowledged is
# offered again 30 s later, and skipped or run).
all_marked() { [ "$(find "$T/marks" -type f | wc -l)" -ge "$N" ]; }
wait_until 180 all_marked
wait_until 120 waiting_is 0
wait_until 60 at_least "$N"
dups=$(find "$T/marks" -type f -exec awk 'END { if (NR > 1) print FILENAME }' {} \; | wc -l)
echo "jobs run twice: $dups of $N (a: $(done_count a), b: $(done_count b), c: $(done_count c))"
[ "$dups" -le 6 ] || fail "$dups jobs ran twice: more than the hosts' idle workers could hold unacknowledged"
for h in a b c; do
  [ "$(done_count "$h")" -gt 0 ] || fail "host $h ran no job"
done
# cluster status adds up: every job's record says completed, and the hosts' shares sum up.
adds_up() {
  on d cluster status --json >"$T/st"
  [ "$(json "j['jobs'].get('completed', 0)" <"$T/st")" = "$N" ] &&
    [ "$(json "sum(h.get('completed', 0) for h in j['hosts'].values())" <"$T/st")" = "$N" ]
}
wait_until 60 adds_up

# All servers stopped: enqueue --cluster fails in one line, the local spool goes on.
for i in 1 2 3; do kill_node "$i"; done
expect 1 on d enqueue --cluster --command true
assert_one_error_line
assert_contains "$ERR" "cannot reach the NATS servers"
expect 0 on a enqueue --id local1 --command true
expect 0 on a wait --timeout 20 local1
# The servers back: the intakes reconnect. d has no workers, so the job runs on another
# host, and wait --cluster there returns its exit code.
for i in 1 2 3; do start_node "$i"; done
wait_until 90 on d enqueue --cluster --id back1 --max-retries 0 --command 'exit 7'
expect 7 on d wait --cluster --timeout 120 back1
run on d show --cluster back1
host=$(printf '%s' "$OUT" | json "j['host']")
case "$host" in
  *:"$T/a" | *:"$T/b" | *:"$T/c") ;;
  *) fail "back1 ran on '$host'" ;;
esac
echo "ok"
