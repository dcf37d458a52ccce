#!/usr/bin/env python3
"""Watches a spool's final-state directories with inotify and reads every job file the
instant it arrives (SPEC 1: "A file is final on arrival").

usage: inotify_observer.py SPOOL READY_FILE REPORT_FILE

Watches SPOOL/done, failed, dead (and held, if it exists). On every IN_MOVED_TO or
IN_CREATE of "<id>.json" it opens and reads the file at once and checks that its content
matches the directory:
  done/   state "completed", exit_code 0, attempts >= 1
  failed/ state "failed", next_run_at and last_error non-null, attempts >= 1
  dead/   state "dead", last_error non-null
  held/   state "held"
A file that is gone before it could be opened has moved on (ENOENT): skipped. A file in
failed/ or held/ may legitimately move on (and its inode be reused) while it is read, so
a read counts only when the same inode is still at that path after the read. done/ and
dead/ files must stay put: one replaced while it was read was rewritten in place.

Writes READY_FILE once the watches are in place, prints each mismatch on stderr and, on
SIGTERM/SIGINT, writes a JSON summary to REPORT_FILE and exits 0.
Stdlib only (ctypes on libc's inotify_init1 / inotify_add_watch).
"""
import ctypes
import ctypes.util
import errno
import json
import os
import select
import signal
import struct
import sys

IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

EXPECT = {"done": "completed", "failed": "failed", "dead": "dead", "held": "held"}
MAY_MOVE_ON = {"failed", "held"}


def problems(d, j):
    if not isinstance(j, dict):
        return ["not a JSON object"]
    out = []
    want = EXPECT[d]
    if j.get("state") != want:
        out.append("state %r, expected %r" % (j.get("state"), want))
    att = j.get("attempts")
    if d == "done":
        if j.get("exit_code") != 0:
            out.append("exit_code %r, expected 0" % (j.get("exit_code"),))
        if not isinstance(att, int) or att < 1:
            out.append("attempts %r, expected >= 1" % (att,))
    elif d == "failed":
        if j.get("next_run_at") is None:
            out.append("next_run_at null")
        if j.get("last_error") is None:
            out.append("last_error null")
        if not isinstance(att, int) or att < 1:
            out.append("attempts %r, expected >= 1" % (att,))
    elif d == "dead":
        if j.get("last_error") is None:
            out.append("last_error null")
    return out


def main():
    spool, ready, report = sys.argv[1], sys.argv[2], sys.argv[3]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        sys.exit("inotify_init1: " + os.strerror(ctypes.get_errno()))
    wds = {}
    for d in EXPECT:
        p = os.path.join(spool, d)
        if not os.path.isdir(p):
            continue
        wd = libc.inotify_add_watch(fd, p.encode(), IN_CREATE | IN_MOVED_TO)
        if wd < 0:
            sys.exit("inotify_add_watch %s: %s" % (p, os.strerror(ctypes.get_errno())))
        wds[wd] = d

    stats = {"events": 0, "reads": 0, "checked": 0, "gone": 0, "moved_on": 0,
             "overflows": 0, "mismatches": 0, "by_dir": {d: 0 for d in wds.values()},
             "watched": sorted(wds.values()), "examples": []}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def mismatch(d, name, why, text):
        stats["mismatches"] += 1
        line = "MISMATCH %s/%s: %s; content: %s" % (d, name, why, text.strip()[:400])
        if len(stats["examples"]) < 20:
            stats["examples"].append(line)
        print(line, file=sys.stderr, flush=True)

    def check(d, name):
        path = os.path.join(spool, d, name)
        try:
            f = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ENOENT:
                stats["gone"] += 1
                return
            raise
        try:
            chunks = []
            while True:
                b = os.read(f, 1 << 16)
                if not b:
                    break
                chunks.append(b)
            ino = os.fstat(f).st_ino
        finally:
            os.close(f)
        stats["reads"] += 1
        try:
            still = os.stat(path, follow_symlinks=False).st_ino == ino
        except FileNotFoundError:
            still = False
        text = b"".join(chunks).decode("utf-8", "replace")
        if not still:
            if d in MAY_MOVE_ON:
                stats["moved_on"] += 1  # what we read may be a reused inode: no verdict
                return
            # done/ and dead/ files stay put; one that is gone or replaced while we read it
            # was renamed or rewritten in place. Judge what we read.
        stats["checked"] += 1
        stats["by_dir"][d] += 1
        try:
            j = json.loads(text)
        except ValueError as e:
            mismatch(d, name, "not valid JSON (%s)" % e, text)
            return
        why = problems(d, j)
        if not still:
            why.append("file replaced or removed while in %s/" % d)
        if why:
            mismatch(d, name, "; ".join(why), text)

    open(ready, "w").close()
    hdr = struct.Struct("iIII")
    # Until stopped; then once more without waiting: an arrival that happened before the
    # stop was asked for is in the queue already (inotify queues it within the rename).
    while True:
        stopping = bool(stop)
        if not stopping:
            try:
                r, _, _ = select.select([fd], [], [], 0.2)
            except InterruptedError:
                continue
            if not r:
                continue
        while True:
            try:
                buf = os.read(fd, 1 << 20)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            off = 0
            while off < len(buf):
                wd, mask, _cookie, ln = hdr.unpack_from(buf, off)
                name = buf[off + hdr.size: off + hdr.size + ln].split(b"\0", 1)[0].decode(
                    "utf-8", "replace")
                off += hdr.size + ln
                if mask & IN_Q_OVERFLOW:
                    stats["overflows"] += 1
                    continue
                d = wds.get(wd)
                if d is None or not name.endswith(".json") or name.startswith("."):
                    continue
                stats["events"] += 1
                check(d, name)
        if stopping:
            break
    with open(report + ".tmp", "w") as out:
        json.dump(stats, out)
    os.rename(report + ".tmp", report)


if __name__ == "__main__":
    main()
