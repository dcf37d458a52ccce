# Torture: thousands of short jobs and a few long ones under a storm of kill -9 at workers,
# supervisors and job process groups, and of `hold` and `release` of waiting jobs. No job is lost, run twice at once, left half-moved or
# over its retries; every file says what its directory says, also to an inotify observer
# reading each one the instant it arrives; nothing but jobs and logs is left behind
# (SPEC 1, 2, 3). About 60-90 s.
. "$QUEUECTL_TEST_LIB"

OBSERVER="$(dirname "$QUEUECTL_TEST_LIB")/../support/inotify_observer.py"
command -v flock >/dev/null || fail "flock(1) is needed"
command -v timeout >/dev/null || fail "timeout(1) is needed"
STORM_MIN=${QUEUECTL_TORTURE_STORM:-35} # seconds of kills (at least; 40 at most)
NSHORT=2500

q config set backoff-base 1 >/dev/null
q config set backoff-max 1 >/dev/null
mkdir "$T/locks" "$T/flaky"
REC="$T/rec"
: >"$REC"

# job.sh ID SLEEP MODE: one run. Takes the job's own lock (held until every process of the
# run is gone); a lock already held means another run of the same job is alive: OVERLAP.
# Records start (with its process group) and end, one O_APPEND line each.
# MODE ok: exit 0; fail: exit 3; flaky: exit 3 on the first run only.
cat >"$T/job.sh" <<EOF
id=\$1
exec 9>>"$T/locks/\$id"
flock -n 9 || echo "OVERLAP \$id" >>"$REC"
read -r up _ </proc/uptime
read -r _ _ _ _ pg _ </proc/\$\$/stat
echo "start \$id \$up \$pg" >>"$REC"
[ "\$2" = 0 ] || sleep "\$2"
rc=0
case \$3 in
fail) rc=3 ;;
flaky) [ -e "$T/flaky/\$id" ] || { : >"$T/flaky/\$id"; rc=3; } ;;
esac
read -r up _ </proc/uptime
echo "end \$id \$up \$rc" >>"$REC"
exit \$rc
EOF

# Phase 1: 300 jobs (240 ok, 30 flaky, 30 always failing) drained without kills.
# Phase 2: 2500 short and 6 long jobs (1-3 s), enqueued in 10 batches during the storm.
python3 - "$T" "$NSHORT" <<'PY'
import json, sys
t, nshort = sys.argv[1], int(sys.argv[2])
def job(i, sleep, mode, retries):
    return json.dumps({"id": i, "max_retries": retries,
                       "command": "sh '%s/job.sh' %s %s %s" % (t, i, sleep, mode)}) + "\n"
with open(t + "/phase1", "w") as f:
    for n in range(300):
        mode = "ok" if n % 10 < 8 else ("flaky" if n % 10 == 8 else "fail")
        f.write(job("a%03d-%s" % (n, mode), 0, mode, 1 if mode == "fail" else 8))
batches = [[] for _ in range(10)]
for n in range(nshort):
    batches[n % 10].append(job("s%04d" % n, 0, "ok", 8))
for n in range(6):
    batches[n % 3].append(job("long%d" % n, 1 + n % 3, "ok", 8))
for k, b in enumerate(batches):
    with open("%s/batch%d" % (t, k), "w") as f:
        f.writelines(b)
PY

OBS1="" OBS2="" DRIVER=""
ON_EXIT='for p in $OBS1 $OBS2 $DRIVER; do kill $p 2>/dev/null; done'
start_observer() { # NAME
  python3 "$OBSERVER" "$S" "$T/$1.ready" "$T/$1.json" 2>"$T/$1.err" &
  LAST_BG=$!
  wait_until 10 test -e "$T/$1.ready"
}
stop_observer() { # NAME PID
  kill "$2"
  timeout 30 tail -s 0.1 --pid="$2" -f /dev/null || fail "observer $1 did not stop"
  wait "$2" || fail "observer $1 failed: $(tail -3 "$T/$1.err")"
}
jobs_in() { # DIR...: number of job files in those state directories
  local n=0 d
  for d in "$@"; do
    [ -d "$S/$d" ] || continue
    n=$((n + $(find "$S/$d" -maxdepth 1 -name '*.json' ! -name '.*' | wc -l)))
  done
  echo "$n"
}
# Every job finished: counted where jobs end, because a scan of the directories a job is
# still moving through (failed/ -> pending/ -> processing/) can miss it between two of them.
finished_are() { [ "$(jobs_in done dead)" = "$1" ]; }

# --- Phase 1: a normal drain under the observer ------------------------------------------
start_observer obs1
OBS1=$LAST_BG
q worker start --count 3 --detach >"$T/pids"
q enqueue - <"$T/phase1" >/dev/null
wait_until 60 finished_are 300
stop_observer obs1 "$OBS1"

# --- Phase 2: the storm -------------------------------------------------------------------
start_observer obs2
OBS2=$LAST_BG
python3 - "$QUEUECTL" "$T" "$STORM_MIN" "$S" >"$T/driver.out" 2>"$T/driver.err" <<'PY' &
import json, os, random, signal, subprocess, sys, time
exe, t, storm_min, spool = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
marker = t + "/job.sh"
me = {os.getpid(), os.getppid(), os.getpgrp()}
kills = {"worker": 0, "supervisor": 0, "job": 0}
st = {"kills": kills, "restarts": 0, "batches": 0, "errors": [], "holds": 0, "releases": 0}
held = []
sups = set(int(x) for x in open(t + "/pids").read().split()[:1])

def q(*args, stdin=None, timeout=30):
    return subprocess.run([exe, *args], input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False

def workers():
    try:
        r = q("worker", "status", "--json", timeout=15)
        ws = json.loads(r.stdout) if r.returncode == 0 else []
    except (subprocess.TimeoutExpired, ValueError) as e:
        st["errors"].append("worker status: %s" % e)
        return []
    for w in ws:
        if isinstance(w.get("supervisor"), int):
            sups.add(w["supervisor"])
    return [w["pid"] for w in ws if isinstance(w.get("pid"), int)]

def job_groups(exclude):
    pgs = set()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open("/proc/%s/stat" % p) as f:
                pgs.add(int(f.read().rsplit(")", 1)[1].split()[2]))
        except (OSError, IndexError, ValueError):
            continue
    return [g for g in pgs if g > 1 and g not in exclude and g not in me]

def kill(kind, target):
    try:
        os.kill(target, signal.SIGKILL)
        kills[kind] += 1
    except ProcessLookupError:
        pass

def ensure_supervisor():
    if any(alive(s) for s in sups):
        return
    try:
        r = q("worker", "start", "--count", "3", "--detach", stdin=b"", timeout=30)
    except subprocess.TimeoutExpired:
        st["errors"].append("worker start --detach timed out")
        return
    if r.returncode != 0:
        st["errors"].append("worker start exited %d: %s" % (r.returncode, r.stderr[:200]))
        return
    st["restarts"] += 1
    sups.update(int(x) for x in r.stdout.split()[:1])

t0 = time.monotonic()
next_batch = 0.0
while True:
    now = time.monotonic() - t0
    total = sum(kills.values())
    if now >= 40 or (now >= storm_min and total >= 120):
        break
    if st["batches"] < 10 and now >= next_batch:
        with open("%s/batch%d" % (t, st["batches"]), "rb") as f:
            r = q("enqueue", "-", stdin=f.read(), timeout=60)
        if r.returncode != 0:
            st["errors"].append("enqueue exited %d: %s" % (r.returncode, r.stderr[:200]))
        st["batches"] += 1
        next_batch = now + 2.5
    ensure_supervisor()
    kind = random.choices(["worker", "job", "supervisor", "hold"], [4, 4, 2, 3])[0]
    if kind == "hold":
        # Hold a waiting job (it may have moved on meanwhile: exit 1), or release one.
        if held and random.random() < 0.5:
            i = held.pop(random.randrange(len(held)))
            r = q("release", i)
            if r.returncode != 0:
                st["errors"].append("release %s exited %d: %s" % (i, r.returncode, r.stderr[:200]))
            st["releases"] += 1
        else:
            names = [n[:-5] for n in os.listdir(spool + "/pending") if n.endswith(".json") and not n.startswith(".")]
            if names:
                i = random.choice(names)
                if q("hold", i).returncode == 0:
                    held.append(i)
                    st["holds"] += 1
    elif kind == "supervisor":
        live = [s for s in sups if alive(s) and s not in me]
        if live:
            kill(kind, random.choice(live))
    elif kind == "worker":
        ws = [w for w in workers() if w not in me and alive(w)]
        if ws:
            kill(kind, random.choice(ws))
    else:
        pgs = job_groups(set(sups))
        if pgs:
            kill(kind, -random.choice(pgs))
    time.sleep(random.uniform(0.1, 0.35))
# Left running: one supervisor (a new one if the last was killed); every held job released.
time.sleep(0.2)
ensure_supervisor()
for i in held:
    r = q("release", i)
    if r.returncode != 0:
        st["errors"].append("release %s exited %d: %s" % (i, r.returncode, r.stderr[:200]))
    st["releases"] += 1
st["supervisors_alive"] = sorted(s for s in sups if alive(s))
st["seconds"] = round(time.monotonic() - t0, 1)
json.dump(st, sys.stdout)
PY
DRIVER=$!
timeout 120 tail -s 0.1 --pid="$DRIVER" -f /dev/null || fail "the kill driver did not finish"
wait "$DRIVER" || fail "the kill driver failed: $(tail -5 "$T/driver.err")"
DRIVER=""
python3 - "$T/driver.out" <<'PY' || fail "storm: $(cat "$T/driver.out")"
import json, sys
d = json.load(open(sys.argv[1]))
k = d["kills"]
print("storm: %.1f s, kill -9 sent: %d workers, %d supervisors, %d job groups; %d supervisor restarts; "
      "%d holds, %d releases" % (d["seconds"], k["worker"], k["supervisor"], k["job"], d["restarts"], d["holds"],
                                 d["releases"]))
if d["holds"] < 3 or d["releases"] != d["holds"]:
    print("FAIL: storm: %d holds and %d releases" % (d["holds"], d["releases"]), file=sys.stderr)
    sys.exit(1)
for e in d["errors"]:
    print("FAIL: storm: " + e, file=sys.stderr)
if d["batches"] != 10:
    print("FAIL: storm: only %d of 10 batches enqueued" % d["batches"], file=sys.stderr)
if len(d["supervisors_alive"]) != 1:
    print("FAIL: storm: %d supervisors alive after the storm, expected 1: %s"
          % (len(d["supervisors_alive"]), d["supervisors_alive"]), file=sys.stderr)
# A sanity floor (not the aim of ~120) so that a slow machine does not fail the test.
if sum(k.values()) < 50 or min(k.values()) < 3:
    print("FAIL: storm: too few kills landed: %s" % k, file=sys.stderr)
sys.exit(1 if d["errors"] or d["batches"] != 10 or len(d["supervisors_alive"]) != 1
         or sum(k.values()) < 50 or min(k.values()) < 3 else 0)
PY

# --- Drain, graceful stop ------------------------------------------------------------------
wait_until 90 finished_are $((300 + NSHORT + 6))
timeout 60 "$QUEUECTL" worker stop >/dev/null || fail "worker stop failed or hung"
stop_observer obs2 "$OBS2"
OBS1="" OBS2=""

# --- Checks ----------------------------------------------------------------------------------
python3 - "$S" "$T" <<'PY' || fail "see above"
import glob, json, os, re, sys
spool, t = sys.argv[1], sys.argv[2]
bad = {}  # category -> messages
def problem(msg, cat=None):
    bad.setdefault(cat or msg.split(":")[0], []).append(msg)

expected = {}
for p in [t + "/phase1"] + ["%s/batch%d" % (t, k) for k in range(10)]:
    for line in open(p):
        j = json.loads(line)
        expected[j["id"]] = j

state_dirs = ["pending", "held", "processing", "failed", "done", "dead"]
where = {}
for d in state_dirs:
    p = os.path.join(spool, d)
    if not os.path.isdir(p):
        continue
    names = set(os.listdir(p))
    for n in sorted(names):
        if n.endswith(".json") and not n.startswith("."):
            where.setdefault(n[:-5], []).append(d)
        elif n.endswith(".log") and not n.startswith("."):
            if n[:-4] + ".json" not in names:
                problem("leftover: %s/%s has no job beside it" % (d, n), "log without its job")
        elif n.endswith(".orig") and not n.startswith("."):
            pass
        else:
            problem("leftover: %s/%s" % (d, n), "leftover %s/%s" % (d, re.sub(r"[0-9]+", "N", n)))
tmp = sorted(os.listdir(os.path.join(spool, "tmp")))
if tmp:
    problem("leftover: tmp/ holds %d entries: %s" % (len(tmp), tmp[:10]))

# Runs, from the records.
starts, last, overlaps = {}, {}, []
for line in open(t + "/rec"):
    f = line.split()
    if not f:
        continue
    if f[0] == "OVERLAP":
        overlaps.append(f[1])
    elif f[0] in ("start", "end") and len(f) >= 3:
        if f[0] == "start":
            starts[f[1]] = starts.get(f[1], 0) + 1
        last[f[1]] = f
    else:
        problem("unreadable record line: %r" % line, "records")
if overlaps:
    problem("OVERLAP: %d runs started while another run of the same job held its lock: %s"
            % (len(overlaps), sorted(set(overlaps))[:10]))

counts = {"done": 0, "dead": 0}
for i, places in sorted(where.items()):
    if i not in expected:
        problem("unknown job %s in %s" % (i, places), "unknown job")
    if len(places) != 1:
        problem("job %s is in %d directories: %s" % (i, len(places), places), "job in two directories")
for i, e in sorted(expected.items()):
    places = where.get(i, [])
    if not places:
        problem("job %s lost: in no state directory" % i, "job lost")
        continue
    d = places[0]
    if d not in ("done", "dead"):
        problem("job %s left in %s/" % (i, d), "job unfinished")
        continue
    counts[d] += 1
    try:
        text = open(os.path.join(spool, d, i + ".json")).read()
        j = json.loads(text)
    except (OSError, ValueError) as ex:
        problem("%s/%s.json unreadable: %s" % (d, i, ex), "unreadable job file")
        continue
    att, mr, runs = j.get("attempts"), e["max_retries"], starts.get(i, 0)
    why = []
    if d == "done":
        if j.get("state") != "completed":
            why.append("state %r" % j.get("state"))
        if j.get("exit_code") != 0:
            why.append("exit_code %r" % (j.get("exit_code"),))
        if runs < 1:
            why.append("no run recorded")
        elif last[i][0] != "end" or last[i][3:4] != ["0"]:
            why.append("last record %r, expected a successful end" % " ".join(last[i]))
    else:
        if j.get("state") != "dead":
            why.append("state %r" % j.get("state"))
        if j.get("last_error") is None:
            why.append("last_error null")
    if not isinstance(att, int) or att < 1:
        why.append("attempts %r" % (att,))
    else:
        if runs > att:
            why.append("%d runs recorded but attempts %d" % (runs, att))
        if att > mr + 1:
            why.append("attempts %d > max_retries + 1 = %d" % (att, mr + 1))
    # Phase 1 ran without kills: exact outcomes.
    m = re.match(r"a\d+-(ok|flaky|fail)$", i)
    if m:
        want = {"ok": ("done", 1), "flaky": ("done", 2), "fail": ("dead", 2)}[m.group(1)]
        if (d, att, runs) != (want[0], want[1], want[1]):
            why.append("phase 1 (no kills): %s/ with attempts %r and %d runs, expected %s/ and %d"
                       % (d, att, runs, want[0], want[1]))
    if why:
        problem("%s/%s.json: %s; content: %s" % (d, i, "; ".join(why), text.strip()[:300]),
                "job file or runs wrong in %s/" % d)

obs = {}
for name in ("obs1", "obs2"):
    o = json.load(open("%s/%s.json" % (t, name)))
    obs[name] = o
    if o["mismatches"]:
        for ex in o["examples"][:3]:
            problem(ex, "observer (%s): %d files did not hold their directory's content on arrival"
                    % ("drain" if name == "obs1" else "storm", o["mismatches"]))
    if o["overflows"]:
        print("note: observer %s: inotify queue overflowed %d times" % (name, o["overflows"]))

print("jobs: %d done, %d dead of %d; %d runs recorded; observer reads: drain %d (%s), storm %d (%s)"
      % (counts["done"], counts["dead"], len(expected), sum(starts.values()),
         obs["obs1"]["checked"], obs["obs1"]["by_dir"], obs["obs2"]["checked"], obs["obs2"]["by_dir"]))
if obs["obs1"]["by_dir"].get("done", 0) + obs["obs1"]["by_dir"].get("dead", 0) < 300:
    problem("observer (drain) read only %s arrivals, expected >= 300 in done/ and dead/"
            % obs["obs1"]["by_dir"], "observer")
for cat, msgs in bad.items():
    print("FAIL: %s (%d)" % (cat, len(msgs)), file=sys.stderr)
    for m in msgs[:3]:
        print("    " + m[:600], file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "ok"
