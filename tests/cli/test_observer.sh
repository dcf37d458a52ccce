# A file is final on arrival: a program watching done/, failed/ and dead/ with inotify reads
# each job file the instant it arrives and finds that state's content, and `show` / `list`
# polled during a drain never report a half-done state (SPEC 1, 2, 3, 5).
. "$QUEUECTL_TEST_LIB"

OBSERVER="$(dirname "$QUEUECTL_TEST_LIB")/../support/inotify_observer.py"
command -v timeout >/dev/null || fail "timeout(1) is needed"

q config set backoff-base 1 >/dev/null
q config set backoff-max 1 >/dev/null

# 400 jobs: two thirds succeed, a third exit 3 with max_retries 0 (-> dead/ at once) or
# 1 (-> failed/, then dead/ about a second later).
python3 >"$T/jobs" <<'PY'
import json
for i in range(400):
    if i % 3:
        print(json.dumps({"id": "o%04d" % i, "command": "true"}))
    else:
        print(json.dumps({"id": "o%04d" % i, "command": "exit 3", "max_retries": (i // 3) % 2}))
PY
NJOBS=400
NDONE=$(grep -c '"true"' "$T/jobs")
NDEAD=$((NJOBS - NDONE))

python3 "$OBSERVER" "$S" "$T/obs.ready" "$T/obs.json" 2>"$T/obs.err" &
OBS=$!
ON_EXIT="kill $OBS 2>/dev/null; kill \$POLL 2>/dev/null"
POLL=""
wait_until 10 test -e "$T/obs.ready"

# The poller: `list --json` and `show ID` over and over until $T/stop exists (or 60 s).
python3 - "$QUEUECTL" "$T/stop" "$T/poll.json" "$T/jobs" 2>"$T/poll.err" <<'PY' &
import json, os, random, subprocess, sys, time
exe, stop, report, jobs = sys.argv[1:5]
ids = [json.loads(l)["id"] for l in open(jobs)]
st = {"lists": 0, "shows": 0, "objects": 0, "by_state": {}, "mismatches": 0, "examples": []}

def bad(j):
    s = j.get("state")
    why = []
    if s == "completed" and j.get("exit_code") != 0:
        why.append("completed with exit_code %r" % (j.get("exit_code"),))
    if s == "dead" and j.get("last_error") is None:
        why.append("dead with last_error null")
    if s == "failed" and j.get("next_run_at") is None:
        why.append("failed with next_run_at null")
    if s == "failed" and j.get("last_error") is None:
        why.append("failed with last_error null")
    return why

def judge(src, j):
    st["objects"] += 1
    st["by_state"][str(j.get("state"))] = st["by_state"].get(str(j.get("state")), 0) + 1
    why = bad(j)
    if why:
        st["mismatches"] += 1
        line = "MISMATCH %s: %s: %s" % (src, "; ".join(why), json.dumps(j)[:400])
        if len(st["examples"]) < 20:
            st["examples"].append(line)
        print(line, file=sys.stderr, flush=True)

def run(*args):
    return subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=20)

end = time.monotonic() + 60
while time.monotonic() < end and not os.path.exists(stop):
    r = run("list", "--json")
    if r.returncode != 0:
        print("list --json exited %d: %s" % (r.returncode, r.stderr.decode()[:300]), file=sys.stderr)
        st["mismatches"] += 1
    else:
        st["lists"] += 1
        for j in json.loads(r.stdout):
            judge("list", j)
    for i in random.sample(ids, 8):
        r = run("show", i)
        if r.returncode == 0:  # exit 1 before the job is enqueued
            st["shows"] += 1
            judge("show " + i, json.loads(r.stdout))
json.dump(st, open(report, "w"))
PY
POLL=$!

start_workers 3
# Enqueued in four batches while the workers run.
for k in 0 1 2 3; do
  sed -n "$((k * 100 + 1)),$((k * 100 + 100))p" "$T/jobs" | q enqueue - >/dev/null
done
drained() {
  [ "$(q status --json | json "j['completed'], j['dead'], j['pending'] + j['processing'] + j['failed']")" = "$NDONE $NDEAD 0" ]
}
wait_until 60 drained
touch "$T/stop"
timeout 40 tail -s 0.1 --pid="$POLL" -f /dev/null || fail "poller did not stop"
wait "$POLL" || fail "poller failed: $(tail -5 "$T/poll.err")"
kill "$OBS"
timeout 20 tail -s 0.1 --pid="$OBS" -f /dev/null || fail "observer did not stop"
wait "$OBS" || fail "observer failed: $(tail -5 "$T/obs.err")"
q worker stop >/dev/null

python3 - "$T/obs.json" "$T/poll.json" "$NJOBS" <<'PY' || fail "see above"
import json, sys
o = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
n = int(sys.argv[3])
print("observer: %d reads, %d checked (%s), %d gone, %d moved on, %d mismatches"
      % (o["reads"], o["checked"], o["by_dir"], o["gone"], o["moved_on"], o["mismatches"]))
print("poller: %d lists, %d shows, %d objects (%s), %d mismatches"
      % (p["lists"], p["shows"], p["objects"], p["by_state"], p["mismatches"]))
ok = True
for line in o["examples"][:3] + p["examples"][:3]:
    print(line[:500], file=sys.stderr)
if o["mismatches"]:
    print("FAIL: observer: %d files in done/failed/dead did not hold their state's content on arrival"
          % o["mismatches"], file=sys.stderr)
    ok = False
if p["mismatches"]:
    print("FAIL: show/list: %d objects inconsistent with their state" % p["mismatches"],
          file=sys.stderr)
    ok = False
# Every job arrived in done/ or dead/ once and stays there: the observer read each.
if o["by_dir"].get("done", 0) + o["by_dir"].get("dead", 0) < n:
    print("FAIL: observer checked only %d arrivals in done/ and dead/, expected %d"
          % (o["by_dir"].get("done", 0) + o["by_dir"].get("dead", 0), n), file=sys.stderr)
    ok = False
if p["lists"] < 2:
    print("FAIL: the poller listed only %d times during the drain" % p["lists"], file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
PY
echo "ok"
