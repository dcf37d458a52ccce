"""End-to-end test of the dashboard in Debian's headless Chromium, driven through
chromedriver's WebDriver HTTP API (no extra client library): the page shows the counts of
a spool prepared here, clicking "retry" on a dead job moves it back to pending, "release"
on a held job moves it to pending, and a queue's pause and resume buttons change its
setting (SPEC section 7).

Environment: QUEUECTL (the binary), SCREENSHOT (where to save a PNG of the page).
Exits 77 (skipped) when chromium or chromedriver is not installed.
"""
import json
import os
import subprocess
import tempfile

from browser import WebDriver, clean_up, skip_without_browser, start_chromedriver, start_serve, wait_for

QUEUECTL = os.environ["QUEUECTL"]
skip_without_browser()

tmp = tempfile.mkdtemp(prefix="queuectl-e2e.")
spool = os.path.join(tmp, "spool")
procs = []


def q(*args):
    return subprocess.run([QUEUECTL, "--spool", spool, *args], check=True, stdout=subprocess.PIPE, text=True).stdout


try:
    # A spool with jobs in several states, and no workers.
    for i in range(2):
        q("enqueue", "--command", f"echo later {i}", "--delay", "3600", "--id", f"later{i}")
    q("enqueue", "--command", "make deploy", "--id", "deploy")
    q("cancel", "deploy")
    q("enqueue", "--command", "make docs", "--id", "docs", "--queue", "builds", "--tag", "nightly", "--hold")
    with open(os.path.join(spool, "done", "built.json"), "w") as f:
        json.dump({"id": "built", "command": "make", "state": "completed", "attempts": 1, "max_retries": 3,
                   "exit_code": 0, "last_error": None, "created_at": "2026-11-23T05:00:00.000000Z"}, f)

    server, base = start_serve(QUEUECTL, spool, "--listen", "127.0.0.1:0")
    procs.append(server)
    assert base.startswith("http://127.0.0.1:"), base

    driver, wd_url = start_chromedriver()
    procs.append(driver)
    wd = WebDriver(wd_url, os.path.join(tmp, "chrome-profile"))
    wd.s("POST", "/url", {"url": base})

    counts = lambda: {k: wd.text(f"#count-{k}")
                      for k in ("pending", "held", "processing", "failed", "completed", "dead", "workers")}
    want = {"pending": "2", "held": "1", "processing": "0", "failed": "0", "completed": "1", "dead": "1",
            "workers": "0"}
    wait_for(f"counts {want}", lambda: counts() == want)

    # The dead tab lists the cancelled job with its error and a retry button.
    wait_for("the dead job's row", lambda: "cancelled" in wd.text('tr[data-id="deploy"]'))
    wd.click('button[data-action="retry"][data-id="deploy"]')
    want = dict(want, pending="3", dead="0")
    wait_for(f"counts after retry {want}", lambda: counts() == want)
    state = json.loads(q("show", "deploy"))["state"]
    assert state == "pending", f"deploy is {state} after clicking retry"

    # The queues: builds has the held job; pause it, then resume it, from the dashboard.
    wait_for("the builds queue's row", lambda: "builds" in wd.text('tr[data-queue="builds"]'))
    wd.click('button[data-action="pause"][data-queue="builds"]')
    wait_for("builds paused", lambda: "paused" in wd.text('tr[data-queue="builds"]'))
    listed = {x["queue"]: x for x in json.loads(q("queue", "list", "--json"))}
    assert listed["builds"]["paused"] is True, listed
    wd.click('button[data-action="resume"][data-queue="builds"]')
    wait_for("builds resumed", lambda: "pause" in wd.text('button[data-queue="builds"]')
             and "paused" not in wd.text('tr[data-queue="builds"]'))
    listed = {x["queue"]: x for x in json.loads(q("queue", "list", "--json"))}
    assert listed["builds"]["paused"] is False, listed

    # The held tab shows the held job with its tag; "release" sends it to pending.
    wd.click('[data-tab="held"]')
    wait_for("the held job's row", lambda: "nightly" in wd.text('tr[data-id="docs"]'))
    wd.click('button[data-action="release"][data-id="docs"]')
    want = dict(want, pending="4", held="0")
    wait_for(f"counts after release {want}", lambda: counts() == want)
    state = json.loads(q("show", "docs"))["state"]
    assert state == "pending", f"docs is {state} after clicking release"

    # A job's log opens from its id.
    wd.click('[data-tab="pending"]')
    wait_for("pending rows", lambda: "deploy" in wd.text("#jobs"))
    png = wd.s("GET", "/screenshot")
    out = os.environ.get("SCREENSHOT")
    if out:
        import base64
        with open(out, "wb") as f:
            f.write(base64.b64decode(png))
    wd.s("DELETE", "")
    print("ok")
finally:
    clean_up(procs, tmp)
