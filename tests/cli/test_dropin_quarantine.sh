# Every kind of bad drop-in (SPEC 1, "Dropping a job in from any program") is quarantined: moved
# unchanged to dead/<name>.orig with a job record beside it, and no file, however large or deep,
# stops or crashes a worker. The job is never in no directory while that happens.
. "$QUEUECTL_TEST_LIB"

# Failures are collected, so that one run reports every broken case.
FAILURES=0
soft_fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}
# soon SECONDS CMD...: polls CMD until it succeeds; returns 1 at the deadline (scaled by
# SLOW, see lib.sh).
soon() {
  local end=$((SECONDS + $1 * SLOW))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.02
  done
}
drop() { # NAME CONTENT: a drop-in as any program makes one, tmp/ then rename
  printf '%s' "$2" >"$S/tmp/drop.partial"
  mv "$S/tmp/drop.partial" "$S/pending/$1"
}
worker_pids() { q worker status --json | json "' '.join(str(w['pid']) for w in sorted(j, key=lambda w: w['pid']))"; }

q config set max-retries 3 >/dev/null # creates the spool (the default value)

# 1. list and show report a drop-in's id from its file name before any worker has seen it.
drop early.json '{"command":"true"}'
run q show early
if [ "$RC" != 0 ] || [ "$(printf '%s' "$OUT" | json "j.get('id')")" != early ]; then
  soft_fail "show early (no worker yet) does not report \"id\":\"early\": exit $RC: $OUT $ERR"
fi
q list >"$T/list.txt"
awk 'NR > 1 { print $1 }' "$T/list.txt" | grep -qx early ||
  soft_fail "list (no worker yet) has no row whose ID is 'early': $(cat "$T/list.txt")"
[ "$(q list --json | json "[x.get('id') for x in j]")" = "['early']" ] ||
  soft_fail "list --json (no worker yet) does not report id 'early': $(q list --json)"

start_workers 1
PIDS=$(worker_pids)
SUP=$(head -1 "$T/pids")
soon 15 is_state early completed || soft_fail "the drop-in early did not complete"
cp "$S/done/early.json" "$T/early.json"

# 2. Every kind of bad drop-in, all at once; and a valid one nested 10 deep in an extra field.
cat >"$T/cases.py" <<'PY'
import json, os, re, sys, time
spool, T, mode = sys.argv[1:4]
deep = lambda n: "[" * n + "]" * n
cmd = lambda tag: "touch %s/ran-%s" % (T, tag)  # none of these may run
LONG = "L" * 195 + ".json"                     # a 200-character name
# name, exact bytes, record under the name's stem or a generated id, why (regex), fields kept
CASES = [
    ("invalid.json", b'{"command": "echo no', "stem", r"json|pars|syntax", {}),
    ("array.json", b"[1,2]", "stem", r"object|array", {}),
    ("number.json", b"42", "stem", r"object|number", {}),
    ("wrongtype.json", ('{"command":"%s","priority":"high","x-note":"kept"}' % cmd("wrongtype")).encode(),
     "stem", r"priority", {"command": cmd("wrongtype"), "priority": "high", "x-note": "kept"}),
    ("range.json", ('{"priority": 1e400, "x-note": "kept", "command": "%s"}' % cmd("range")).encode(),
     "stem", r"priority|1e400|range|overflow|large", {"command": cmd("range"), "x-note": "kept"}),
    ("deep100.json", ('{"command":"%s","x":%s}' % (cmd("deep100"), deep(99))).encode(),
     "stem", r"deep|depth|nest|level", {}),
    ("trail.json", ('{"command":"%s"} x' % cmd("trail")).encode(),
     "stem", r"after|trail|end|garbage|extra|json", {}),
    ("nul.json", ('{"command":"%s"}' % cmd("nul")).encode() + b"\0\0\0",
     "stem", r"nul|\\0|byte|after|trail|end|garbage|extra|json", {}),
    ("named.json", ('{"command":"%s","id":"other"}' % cmd("named")).encode(),
     "stem", r"differ|match|other", {"command": cmd("named")}),
    ("bad name!.json", ('{"command":"%s"}' % cmd("space")).encode(), "generated", r"name",
     {"command": cmd("space")}),
    ("j\u00f6b.json", ('{"command":"%s"}' % cmd("nonascii")).encode(), "generated", r"name",
     {"command": cmd("nonascii")}),
    (LONG, ('{"command":"%s"}' % cmd("long")).encode(), "generated", r"name",
     {"command": cmd("long")}),
    # the id of the completed job "early", dropped again
    ("early.json", ('{"command":"%s"}' % cmd("dup")).encode(), "generated",
     r"exist|already|duplicate|taken", {"command": cmd("dup")}),
]
GOOD = ("deep10.json", ('{"command":"touch %s/ran-deep10","x":%s}' % (T, deep(9))).encode())
ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
names = [c[0] for c in CASES] + [GOOD[0]]
pending = os.path.join(spool, "pending")
dead = os.path.join(spool, "dead")

if mode == "drop":
    for i, (name, data) in enumerate([(c[0], c[1]) for c in CASES] + [GOOD]):
        tmp = os.path.join(spool, "tmp", "case%d.partial" % i)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(pending, name))
elif mode == "wait":  # until every case has left pending/, or the deadline
    end = time.monotonic() + float(sys.argv[4])
    while time.monotonic() < end:
        left = [n for n in names if os.path.exists(os.path.join(pending, n))]
        if not left:
            break
        time.sleep(0.02)
    for n in left:
        print("FAIL: %r is still in pending/ (never quarantined)" % n)
elif mode == "check":
    dlq = json.load(open(os.path.join(T, "dlq.json")))
    fails = []
    for name, data, where, why, fields in CASES:
        stem = name[:-5]
        if os.path.exists(os.path.join(pending, name)):
            continue  # reported by "wait"
        for d in ("processing", "failed", "done"):
            if where == "stem" and os.path.exists(os.path.join(spool, d, name)):
                fails.append("%r was taken as a job (it is in %s/), not quarantined" % (name, d))
        orig = os.path.join(dead, name + ".orig")
        if not os.path.exists(orig):
            fails.append("%r: no dead/%s.orig" % (name, name))
            continue
        if open(orig, "rb").read() != data:
            fails.append("%r: dead/%s.orig differs from the file dropped" % (name, name))
        others = [f for f in os.listdir(dead) if f.startswith(name + ".") and f.endswith(".orig") and f != name + ".orig"]
        if others:
            fails.append("%r: quarantined more than once: %s" % (name, others))
        recs = [r for r in dlq if r.get("original_file") == name + ".orig"]
        if len(recs) != 1:
            fails.append("%r: %d records in 'dlq list --json' with original_file %r" % (name, len(recs), name + ".orig"))
            continue
        r = recs[0]
        rid = r.get("id")
        if where == "stem" and rid != stem:
            fails.append("%r: record id %r, expected %r" % (name, rid, stem))
        if where == "generated" and (not isinstance(rid, str) or not ID.match(rid) or rid == stem):
            fails.append("%r: record id %r is not a newly generated valid id" % (name, rid))
        if isinstance(rid, str) and not os.path.exists(os.path.join(dead, str(rid) + ".json")):
            fails.append("%r: no record file dead/%s.json" % (name, rid))
        if r.get("state") != "dead":
            fails.append("%r: record state %r" % (name, r.get("state")))
        err = r.get("last_error")
        if not isinstance(err, str) or not re.search(why, err, re.I):
            fails.append("%r: last_error %r does not say why (expected /%s/)" % (name, err, why))
        for k, v in fields.items():
            if r.get(k) != v:
                fails.append("%r: record has %s=%r, the original had %r" % (name, k, r.get(k), v))
    for f in sorted(os.listdir(T)):
        if f.startswith("ran-") and f != "ran-deep10":
            fails.append("a bad drop-in was run: %s" % f[4:])
    for f in fails:
        print("FAIL: " + f)
PY
python3 "$T/cases.py" "$S" "$T" drop
python3 "$T/cases.py" "$S" "$T" wait $((15 * SLOW)) >"$T/fails"
q dlq list --json >"$T/dlq.json"
python3 "$T/cases.py" "$S" "$T" check >>"$T/fails"
while IFS= read -r line; do soft_fail "${line#FAIL: }"; done <"$T/fails"
soon 10 is_state deep10 completed ||
  soft_fail "deep10 (a valid job nested 10 deep in an extra field) did not complete: $(q show deep10 2>&1 | tr -d '\n')"
cmp -s "$S/done/early.json" "$T/early.json" || soft_fail "the completed job early changed when its id was dropped again"

# 3. A large valid file does not stall the worker.
python3 -c "
import sys
sys.stdout.write('{\"command\":\"true\",\"x-big\":\"' + 'a' * 20000000 + '\"}')" >"$S/tmp/big.partial"
mv "$S/tmp/big.partial" "$S/pending/big.json"
drop small.json '{"command":"true"}'
soon 10 is_state small completed ||
  soft_fail "a small job dropped after a 20 MB one did not complete within $((10 * SLOW)) s"

# 4. Never in no directory: `show NAME` keeps finding a bad drop-in while it is quarantined.
# Two threads call `show` in a tight loop on the name about to be dropped; an answer "no such job"
# to a call that began after the file was renamed into pending/ means the job was nowhere.
cat >"$T/race.py" <<'PY'
import os, subprocess, sys, threading, time
q, spool, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
current = [None]
dropped = {}   # name -> monotonic time once the file is in pending/
calls = {}     # name -> show calls made for it
nowhere = []
done = threading.Event()

def hammer():
    while not done.is_set():
        name = current[0]
        t0 = time.monotonic()
        r = subprocess.run([q, "show", name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        calls[name] = calls.get(name, 0) + 1
        if b"no such job" in r.stderr and name in dropped and t0 >= dropped[name]:
            nowhere.append("%s: %s" % (name, r.stderr.decode(errors="replace").strip()))

def wait(cond, limit):
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True

fails = []
current[0] = "race00"
threads = [threading.Thread(target=hammer) for _ in range(2)]
for t in threads:
    t.start()
for i in range(1, n + 1):
    name = "race%02d" % i
    current[0] = name
    wait(lambda: calls.get(name, 0) >= 2, 10)  # the threads are on it
    tmp = os.path.join(spool, "tmp", name + ".partial")
    with open(tmp, "w") as f:
        f.write('{"command": "never run %d' % i)
    os.rename(tmp, os.path.join(spool, "pending", name + ".json"))
    dropped[name] = time.monotonic()
    dead = os.path.join(spool, "dead", name + ".json")
    if not wait(lambda: os.path.exists(dead) and os.path.exists(dead + ".orig"), 10):
        fails.append("%s.json was not quarantined as dead/%s.json(.orig)" % (name, name))
    wait(lambda: calls.get(name, 0) >= 4, 10)  # and asked once more after it was
done.set()
for t in threads:
    t.join()
print("%d 'show' calls while %d bad drop-ins were quarantined" % (sum(calls.values()), n), file=sys.stderr)
for f in fails:
    print("FAIL: " + f)
if nowhere:
    names = sorted(set(x.split(":")[0] for x in nowhere))
    print("FAIL: %d of %d bad drop-ins were in no directory while quarantined (%s); e.g. %s"
          % (len(names), n, " ".join(names[:5]), nowhere[0]))
PY
python3 "$T/race.py" "$QUEUECTL" "$S" 30 >"$T/fails"
while IFS= read -r line; do soft_fail "${line#FAIL: }"; done <"$T/fails"

# 5. 100,000 nested arrays: a worker must not crash on it (the old one overflowed its stack).
python3 -c "
import sys
sys.stdout.write('{\"command\":\"touch $T/ran-deepest\",\"x\":' + '[' * 100000 + ']' * 100000 + '}')" >"$S/tmp/deepest.partial"
cp "$S/tmp/deepest.partial" "$T/deepest.json"
mv "$S/tmp/deepest.partial" "$S/pending/deepest.json"
if soon 15 test ! -e "$S/pending/deepest.json"; then
  [ -f "$S/dead/deepest.json.orig" ] && cmp -s "$S/dead/deepest.json.orig" "$T/deepest.json" ||
    soft_fail "deepest.json was not moved unchanged to dead/deepest.json.orig"
  [ "$(q dlq list --json | json "len([r for r in j if r.get('original_file') == 'deepest.json.orig'])")" = 1 ] ||
    soft_fail "deepest.json: not exactly one record with original_file deepest.json.orig"
  ORIGS=("$S"/dead/deepest.json*.orig)
  [ ${#ORIGS[@]} = 1 ] || soft_fail "deepest.json quarantined more than once: ${ORIGS[*]}"
  is_state deepest dead || soft_fail "deepest: no record dead/deepest.json"
  [ ! -e "$T/ran-deepest" ] || soft_fail "deepest.json was run"
else
  soft_fail "deepest.json (100,000 nested arrays) is still in pending/; worker log: $(grep -v '^$' "$S/workers/detached.log" 2>/dev/null | tail -3 | tr '\n' ' ')"
fi
[ "$(worker_pids)" = "$PIDS" ] || soft_fail "the worker died on deepest.json: pids '$PIDS' then '$(worker_pids)'"
drop afterdeep.json '{"command":"true"}'
soon 10 is_state afterdeep completed || soft_fail "a valid job dropped after deepest.json did not complete"

# 6. The worker survived all of it, and a restart quarantines nothing twice.
[ "$(worker_pids)" = "$PIDS" ] || soft_fail "the worker did not survive the bad drop-ins: pids '$PIDS' then '$(worker_pids)'"
alive "$SUP" || soft_fail "the supervisor $SUP is gone"
dead_files() { find "$S/dead" -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | sort; }
dead_files >"$T/dead.before"
expect 0 timeout 30 "$QUEUECTL" worker stop
start_workers 1
drop probe.json '{"command":"true"}'
soon 10 is_state probe completed || soft_fail "a job dropped after the restart did not complete"
dead_files >"$T/dead.after"
cmp -s "$T/dead.before" "$T/dead.after" ||
  soft_fail "the restarted worker changed dead/: $(diff "$T/dead.before" "$T/dead.after" | grep '^[<>]' | head -5 | tr '\n' ' ')"

[ "$FAILURES" = 0 ] || fail "$FAILURES failures (see above)"
echo "ok"
