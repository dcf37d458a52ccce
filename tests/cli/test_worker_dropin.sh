# Drop-ins from any program: tmp/ then rename into pending/. Invalid ones go to dead/.
. "$QUEUECTL_TEST_LIB"

new_spool
start_workers 1
drop() { # NAME CONTENT
  printf '%s' "$2" >"$S/tmp/$1.partial"
  mv "$S/tmp/$1.partial" "$S/pending/$1"
}
drop mini.json '{"command":"echo dropped"}'
wait_until 10 is_state mini completed
q show mini >"$T/m.json"
assert_eq "$(json "j['id'], j['attempts'], j['max_retries'], j['priority']" <"$T/m.json")" "mini 1 3 0"
assert_contains "$(q logs mini)" "dropped"

# Invalid JSON: the original, unchanged, as .orig, and a record saying why.
drop broken.json '{"command": "echo no'
wait_until 10 test -f "$S/dead/broken.json"
printf '%s' '{"command": "echo no' | cmp -s - "$S/dead/broken.json.orig" || fail ".orig differs from the original"
q show broken >"$T/b.json"
assert_eq "$(json "j['state'], j['original_file']" <"$T/b.json")" "dead broken.json.orig"
assert_contains "$(json "j['last_error']" <"$T/b.json")" "invalid JSON: parse error at line 1"
# Not an object; a number JSON allows but no job can hold.
drop arr.json '[1]'
drop huge.json '{"command":"true","timeout":1e400}'
wait_until 10 test -f "$S/dead/arr.json" -a -f "$S/dead/huge.json"
assert_contains "$(q show arr | json "j['last_error']")" "a job must be a JSON object, not array"
assert_contains "$(q show huge | json "j['last_error']")" "invalid JSON: number overflow parsing '1e400'"

# An object with a bad field keeps its fields in the record.
drop badprio.json '{"command":"true","priority":"high","x-note":"kept"}'
wait_until 10 test -f "$S/dead/badprio.json"
assert_eq "$(q show badprio | json "j['x-note'], j['priority']")" "kept high"
assert_contains "$(q show badprio | json "j['last_error']")" "priority"
# id differs from the file name
drop named.json '{"command":"true","id":"other"}'
wait_until 10 test -f "$S/dead/named.json.orig"
assert_contains "$(q show named | json "j['last_error']")" "differs"
# id already used by a completed job
drop mini.json '{"command":"echo again"}'
wait_until 10 test -f "$S/dead/mini.json.orig"
assert_eq "$(state_of mini)" completed "the completed job is untouched"
assert_eq "$(count dead)" 6

# Ignored: not .json, dotfiles. Never opened: symlinks, FIFOs, directories.
echo '{"command":"touch '"$T"'/never"}' >"$T/target.json"
ln -s "$T/target.json" "$S/pending/link.json"
mkfifo "$S/pending/fifo.json"
mkdir "$S/pending/dir.json"
drop notes.txt '{"command":"touch '"$T"'/never"}'
drop .hidden.json '{"command":"touch '"$T"'/never"}'
# A valid job dropped after them proves the worker looked (and is still alive).
drop after.json '{"command":"true"}'
wait_until 10 is_state after completed
[ -e "$T/never" ] && fail "a symlink, FIFO, dotfile or .txt was run"
[ -L "$S/pending/link.json" ] && [ -p "$S/pending/fifo.json" ] && [ -d "$S/pending/dir.json" ] ||
  fail "non-regular entries were moved"
[ -f "$S/pending/notes.txt" ] && [ -f "$S/pending/.hidden.json" ] || fail "ignored files were moved"
assert_eq "$(count workers)" 1 "the worker survived bad drop-ins"
echo "ok"
