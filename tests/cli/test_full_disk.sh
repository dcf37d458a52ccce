# A full disk: enqueue fails with one line, and nothing is left in tmp/ or pending/.
. "$QUEUECTL_TEST_LIB"

M="$T/small"
mkdir -p "$M"
if ! mount -t tmpfs -o size=256k tmpfs "$M" 2>/dev/null; then
  echo "SKIP: cannot mount a tmpfs here (needs root); full-disk test not run"
  exit 0
fi
trap 'umount "$M" 2>/dev/null || true; cleanup' EXIT
FS="$M/spool"
q --spool "$FS" enqueue --command true --id first >/dev/null
cp "$FS/pending/first.json" "$T/first.before"
# Fill the file system.
dd if=/dev/zero of="$M/filler" bs=4k 2>/dev/null || true
BIG=$(python3 -c "print('x' * 8000)")
expect 1 q --spool "$FS" enqueue --command "$BIG"
assert_one_error_line
assert_contains "$ERR" "No space left on device"
assert_eq "$(ls -A "$FS/tmp")" "" "tmp/ after ENOSPC"
assert_eq "$(ls -A "$FS/pending")" "first.json" "pending/ after ENOSPC"
cmp -s "$FS/pending/first.json" "$T/first.before" || fail "existing job changed"
# Bulk as well: all or nothing.
python3 -c "
import json
for i in range(50): print(json.dumps({'command': 'x' * 4000}))" >"$T/bulk"
expect 1 q --spool "$FS" enqueue - <"$T/bulk"
assert_one_error_line
assert_eq "$(ls -A "$FS/tmp")" "" "tmp/ after bulk ENOSPC"
assert_eq "$(ls -A "$FS/pending")" "first.json" "pending/ after bulk ENOSPC"
# config set on a full disk leaves config.json as it was.
rm -f "$M/filler"
q --spool "$FS" config set priority 1
cp "$FS/config.json" "$T/cfg.before"
dd if=/dev/zero of="$M/filler" bs=4k 2>/dev/null || true
expect 1 q --spool "$FS" config set max-retries 9
cmp -s "$FS/config.json" "$T/cfg.before" || fail "config.json changed on ENOSPC"
rm -f "$M/filler"
echo "ok"
