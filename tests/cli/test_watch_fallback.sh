# Where the kernel gives no inotify instance (the per-user limit reached), workers, wait
# and logs --follow look every 100 ms instead (SPEC section 9), and each worker's log says
# why. The limit is reached for real: a process of the same user holds every instance.
. "$QUEUECTL_TEST_LIB"
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
  echo "skipped: needs root, to run as the user nobody"
  exit 77
fi
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups env QUEUECTL_SPOOL="$S" "$@"; }
chmod 755 "$T"
mkdir "$S" && chown nobody "$S"

HOLDER=""
ON_EXIT='[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null'
# Started straight from this shell (setpriv execs python), so that $! is the holder; it
# also ends when this shell does, killed or not, and keeps none of its descriptors.
setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups /usr/bin/python3 -c '
import ctypes, os, resource, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)) # the instance limit, not this, must stop it
libc = ctypes.CDLL(None, use_errno=True)
n = 0
while libc.inotify_init1(0) >= 0:
    n += 1
print(n, ctypes.get_errno(), flush=True)
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.2)' </dev/null >"$T/holder.out" 2>"$T/holder.err" &
HOLDER=$!
wait_until 10 test -s "$T/holder.out"
read -r held err <"$T/holder.out"
assert_eq "$err" 24 "errno once the instances ran out (EMFILE)"
[ "$held" -le "$(cat /proc/sys/fs/inotify/max_user_instances)" ] || fail "held $held instances"
# Another process of the user gets none either.
setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups /usr/bin/python3 -c '
import ctypes, sys
sys.exit(0 if ctypes.CDLL(None, use_errno=True).inotify_init1(0) < 0 and ctypes.get_errno() == 24 else 1)' ||
  fail "a fresh process of nobody still gets an inotify instance"

as_nobody "$QUEUECTL" worker start --detach --count 2 >/dev/null
as_nobody "$QUEUECTL" enqueue --id first --command 'echo one; sleep 0.3; echo two' >/dev/null
# wait polls too: it has no instance either.
run as_nobody "$QUEUECTL" wait first --timeout $((10 * SLOW))
assert_eq "$RC" 0 "wait's exit status"
assert_eq "$(state_of first)" completed
run as_nobody "$QUEUECTL" logs first
assert_contains "$OUT" "$(printf 'one\ntwo\n=== queuectl: job first completed')"

# logs --follow polls the log as it grows, and ends with the job.
as_nobody "$QUEUECTL" enqueue --id second --command 'echo a; sleep 0.4; echo b' >/dev/null
run as_nobody timeout $((10 * SLOW)) "$QUEUECTL" logs --follow second
assert_eq "$RC" 0 "logs --follow's exit status"
assert_contains "$OUT" "$(printf 'a\nb\n=== queuectl: job second completed')"

# Each worker says once that it polls, and why.
why="watching the spool by looking every 100 ms: no inotify instance (Too many open files; raise fs.inotify.max_user_instances)"
assert_eq "$(grep -c -F "$why" "$S/workers/detached.log")" 2 "workers saying they poll"
echo "ok"
