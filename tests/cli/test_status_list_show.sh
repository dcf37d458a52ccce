# status, list and show: output formats, --json shapes, order and --limit.
. "$QUEUECTL_TEST_LIB"

new_spool
expect 0 q status --json
assert_eq "$OUT" '{"pending":0,"held":0,"processing":0,"failed":0,"completed":0,"dead":0,"workers":0}'
expect 0 q status
assert_contains "$OUT" "pending     0"
assert_contains "$OUT" "workers     0"

# Created b, then c, then a: ids and creation order differ.
q enqueue '{"id":"b","command":"true"}' >/dev/null
q enqueue '{"id":"c","command":"true"}' >/dev/null
q enqueue '{"id":"a","command":"true"}' >/dev/null
q cancel c >/dev/null

expect 0 q status --json
assert_eq "$OUT" '{"pending":2,"held":0,"processing":0,"failed":0,"completed":0,"dead":1,"workers":0}'

# list: oldest created_at first, all states by default.
assert_eq "$(q list --json | json "' '.join(x['id'] for x in j)")" "b c a"
assert_eq "$(q list --state pending --json | json "' '.join(x['id'] for x in j)")" "b a"
assert_eq "$(q list --limit 2 --json | json "' '.join(x['id'] for x in j)")" "b c"
assert_eq "$(q list --state done --json)" "[]"
assert_eq "$(q dlq list --json | json "j[0]['id'], j[0]['state'], j[0]['last_error']")" "c dead cancelled"
expect 0 q list
assert_eq "$(printf '%s\n' "$OUT" | head -1 | awk '{print $1, $2}')" "ID STATE"
assert_eq "$(printf '%s\n' "$OUT" | sed -n 2p | awk '{print $1, $2}')" "b pending"
expect 2 q list --state sleeping
assert_one_error_line
assert_contains "$ERR" "invalid state 'sleeping'"

# show: the stored JSON (pretty), --json accepted.
expect 0 q show a
assert_eq "$(printf '%s' "$OUT" | json "j['id'], j['command']")" "a true"
expect 0 q show a --json
expect 1 q show nosuch
assert_one_error_line
assert_contains "$ERR" "no such job 'nosuch'"
expect 2 q show '../etc'
assert_one_error_line

# status stays quick on a large spool: it counts entries and parses no file. Files with
# broken content prove the point (a parser would not count them the same way).
mkdir -p "$T/big"
python3 - "$S/pending" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(20000):
    with open(os.path.join(d, "x%06d.json" % i), "w") as f:
        f.write("not even json")
PY
assert_eq "$(count pending)" 20002 "pending count"
echo "ok"
