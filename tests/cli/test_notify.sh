# What a supervisor tells systemd (Type=notify, WatchdogSec=), heard on a real
# $NOTIFY_SOCKET as the service manager would: READY=1, STATUS= with the workers and the
# waiting jobs, WATCHDOG=1 within each half period, STOPPING=1.
. "$QUEUECTL_TEST_LIB"

SOCK="$T/notify.sock"
HEARD="$T/heard"
python3 - "$SOCK" "$HEARD" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " | ") + "\n")
EOF
L=$!
ON_EXIT="kill $L"
wait_until 10 test -S "$SOCK"

q enqueue --id later --command true --delay 1h >/dev/null
q enqueue --id held --command true --hold >/dev/null
NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=400000 "$QUEUECTL" --spool "$S" worker start --count 2 2>"$T/err" &
P=$!
wait_until 10 grep -q 'READY=1' "$HEARD"
wait_until 10 grep -q 'STATUS=2 workers running; 1 pending, 0 processing, 0 failed, 1 held' "$HEARD"
# WATCHDOG=1 every half period (200 ms): five more come in about a second.
before=$(grep -c 'WATCHDOG=1' "$HEARD")
wait_until 10 sh -c "[ \$(grep -c 'WATCHDOG=1' '$HEARD') -ge $((before + 5)) ]"
q worker stop >/dev/null
wait "$P"
wait_until 5 grep -q 'STOPPING=1' "$HEARD"

# Without WATCHDOG_USEC, no WATCHDOG=1; for another process, none either.
: >"$HEARD"
NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=100000 WATCHDOG_PID=1 "$QUEUECTL" --spool "$S" worker start 2>>"$T/err" &
P=$!
wait_until 10 grep -q 'READY=1' "$HEARD"
q worker stop >/dev/null
wait "$P"
wait_until 5 grep -q 'STOPPING=1' "$HEARD"
if grep -q 'WATCHDOG=1' "$HEARD"; then fail "WATCHDOG=1 for a watchdog meant for another process"; fi
echo "ok"
