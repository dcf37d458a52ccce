# Many worker processes under two supervisors: every job runs exactly once.
. "$QUEUECTL_TEST_LIB"

OUTF="$T/ids"
python3 - "$OUTF" >"$T/jobs" <<'PY'
import json, sys
for i in range(900):
    print(json.dumps({"id": "j%04d" % i, "command": "echo $QUEUECTL_JOB_ID >> %s" % sys.argv[1]}))
PY
# Half before the workers start, half while they run.
head -450 "$T/jobs" | q enqueue - >/dev/null
q worker start --detach --count 2 >/dev/null
q worker start --detach --count 1 >/dev/null
assert_eq "$(count workers)" 3
tail -450 "$T/jobs" | q enqueue - >/dev/null
wait_until 120 count_is completed 900
assert_eq "$(wc -l <"$OUTF")" 900 "lines written"
assert_eq "$(sort -u "$OUTF" | wc -l)" 900 "distinct ids run"
assert_eq "$(count pending) $(count processing) $(count failed) $(count dead)" "0 0 0 0"
# Work was shared (the claim race really happened between processes).
python3 - "$S/done" <<'PY' || fail "only one worker ran jobs"
import glob, re, sys
workers = set()
for p in glob.glob(sys.argv[1] + "/*.log"):
    m = re.search(r"by worker (\d+)", open(p).read())
    workers.add(m.group(1))
sys.exit(0 if len(workers) >= 2 else 1)
PY
echo "ok"
