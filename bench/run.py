#!/usr/bin/env python3
"""queuectl benchmarks. Every figure is a median of repeated runs, next to its baseline
measured in the same run (this machine is shared and noisy), and printed as Markdown.

Usage: bench/run.py [--quick] [--only enqueue|dispatch|engine] BUILD_DIR
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
    if not QUICK:
        big = fresh_spool("million")
        with open(lines) as f:
            data = f.read()
        for _ in range(10):
            subprocess.run([Q, "--spool", big, "enqueue", "-"], input=data, text=True, stdout=subprocess.DEVNULL, check=True)
        st = hyperfine([f"{Q} --spool {big} status"], runs=10)[0]
        say(f"`status` on 1,000,000 pending jobs: median {st * 1000:.0f} ms (10 runs).")
        # A worker reads every waiting job before it claims the first (the first claimed
        # must be the first in order): `worker start --detach` returns when all its workers
        # have. Against one thread reading every job file once; all from the page cache.
        read_all, start, rss = [], {1: [], 2: []}, []
        for _ in range(REPS):
            t0 = time.monotonic()
            sh(compile_c("readfiles"), os.path.join(big, "pending"), stdout=subprocess.DEVNULL)
            read_all.append(time.monotonic() - t0)
            for count in start:
                t0 = time.monotonic()
                pids = q(big, "worker", "start", "--detach", "--count", str(count)).split()
                start[count].append(time.monotonic() - t0)
                if count == 1:
                    rss.append(rss_kib(pids[1]))
                q(big, "worker", "stop")
        say(f"Worker start on 1,000,000 pending jobs, until ready to claim (median of {REPS}): "
            f"`--count 1` {med(start[1]):.1f} s, `--count 2` {med(start[2]):.1f} s; one thread reading "
            f"every job file once (`bench/readfiles.c`) {med(read_all):.1f} s. The worker's resident "
            f"memory then: {med(rss) / 1024:.0f} MiB ({med(rss) * 1024 / 1e6:.0f} bytes per job).")
    say()
    # One enqueue process against /bin/true, and the link choices.
    sp = fresh_spool("single")
    q(sp, "status")
    empty = fresh_spool("empty")
    q(empty, "status")
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
    res = {"floor": [], "queuectl": [], "nq": [], "task-spooler": []}
    for rep in range(REPS):
        res["floor"].append(float(subprocess.run([floor_exe, str(n_drain)], check=True, stdout=subprocess.PIPE, text=True).stdout))
        res["queuectl"].append(drain_queuectl(n_drain))
        if rep < BASELINE_REPS:
            res["nq"].append(drain_nq(n_drain))
            res["task-spooler"].append(drain_tsp(n_drain))
    f = n_drain / med(res["floor"])
    qr = n_drain / med(res["queuectl"])
    say(f"Drain of {n_drain:,} `true` jobs, median of {REPS} runs (nq and task-spooler: {BASELINE_REPS}):")
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
        r = n_drain / med(xs)
        say(f"| {labels[name]} | {med(xs):.2f} | {r:,.0f} | {r / f:.2f} | {qr / r:.2f} |")
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
        subprocess.run([exe, "--spool", sp[b], "status"], check=True, stdout=subprocess.DEVNULL)
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
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    with open(os.path.join(BUILD, "bench-results.md"), "w") as f:
        f.write("\n".join(out) + "\n")


main()
