#!/usr/bin/env python3
"""queuectl benchmarks. Every figure is a median of repeated runs, next to its baseline
measured in the same run (this machine is shared and noisy), and printed as Markdown.

Usage: bench/run.py [--quick] [--only enqueue|dispatch|engine|million|workflow|cluster] BUILD_DIR
  BUILD_DIR holds queuectl (the default link, static), static-runtime/queuectl and
  dynamic/queuectl (see bench/run.sh), and for `engine` before/queuectl: the same build of
  an earlier commit, measured beside this one (BENCH_BEFORE_REV in bench/run.sh).
"""
import ctypes
import select
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
QUICK = "--quick" in sys.argv
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
if ONLY:
    ARGS.remove(ONLY)
BUILD = os.path.abspath(ARGS[0] if ARGS else "build-bench")
Q = os.path.join(BUILD, "queuectl")
Q_DYN = os.path.join(BUILD, "dynamic", "queuectl")
Q_SR = os.path.join(BUILD, "static-runtime", "queuectl")
Q_BEFORE = os.path.join(BUILD, "before", "queuectl")
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="queuectl-bench.", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
REPS = int(os.environ.get("BENCH_REPS", "3")) if not QUICK else 1
# nq and task-spooler drain 10,000 jobs 5 to 15 times slower than queuectl; measuring them
# once is enough to place them, and keeps a full run near half an hour.
BASELINE_REPS = min(REPS, int(os.environ.get("BENCH_BASELINE_REPS", "1")))
out = []


def say(line=""):
    print(line, flush=True)
    out.append(line)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def q(spool, *args, **kw):
    return subprocess.run([Q, "--spool", spool, *args], check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


_serial = [0]


def fresh(name):
    """A new empty directory, with the file system quiet (pending writeback flushed).
    Nothing is deleted until the run ends: on ext4 without a journal, each file creation
    scans past every inode freed in the last minutes, so removing the last repetition's
    files would slow down the next measurement."""
    _serial[0] += 1
    d = os.path.join(WORK, f"{name}.{_serial[0]}")
    os.makedirs(d)
    os.sync()
    return d


def new_spool(spool, exe=None):
    """Creates an empty spool as users get one (read-only commands create nothing): a
    `config set` of a default value."""
    subprocess.run([exe or Q, "--spool", spool, "config", "set", "max-retries", "3"], check=True,
                   stdout=subprocess.DEVNULL)


def fresh_spool(name):
    """A path for a new spool, created by queuectl itself (mode 0700, as users get it; a
    group-readable directory would be taken for a group-shared spool)."""
    return os.path.join(fresh(name), "spool")


def med(xs):
    return statistics.median(xs)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def compile_c(name):
    """bench/NAME.c built once per run (latency_floor is asked for in every repetition)."""
    exe = os.path.join(WORK, name)
    if not os.path.exists(exe):
        sh("cc", "-O2", "-o", exe, os.path.join(HERE, name + ".c"))
    return exe


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def hyperfine(cmds, runs=300, warmup=20):
    """Median wall time (s) of each command, run interleaved by hyperfine."""
    js = os.path.join(WORK, "hf.json")
    sh("hyperfine", "-N", "--warmup", str(warmup), "--runs", str(runs), "--export-json", js, *cmds,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [r["median"] for r in json.load(open(js))["results"]]


def bench_enqueue():
    n = 20000 if QUICK else 100000
    say("## Enqueue and status (issue 2)")
    say()
    mkfiles = compile_c("mkfiles")
    lines = os.path.join(WORK, "jobs.jsonl")
    with open(lines, "w") as f:
        for i in range(n):
            f.write(json.dumps({"command": "true", "x-n": i}) + "\n")
    floor, bulk = [], []
    sp = None
    for _ in range(REPS):
        d = fresh("files")
        floor.append(float(subprocess.run([mkfiles, d, str(n)], check=True, stdout=subprocess.PIPE, text=True).stdout))
        sp = fresh_spool("bulk")
        t0 = time.monotonic()
        with open(lines) as f:
            subprocess.run([Q, "--spool", sp, "enqueue", "-"], stdin=f, stdout=subprocess.DEVNULL, check=True)
        bulk.append(time.monotonic() - t0)
    fr, br = n / med(floor), n / med(bulk)
    say(f"Bulk `enqueue -` of {n:,} jobs, median of {REPS} runs, against the floor of creating {n:,} small files in one directory (no fsync):")
    say()
    say("| | seconds | files or jobs/s | ratio to floor |")
    say("|---|---:|---:|---:|")
    say(f"| floor: `bench/mkfiles.c` | {med(floor):.2f} | {fr:,.0f} | 1.00 |")
    say(f"| `queuectl enqueue -` (durable: one syncfs + one fsync per batch) | {med(bulk):.2f} | {br:,.0f} | {br / fr:.2f} |")
    say()
    # status on the spool just filled, and on a million-job spool.
    st = hyperfine([f"{Q} --spool {sp} status"], runs=30)[0]
    say(f"`status` on {n:,} pending jobs: median {st * 1000:.1f} ms (30 runs).")
    # list must read and parse every job to order them; the floor reads every file.
    floor_read, lst = hyperfine([f"{compile_c('readfiles')} {sp}/pending", f"{Q} --spool {sp} list --limit 20"],
                                runs=10, warmup=2)
    say(f"`list --limit 20` on {n:,} pending jobs: median {lst * 1000:.0f} ms (10 runs), "
        f"{lst / floor_read:.2f}x the floor of reading every job file once (`bench/readfiles.c`, "
        f"{floor_read * 1000:.0f} ms).")
    say()
    # One enqueue process against /bin/true, and the link choices.
    sp = fresh_spool("single")
    new_spool(sp)
    empty = fresh_spool("empty")
    new_spool(empty)
    cmd = "enqueue --command true"
    t = hyperfine([
        "/bin/true",
        f"{Q} --spool {empty} status",
        f"{Q_SR} --spool {empty} status",
        f"{Q_DYN} --spool {empty} status",
        f"{Q} --spool {sp} {cmd}",
        f"{Q_SR} --spool {sp} {cmd}",
        f"{Q_DYN} --spool {sp} {cmd}",
    ])
    say("One process, started by hyperfine without a shell (`-N`), median of 300 runs. `status` on an")
    say("empty spool shows the start-up cost of each link choice; `enqueue` adds the durable write")
    say("(fdatasync of the file, rename, fsync of `pending/`):")
    say()
    say("| command | median ms | ratio to /bin/true |")
    say("|---|---:|---:|")
    names = ["/bin/true (Debian, dynamic)"]
    for what in ("status", "enqueue --command true"):
        for link in ("static (default)", "static-runtime: glibc shared", "dynamic"):
            names.append(f"queuectl {what}, {link}")
    for name, v in zip(names, t):
        say(f"| {name} | {v * 1000:.2f} | {v / t[0]:.2f} |")
    say()


def wait_completed(spool, n, timeout=900):
    """Waits until n runs completed, reading the spool's stats counter (one small file;
    counted by the workers once each job is durable in done/), so that waiting costs
    the CPUs nothing measurable, unlike listing a directory of thousands of entries."""
    path = os.path.join(spool, "stats")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "runs_completed" and int(value) >= n:
                        return time.monotonic()
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {n} completed jobs in {spool}")


def measure_latency(n, name, enqueue_cmd, env=None):
    """Runs n jobs one at a time; each job writes its start time (`date +%s.%N`) into a
    FIFO that this process reads, blocked: no polling competes with the job for the CPUs,
    and the job creates no file. enqueue_cmd(shell_command) gives the argv that enqueues
    it. Returns the delays from the enqueue command's return and from its call to the
    job's start."""
    fifo = os.path.join(fresh(name + "-marks"), "fifo")
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a reader always exists: the job's open never blocks
    from_ret, from_call = [], []
    try:
        for _ in range(n):
            t_call = time.time()
            subprocess.run(enqueue_cmd(f"date +%s.%N > {fifo}"), check=True, env=env, stdout=subprocess.DEVNULL)
            t_ret = time.time()
            start = float(os.read(fd, 64).decode())
            from_ret.append(start - t_ret)
            from_call.append(start - t_call)
    finally:
        os.close(fd)
    return from_ret, from_call


def latency_queuectl(n, exe=None):
    exe = exe or Q
    sp = fresh_spool("lat-q")
    subprocess.run([exe, "--spool", sp, "worker", "start", "--detach", "--count", "1"], check=True, stdout=subprocess.DEVNULL)
    try:
        return measure_latency(n, "lat-q", lambda cmd: [exe, "--spool", sp, "enqueue", "--command", cmd])
    finally:
        subprocess.run([exe, "--spool", sp, "worker", "stop"], check=True, stdout=subprocess.DEVNULL)


def latency_floor(n):
    """The job's own command started directly, with no queue: what a dispatch cannot go
    below on this machine in this hour."""
    fifo = os.path.join(fresh("lat-floor"), "fifo")
    os.mkfifo(fifo)
    out = subprocess.run([compile_c("latency_floor"), str(n), fifo], check=True, stdout=subprocess.PIPE, text=True).stdout
    xs = [float(x) for x in out.split()]
    return xs, xs


def latency_nq(n):
    env = dict(os.environ, NQDIR=fresh("lat-nq"))
    result = measure_latency(n, "lat-nq", lambda cmd: ["nq", "-q", "sh", "-c", cmd], env)
    subprocess.run(["fq", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return result


def tsp_env(name):
    return dict(os.environ, TS_SOCKET=os.path.join(WORK, name + ".sock"), TS_MAXFINISHED="100000", TMPDIR=fresh(name + "-tmp"))


def latency_tsp(n):
    env = tsp_env("lat-tsp")
    subprocess.run(["tsp", "-S", "1"], env=env, check=True)
    try:
        return measure_latency(n, "lat-tsp", lambda cmd: ["tsp", "-n", "sh", "-c", cmd], env)
    finally:
        subprocess.run(["tsp", "-K"], env=env)


def cpu_seconds(pid):
    """User + system CPU of a process and all its threads, its children excluded."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_queuectl(n, exe=None, cpu=None):
    """Seconds to drain n `true` jobs with two workers; `cpu` (a list) gets the queue's own
    CPU seconds: supervisor and workers, the jobs' processes excluded."""
    exe = exe or Q
    sp = fresh_spool("drain-q")
    subprocess.run([exe, "--spool", sp, "enqueue", "-"], input="".join('{"command":"true"}\n' for _ in range(n)),
                   text=True, check=True, stdout=subprocess.DEVNULL)
    os.sync()  # the enqueue's writeback is not the drain's
    t0 = time.monotonic()
    pids = subprocess.run([exe, "--spool", sp, "worker", "start", "--detach", "--count", "2"], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.split()
    t1 = wait_completed(sp, n)
    if cpu is not None:
        cpu.append(sum(cpu_seconds(int(p)) for p in pids))
    subprocess.run([exe, "--spool", sp, "worker", "stop"], check=True, stdout=subprocess.DEVNULL)
    return t1 - t0


def drain_limited(n, limit):
    """drain_queuectl with the default queue limited to `limit` concurrent runs (None: no
    limit): what a queue's slots cost."""
    sp = fresh_spool("drain-lim")
    new_spool(sp)
    if limit:
        q(sp, "queue", "set", "default", "--concurrency", str(limit))
    q(sp, "enqueue", "-", input="".join('{"command":"true"}\n' for _ in range(n)))
    os.sync()
    t0 = time.monotonic()
    q(sp, "worker", "start", "--detach", "--count", "2")
    t1 = wait_completed(sp, n)
    q(sp, "worker", "stop")
    return t1 - t0


def run_batch(n, lines):
    """Seconds for one worker to run the jobs of `lines` (JSON lines), from its start."""
    sp = fresh_spool("batch")
    q(sp, "enqueue", "-", input=lines)
    os.sync()
    t0 = time.monotonic()
    q(sp, "worker", "start", "--detach", "--count", "1")
    t1 = wait_completed(sp, n)
    q(sp, "worker", "stop")
    return t1 - t0


def dependent_latency(n):
    """Delays, on one worker, from a job's end to the start of the job that comes after
    it: each pair is enqueued together, the first writes the time it ends (its last act),
    the second the time it starts, into a FIFO read here blocked."""
    sp = fresh_spool("dep-lat")
    fifo = os.path.join(fresh("dep-lat-marks"), "fifo")
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    q(sp, "worker", "start", "--detach", "--count", "1")
    delays = []
    try:
        for i in range(n):
            cmd = f"date +%s.%N > {fifo}"
            q(sp, "enqueue", "-", input=json.dumps({"id": f"a{i}", "command": cmd}) + "\n" +
              json.dumps({"id": f"b{i}", "command": cmd, "after": [f"a{i}"]}) + "\n")
            marks = []
            while len(marks) < 2:
                marks += os.read(fd, 128).decode().split()
            delays.append(float(marks[1]) - float(marks[0]))
    finally:
        os.close(fd)
        q(sp, "worker", "stop")
    return delays


def bench_workflow():
    """Issue 16's figures: dependencies and concurrency limits against the same work
    without them, measured in the same run."""
    n = 300 if QUICK else 1000
    say(f"### Workflow: a chain of {n:,} dependent jobs, dependent dispatch, a queue limit ({REPS} runs, medians)")
    say()
    chain = "".join(json.dumps({"id": f"c{i}", "command": "true", **({"after": [f"c{i-1}"]} if i else {})}) + "\n"
                    for i in range(n))
    free = "".join(json.dumps({"id": f"c{i}", "command": "true"}) + "\n" for i in range(n))
    t_chain, t_free = [], []
    for _ in range(REPS):
        t_free.append(run_batch(n, free))
        t_chain.append(run_batch(n, chain))
    r_free, r_chain = n / med(t_free), n / med(t_chain)
    say("| one worker | jobs/s | vs independent |")
    say("|---|---|---|")
    say(f"| {n:,} independent jobs | {r_free:,.0f} | 1.00 |")
    say(f"| a chain of {n:,}, each after the previous | {r_chain:,.0f} | {r_chain / r_free:.2f} |")
    say()
    m = 30 if QUICK else 100
    plain, dep = [], []
    for _ in range(REPS):
        plain += latency_queuectl(m)[0]
        dep += dependent_latency(m)
    say("| dispatch, one worker | p50 ms | p90 ms | vs plain p50 |")
    say("|---|---|---|---|")
    say(f"| plain: enqueue's return to the job's start | {med(plain) * 1e3:.2f} | {pct(plain, 90) * 1e3:.2f} | 1.00 |")
    say(f"| dependent: its dependency's end to its start | {med(dep) * 1e3:.2f} | {pct(dep, 90) * 1e3:.2f} | "
        f"{med(dep) / med(plain):.2f} |")
    say()
    k = 1000 if QUICK else 5000
    t_none, t_lim = [], []
    for _ in range(REPS):
        t_none.append(drain_limited(k, None))
        t_lim.append(drain_limited(k, 2))
    say(f"| drain of {k:,} `true` jobs, `--count 2` | jobs/s | vs no limit |")
    say("|---|---|---|")
    say(f"| no limit | {k / med(t_none):,.0f} | 1.00 |")
    say(f"| the queue limited to 2 | {k / med(t_lim):,.0f} | {med(t_none) / med(t_lim):.2f} |")
    say()


def drain_nq(n):
    d = fresh("drain-nq")
    env = dict(os.environ, NQDIR=d)
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run(["nq", "-q", "true"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["fq", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def drain_tsp(n):
    env = tsp_env("drain-tsp")
    subprocess.run(["tsp", "-S", "2"], env=env, check=True)
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run(["tsp", "-n", "true"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["tsp", "-w"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:  # -w waits for the last job only; wait until none queued or running
        s = subprocess.run(["tsp"], env=env, stdout=subprocess.PIPE, text=True).stdout
        if " running " not in s and " queued " not in s:
            break
        time.sleep(0.01)
    t = time.monotonic() - t0
    subprocess.run(["tsp", "-K"], env=env)
    return t


def bench_dispatch():
    n_lat = 50 if QUICK else 200
    n_drain = 2000 if QUICK else 10000
    say("## Dispatch latency and drain throughput (issue 3)")
    say()
    lat = {"floor": [[], []], "queuectl": [[], []], "nq": [[], []], "task-spooler": [[], []]}
    for _ in range(REPS):
        for name, fn in (("floor", latency_floor), ("queuectl", latency_queuectl), ("nq", latency_nq),
                         ("task-spooler", latency_tsp)):
            r, c = fn(n_lat)
            lat[name][0] += r
            lat[name][1] += c
    say(f"Latency to the job's first command (`date +%s.%N`) with an idle worker, {n_lat} jobs x {REPS} runs:")
    say()
    say("| system | median from enqueue's return | p99 from return | median from the enqueue call | p99 from call |")
    say("|---|---:|---:|---:|---:|")
    for name, (r, c) in lat.items():
        if name == "floor":
            say(f"| floor: `bench/latency_floor.c` starts the same command, no queue | {med(r) * 1000:.2f} ms | "
                f"{pct(r, 99) * 1000:.2f} ms | | |")
            continue
        say(f"| {name} | {med(r) * 1000:.2f} ms | {pct(r, 99) * 1000:.2f} ms | {med(c) * 1000:.2f} ms | {pct(c, 99) * 1000:.2f} ms |")
    say()
    floor_exe = compile_c("spawn_floor")
    for n_drain in ((1000,) if QUICK else (2000, 10000)):
        res = {"floor": [], "queuectl": [], "nq": [], "task-spooler": []}
        cpu = []
        baselines = n_drain == 10000 or QUICK
        for rep in range(REPS):
            res["floor"].append(float(subprocess.run([floor_exe, str(n_drain)], check=True, stdout=subprocess.PIPE,
                                                     text=True).stdout))
            res["queuectl"].append(drain_queuectl(n_drain, cpu=cpu))
            if baselines and rep < BASELINE_REPS:
                res["nq"].append(drain_nq(n_drain))
                res["task-spooler"].append(drain_tsp(n_drain))
        f = n_drain / med(res["floor"])
        qr = n_drain / med(res["queuectl"])
        say(f"Drain of {n_drain:,} `true` jobs, median of {REPS} runs"
            + (f" (nq and task-spooler: {BASELINE_REPS})" if baselines else "") + ":")
        say()
        say("| system | seconds | jobs/s | ratio to floor | queuectl's ratio to it |")
        say("|---|---:|---:|---:|---:|")
        labels = {
            "floor": "floor: `bench/spawn_floor.c`, `/bin/sh -c true` back to back, one process",
            "queuectl": "queuectl: pre-enqueued, `worker start --count 2`, until all in done/",
            "nq": "nq: `nq true` per job (its enqueue starts the job), until all ran",
            "task-spooler": "task-spooler: `tsp -S 2`, `tsp true` per job, until all ran",
        }
        for name, xs in res.items():
            if xs:
                r = n_drain / med(xs)
                say(f"| {labels[name]} | {med(xs):.2f} | {r:,.0f} | {r / f:.2f} | {qr / r:.2f} |")
        say()
        say(f"Queue CPU per job in that drain (supervisor + workers, user + system, the jobs' processes "
            f"excluded; `/proc/PID/stat`): median {med(cpu) / n_drain * 1e6:.0f} us (runs: "
            f"{', '.join(f'{c / n_drain * 1e6:.0f}' for c in cpu)}).")
        say()
    calls = subprocess.run(["bash", os.path.join(HERE, "syscalls_per_job.sh"), "2000", Q], check=True,
                           stdout=subprocess.PIPE, text=True).stdout.strip().rsplit(": ", 1)[-1]
    say(f"System calls per job of one worker fed 2,000 `true` jobs (`bench/syscalls_per_job.sh 2000`, strace -c, "
        f"every thread of the worker, the jobs excluded): {calls}.")
    say()
    bench_enqueue_during_drain()


def time_enqueues(spool, n):
    ts = []
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run([Q, "--spool", spool, "enqueue", "--command", "true"], check=True, stdout=subprocess.DEVNULL)
        ts.append(time.monotonic() - t0)
    return ts


def bench_enqueue_during_drain():
    n = 50 if QUICK else 200
    n_drain = 20000
    idle, busy = [], []
    for _ in range(REPS):
        sp = fresh_spool("idle")
        new_spool(sp)
        idle += time_enqueues(sp, n)
        sp = fresh_spool("busy")
        subprocess.run([Q, "--spool", sp, "enqueue", "-"], input='{"command":"true"}\n' * n_drain, text=True,
                       check=True, stdout=subprocess.DEVNULL)
        os.sync()
        q(sp, "worker", "start", "--detach", "--count", "2")
        wait_completed(sp, 500)  # draining at full speed
        busy += time_enqueues(sp, n)
        stats = open(os.path.join(sp, "stats")).read()
        ran = int(next(l.split()[1] for l in stats.splitlines() if l.startswith("runs_completed ")))
        q(sp, "worker", "stop")
        if ran >= n_drain:
            say("(the drain ended before the enqueues did: the figures below are not under load)")
    say(f"One `enqueue --command true` process, {n} x {REPS} runs each, on an idle spool and while two workers "
        f"drain {n_drain:,} `true` jobs at full speed on the same spool:")
    say()
    say("| | p50 ms | p99 ms |")
    say("|---|---:|---:|")
    say(f"| idle | {med(idle) * 1000:.2f} | {pct(idle, 99) * 1000:.2f} |")
    say(f"| during the drain | {med(busy) * 1000:.2f} | {pct(busy, 99) * 1000:.2f} |")
    say(f"| ratio | {med(busy) / med(idle):.2f} | {pct(busy, 99) / pct(idle, 99):.2f} |")
    say()


class Arrivals:
    """inotify on one directory: when a given file name arrives (moved or created there)."""

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, path.encode(), 0x80 | 0x100) < 0:  # MOVED_TO | CREATE
            raise OSError(ctypes.get_errno(), "inotify")

    def wait(self, name, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not select.select([self.fd], [], [], max(0.0, end - time.monotonic()))[0]:
                break
            t = time.time()
            buf = os.read(self.fd, 65536)
            off = 0
            while off < len(buf):
                length = int.from_bytes(buf[off + 12:off + 16], "little")
                if buf[off + 16:off + 16 + length].rstrip(b"\0").decode() == name:
                    return t
                off += 16 + length
        raise SystemExit(f"timed out waiting for {name}")

    def close(self):
        os.close(self.fd)


def recovery_latency(exe, n):
    """A job's worker is killed (kill -9) while its command runs on; the supervisor starts a
    new worker. Then the command exits: the delay from its last mark to the job's arrival
    in dead/ (max_retries 0: the lost run is its last) is how long the orphaned job waits
    once its lock is free. Includes the command's own exit after its mark."""
    sp = fresh_spool("recover")
    d = fresh("recover-fifos")
    run = lambda *a: subprocess.run([exe, "--spool", sp, *a], check=True, stdout=subprocess.PIPE, text=True).stdout
    run("worker", "start", "--detach", "--count", "1")
    arrivals = Arrivals(os.path.join(sp, "dead"))
    marks = os.path.join(d, "marks")
    os.mkfifo(marks)
    mfd = os.open(marks, os.O_RDWR)
    out = []
    try:
        for i in range(n):
            go = os.path.join(d, f"go{i}")
            os.mkfifo(go)
            run("enqueue", "--id", f"r{i}", "--max-retries", "0", "--command",
                f"echo started > {marks}; read x < {go}; date +%s.%N > {marks}; exit 3")
            os.read(mfd, 64)  # running
            worker = json.loads(run("worker", "status", "--json"))[0]["pid"]
            os.kill(worker, 9)
            while True:  # the supervisor's replacement, registered
                ws = json.loads(run("worker", "status", "--json"))
                if ws and ws[0]["pid"] != worker:
                    break
                time.sleep(0.01)
            # Through its start-up (a bench, not a test: settle, then measure), and past the
            # second in which the supervisor counts a worker's death as a failure at start.
            time.sleep(1.2)
            with open(go, "w") as f:
                f.write("go\n")
            mark = float(os.read(mfd, 64).decode())
            out.append(arrivals.wait(f"r{i}.json", 30) - mark)
    finally:
        os.close(mfd)
        arrivals.close()
        run("worker", "stop")
    return out


def bench_engine():
    """This build against an earlier one (before/queuectl), interleaved in one run: the
    figures the transition engine must not make worse, and its recovery latency."""
    if not os.path.exists(Q_BEFORE):
        raise SystemExit(f"{Q_BEFORE} is missing: run bench/run.sh with BENCH_BEFORE_REV=<commit>")
    n_drain = 2000 if QUICK else 10000
    n_lat = 50 if QUICK else 200
    n_bulk = 20000 if QUICK else 100000
    builds = (("before", Q_BEFORE), ("after", Q))
    say("## The transition engine against the code before it (issue 12)")
    say()
    drain = {b: [] for b, _ in builds}
    cpu = {b: [] for b, _ in builds}
    lat = {b: [] for b, _ in builds}
    bulk = {b: [] for b, _ in builds}
    lines = "".join(json.dumps({"command": "true", "x-n": i}) + "\n" for i in range(n_bulk))
    for _ in range(REPS):
        for b, exe in builds:
            drain[b].append(drain_queuectl(n_drain, exe, cpu[b]))
            lat[b] += latency_queuectl(n_lat, exe)[0]
            sp = fresh_spool("bulk")
            t0 = time.monotonic()
            subprocess.run([exe, "--spool", sp, "enqueue", "-"], input=lines, text=True, check=True, stdout=subprocess.DEVNULL)
            bulk[b].append(time.monotonic() - t0)
    sp = {b: fresh_spool("single") for b, _ in builds}
    for b, exe in builds:
        new_spool(sp[b], exe)
    # hyperfine runs one command's runs, then the next's: in rounds of alternating order,
    # an hour's drift falls on both alike. The median of the rounds' medians.
    cmds = ["/bin/true"] + [f"{exe} --spool {sp[b]} enqueue --command true" for b, exe in builds]
    rounds = [hyperfine(cmds if r % 2 == 0 else [cmds[0]] + cmds[:0:-1], runs=60, warmup=5) for r in range(6)]
    one = [med([r[0] for r in rounds])] + [med([(r[1 + i] if k % 2 == 0 else r[2 - i]) for k, r in enumerate(rounds)])
                                           for i in range(2)]
    say(f"Medians of {REPS} interleaved runs each (before: `before/queuectl`, the same static build of the "
        f"earlier commit):")
    say()
    say("| figure | before | after | after / before |")
    say("|---|---:|---:|---:|")
    row = lambda name, a, b, fmt: say(f"| {name} | {fmt(a)} | {fmt(b)} | {b / a:.2f} |")
    row(f"drain of {n_drain:,} `true` jobs, `--count 2`, seconds", med(drain["before"]), med(drain["after"]),
        lambda v: f"{v:.2f}")
    row("queue CPU per job in that drain (supervisor + workers, jobs excluded), us",
        med(cpu["before"]) / n_drain * 1e6, med(cpu["after"]) / n_drain * 1e6, lambda v: f"{v:.0f}")
    row(f"dispatch latency from `enqueue`'s return, p50 of {n_lat * REPS}, ms", med(lat["before"]), med(lat["after"]),
        lambda v: f"{v * 1000:.2f}")
    row("the same, p99, ms", pct(lat["before"], 99), pct(lat["after"], 99), lambda v: f"{v * 1000:.2f}")
    row("one `enqueue --command true` process (hyperfine, 6 alternating rounds of 60 runs), ms", one[1], one[2],
        lambda v: f"{v * 1000:.2f}")
    row(f"bulk `enqueue -` of {n_bulk:,} jobs, seconds", med(bulk["before"]), med(bulk["after"]), lambda v: f"{v:.2f}")
    say()
    say(f"`/bin/true` in the same hyperfine run: {one[0] * 1000:.2f} ms.")
    say()
    n_rec = 5 if QUICK else 20
    rec = {"after": recovery_latency(Q, n_rec), "before": recovery_latency(Q_BEFORE, 5)}
    say("Recovery latency: a job's worker is killed while its command runs on; from the command's last")
    say("mark before it exits to the job's arrival in `dead/` (its next state):")
    say()
    say("| build | samples | p50 ms | max ms |")
    say("|---|---:|---:|---:|")
    for b in ("before", "after"):
        say(f"| {b} | {len(rec[b])} | {med(rec[b]) * 1000:.1f} | {max(rec[b]) * 1000:.1f} |")
    say()


def tree_rss_kib(pid):
    """Resident memory of a process and its children (a supervisor and its workers)."""
    total = 0
    try:
        total = rss_kib(pid)
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                total += rss_kib(int(child))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        pass
    return total


def first_job(spool, count, cold):
    """`worker start --count COUNT` in the foreground on a spool of a million waiting jobs:
    seconds from the call to the first job completed (the spool's stats counter), and the
    peak resident memory of supervisor + workers, sampled every 5 ms from the call until
    two seconds after (the workers drain meanwhile); then the workers are stopped."""
    if cold:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    stats = os.path.join(spool, "stats")
    done_before = int(next((l.split()[1] for l in open(stats) if l.startswith("runs_completed ")), 0)) \
        if os.path.exists(stats) else 0
    t0 = time.monotonic()
    sup = subprocess.Popen([Q, "--spool", spool, "worker", "start", "--count", str(count)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, first = 0, None
    while True:
        peak = max(peak, tree_rss_kib(sup.pid))
        if first is None:
            try:
                with open(stats) as f:
                    if any(l.startswith("runs_completed ") and int(l.split()[1]) > done_before for l in f):
                        first = time.monotonic() - t0
            except FileNotFoundError:
                pass
        elif time.monotonic() - t0 > first + 2:
            break
        if time.monotonic() - t0 > 300:
            raise SystemExit("no job completed within 300 s")
        time.sleep(0.005)
    sup.terminate()
    sup.wait()
    return first, peak


def bench_million():
    n = 100_000 if QUICK else 1_000_000
    say(f"## {n:,} waiting jobs (issue 15)")
    say()
    sp = fresh_spool("million")
    # Priority 0 for all but one line in the middle, priority 5: the first job to start.
    lines = "".join(json.dumps({"command": "true", "priority": 5 if i == n // 2 else 0}) + "\n" for i in range(n))
    ids_file = os.path.join(WORK, "million-ids")
    t0 = time.monotonic()
    with open(ids_file, "w") as ids_out:
        p = subprocess.Popen([Q, "--spool", sp, "enqueue", "-"], stdin=subprocess.PIPE, stdout=ids_out, text=True)
        p.stdin.write(lines)
        p.stdin.close()
        peak = 0
        while p.poll() is None:
            peak = max(peak, tree_rss_kib(p.pid))
            time.sleep(0.05)
    took = time.monotonic() - t0
    floor = float(subprocess.run([compile_c("mkfiles"), fresh("files"), str(n)], check=True, stdout=subprocess.PIPE,
                                 text=True).stdout)
    say(f"Bulk `enqueue -` of {n:,} lines: {took:.1f} s, {n / took:,.0f} jobs/s = {floor / took:.2f} of the "
        f"same-run floor of creating {n:,} small files (`bench/mkfiles.c`, {floor:.1f} s); peak resident "
        f"memory (sampled every 50 ms) {peak / 1024:.0f} MiB.")
    say()
    # The order of work: the priority-5 job, then the others oldest first; a batch shares
    # created_at, and its generated ids keep the input's order.
    ids = open(ids_file).read().split()
    order = [ids[n // 2]] + ids[:n // 2] + ids[n // 2 + 1:]
    rank = {id_: i for i, id_ in enumerate(order)}
    say(f"`worker start` in the foreground on the waiting jobs, until the first job is done (the stats counter), "
        f"and the peak resident memory of supervisor + workers (sampled every 5 ms until 2 s after, while "
        f"they drain). Median of {REPS}; cold: after `sync; echo 3 > /proc/sys/vm/drop_caches`. In order: the "
        f"jobs in `done/` after all the runs are exactly the first ones of the order of work (the priority-5 "
        f"job, then the oldest).")
    say()
    say("| workers | page cache | first job done, s | peak RSS of supervisor + workers, MiB |")
    say("|---|---|---:|---:|")
    for count, cold in ((2, False), (2, True), (1, False), (3, False)):
        firsts, peaks = [], []
        for _ in range(REPS):
            first, pk = first_job(sp, count, cold)
            firsts.append(first)
            peaks.append(pk)
        say(f"| {count} | {'cold' if cold else 'warm'} | {med(firsts):.2f} | {med(peaks) / 1024:.0f} |")
    done = sorted(rank[f[:-5]] for f in os.listdir(os.path.join(sp, "done")) if f.endswith(".json"))
    say()
    say(f"In order: {len(done):,} jobs ran, {'exactly the first ' + format(len(done), ',') if done == list(range(len(done))) else 'NOT the first ones: ranks ' + str(done[:10]) + '...'} of the order of work.")
    say()


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


class NatsServer:
    """One JetStream server on loopback, its store in a fresh directory: the cluster's
    cost on this machine is queuectl's and one server's (a cluster of three on two cores
    would measure the cores' sharing)."""

    def __init__(self):
        import socket
        self.port = free_port()
        d = fresh("nats")
        self.proc = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", d],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.url = f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def joined_spool(name, nats):
    """A new spool joined to `nats` (the stream's subjects are fixed: one stream per server)."""
    sp = fresh_spool(name)
    q(sp, "cluster", "join", nats.url)
    return sp


def runs_completed(spool):
    try:
        with open(os.path.join(spool, "stats")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "runs_completed":
                    return int(value)
    except FileNotFoundError:
        pass
    return 0


def cluster_drain(n, hosts, shares):
    """Seconds for `hosts` joined spools, two workers each, to run n `true` jobs published
    to the stream beforehand; `shares` gets each host's count."""
    nats = NatsServer()
    try:
        return cluster_drain_on(n, hosts, shares, nats)
    finally:
        nats.stop()


def cluster_drain_on(n, hosts, shares, nats):
    sps = [joined_spool("cl-host", nats) for _ in range(hosts)]
    first = sps[0]
    q(first, "enqueue", "--cluster", "-", input="".join('{"command":"true"}\n' for _ in range(n)))
    t0 = time.monotonic()
    for sp in sps:
        q(sp, "worker", "start", "--detach", "--count", "2")
    end = t0 + 900
    while sum(runs_completed(sp) for sp in sps) < n:
        if time.monotonic() > end:
            raise SystemExit("timed out draining the cluster")
        time.sleep(0.02)
    t1 = time.monotonic()
    shares.append([runs_completed(sp) for sp in sps])
    for sp in sps:
        q(sp, "worker", "stop")
    return t1 - t0


def enqueue_cost(exe, n):
    """CPU seconds (user + system) per `enqueue --command true` of `exe`, n calls in a row
    on one spool, and the system calls of one such call (strace -f -c)."""
    sp = fresh_spool("enq-cost")
    new_spool(sp, exe)
    before = os.times()
    for _ in range(n):
        subprocess.run([exe, "--spool", sp, "enqueue", "--command", "true"], check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    cpu = (after.children_user - before.children_user + after.children_system - before.children_system) / n
    trace = os.path.join(WORK, "enq.strace")
    subprocess.run(["strace", "-f", "-c", "-o", trace, exe, "--spool", sp, "enqueue", "--command", "true"],
                   check=True, stdout=subprocess.DEVNULL)
    calls = int([line for line in open(trace) if line.strip().endswith("total")][0].split()[3])
    return cpu, calls


def bench_cluster():
    n_drain = 1000 if QUICK else 3000
    n_lines = 10000 if QUICK else 100000
    n_lat = 30 if QUICK else 100
    say("## The cluster (issue 17)")
    say()
    say("One `nats-server -js` on loopback (one replica); every figure beside the local spool's in the same run.")
    say()
    # Throughput: 1, 2 and 3 spools of two workers each, on two cores.
    res = {"local": []}
    shares = {}
    for rep in range(REPS):
        res["local"].append(drain_queuectl(n_drain))
        for hosts in (1, 2, 3):
            shares.setdefault(hosts, [])
            res.setdefault(hosts, []).append(cluster_drain(n_drain, hosts, shares[hosts]))
    local = n_drain / med(res["local"])
    say(f"Drain of {n_drain:,} `true` jobs, published beforehand, median of {REPS} runs:")
    say()
    say("| spools (2 workers each) | seconds | jobs/s | ratio to the local spool | jobs per spool (last run) |")
    say("|---|---:|---:|---:|---|")
    say(f"| local spool, `enqueue -` (no cluster) | {med(res['local']):.2f} | {local:,.0f} | 1.00 | |")
    for hosts in (1, 2, 3):
        r = n_drain / med(res[hosts])
        say(f"| {hosts} joined | {med(res[hosts]):.2f} | {r:,.0f} | {r / local:.2f} | "
            f"{', '.join(str(x) for x in shares[hosts][-1])} |")
    say()
    # The enqueue rate through JetStream.
    enq = {"local": [], "cluster": []}
    lines = "".join('{"command":"true"}\n' for _ in range(n_lines))
    for _ in range(REPS):
        sp = fresh_spool("enq-local")
        t0 = time.monotonic()
        q(sp, "enqueue", "-", input=lines)
        enq["local"].append(time.monotonic() - t0)
        nats = NatsServer()
        sp = joined_spool("enq-cluster", nats)
        t0 = time.monotonic()
        q(sp, "enqueue", "--cluster", "-", input=lines)
        enq["cluster"].append(time.monotonic() - t0)
        nats.stop()
    say(f"One `enqueue -` of {n_lines:,} lines, median of {REPS} runs:")
    say()
    say("| target | seconds | jobs/s | ratio to local |")
    say("|---|---:|---:|---:|")
    for name, label in (("local", "local spool (`pending/`, durable)"),
                        ("cluster", "`--cluster` (stored by JetStream, file storage)")):
        say(f"| {label} | {med(enq[name]):.2f} | {n_lines / med(enq[name]):,.0f} | "
            f"{med(enq['local']) / med(enq[name]):.2f} |")
    say()
    # Dispatch latency: from enqueue to the job's start, one idle worker.
    lat = {"local": [[], []], "cluster": [[], []]}
    for _ in range(REPS):
        r, c = latency_queuectl(n_lat)
        lat["local"][0] += r
        lat["local"][1] += c
        nats = NatsServer()
        sp = joined_spool("lat-cluster", nats)
        q(sp, "worker", "start", "--detach", "--count", "1")
        try:
            r, c = measure_latency(n_lat, "lat-cluster",
                                   lambda cmd: [Q, "--spool", sp, "enqueue", "--cluster", "--command", cmd])
        finally:
            q(sp, "worker", "stop")
            nats.stop()
        lat["cluster"][0] += r
        lat["cluster"][1] += c
    say(f"Latency to the job's first command with an idle worker, {n_lat} jobs x {REPS} runs:")
    say()
    say("| enqueue | median from its return | p99 from return | median from its call | p99 from call |")
    say("|---|---:|---:|---:|---:|")
    for name, label in (("local", "`enqueue --command`"), ("cluster", "`enqueue --cluster --command`")):
        r, c = lat[name]
        say(f"| {label} | {med(r) * 1000:.2f} ms | {pct(r, 99) * 1000:.2f} ms | {med(c) * 1000:.2f} ms | "
            f"{pct(c, 99) * 1000:.2f} ms |")
    say()
    # A local enqueue costs what it cost before the cluster (the NATS client is in the
    # helper, not in queuectl).
    n_calls = 100 if QUICK else 300
    rows = [("this build", Q)] + ([("before (BENCH_BEFORE_REV)", Q_BEFORE)] if os.path.exists(Q_BEFORE) else [])
    costs = {label: [enqueue_cost(exe, n_calls) for _ in range(REPS)] for label, exe in rows}
    say(f"One local `enqueue --command true`, {n_calls} in a row x {REPS} runs (CPU: user + system of the "
        f"process; system calls: strace -f -c of one call):")
    say()
    say("| queuectl | CPU per enqueue (median) | system calls | ratio of CPU to the first row |")
    say("|---|---:|---:|---:|")
    base = med([c for c, _ in costs[rows[0][0]]])
    for label, _ in rows:
        cpu = med([c for c, _ in costs[label]])
        say(f"| {label} | {cpu * 1e6:.0f} us | {costs[label][0][1]} | {cpu / base:.2f} |")
    say()


def main():
    say(f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, {os.uname().release}; "
        f"work dir on `{subprocess.run(['df', '--output=fstype', WORK], stdout=subprocess.PIPE, text=True).stdout.split()[-1]}`.")
    say()
    try:
        if ONLY in (None, "enqueue"):
            bench_enqueue()
        if ONLY in (None, "dispatch"):
            bench_dispatch()
        if ONLY == "engine":
            bench_engine()
        if ONLY in (None, "million"):
            bench_million()
        if ONLY in (None, "workflow"):
            bench_workflow()
        if ONLY == "cluster":
            bench_cluster()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    with open(os.path.join(BUILD, "bench-results.md"), "w") as f:
        f.write("\n".join(out) + "\n")


main()
