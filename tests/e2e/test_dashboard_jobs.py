"""The dashboard's job views in Debian's headless Chromium (issue 18): paging to the last
of 130 dead jobs and newest first, search by id, command and tag, the detail view (fields,
DUE, dependencies with their states, a log whose ANSI colours are rendered), deleting a
job, retry all and purge all dead (each asked first), killing a running job, and the
page at a phone's 420 px.

Environment: QUEUECTL (the binary), SCREENSHOT (where to save a PNG of the page at 420 px).
Exits 77 (skipped) when chromium or chromedriver is not installed.
"""
import base64
import json
import os
import re
import subprocess
import tempfile

from browser import WebDriver, clean_up, skip_without_browser, start_chromedriver, start_serve, wait_for

QUEUECTL = os.environ["QUEUECTL"]
skip_without_browser()

tmp = tempfile.mkdtemp(prefix="queuectl-e2e.")
spool = os.path.join(tmp, "spool")
procs = []


def q(*args, check=True):
    return subprocess.run([QUEUECTL, "--spool", spool, *args], check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True).stdout


def state(job_id):
    r = subprocess.run([QUEUECTL, "--spool", spool, "show", job_id], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return json.loads(r.stdout)["state"] if r.returncode == 0 else None


def put(directory, job):
    with open(os.path.join(spool, directory, job["id"] + ".json"), "w") as f:
        json.dump(job, f)


try:
    q("config", "set", "max-retries", "0")  # makes the spool
    # 130 dead jobs, one created a minute after the other: three pages of 50.
    for i in range(130):
        put("dead", {"id": f"dead{i:03d}", "command": f"exit {i % 7 + 1}", "state": "dead", "attempts": 1,
                     "max_retries": 0, "exit_code": i % 7 + 1, "last_error": f"exit status {i % 7 + 1}",
                     "created_at": f"2026-11-{1 + i // 60:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00.000000Z",
                     "updated_at": "2026-11-20T00:00:00.000000Z"})
    # A completed job whose log is coloured, and a job held after it and after a purged one.
    q("enqueue", "--id", "paint", "--tag", "colours", "--command",
      r"printf '\033[1;31mred alert\033[0m plain \033[38;5;46mgreen\033[0m\033(B\n'")
    q("enqueue", "--id", "after-paint", "--after", "paint", "--command", "echo next", "--hold")
    q("enqueue", "--id", "later", "--delay", "2h", "--command", "echo later", "--tag", "nightly")

    server, base = start_serve(QUEUECTL, spool, "--listen", "127.0.0.1:0")
    procs.append(server)
    assert base.startswith("http://127.0.0.1:"), base

    driver, wd_url = start_chromedriver()
    procs.append(driver)
    wd = WebDriver(wd_url, os.path.join(tmp, "chrome-profile"))
    wd.s("POST", "/url", {"url": base})

    # Paging: the dead tab shows the oldest 50 first; the last page holds the newest.
    wait_for("the first page of dead jobs", lambda: "1–50 of 130" in wd.text("#page-info"))
    rows = lambda: wd.run("return [...document.querySelectorAll('#jobs tr')].map(r => r.dataset.id);")
    assert rows()[0] == "dead000" and len(rows()) == 50, rows()
    wd.click("#next")
    wait_for("the second page", lambda: rows()[:1] == ["dead050"])
    wd.click("#last")
    wait_for("the last page", lambda: rows() == [f"dead{i:03d}" for i in range(100, 130)])
    assert "101–130 of 130" in wd.text("#page-info"), wd.text("#page-info")
    assert wd.run("return document.getElementById('next').disabled;") is True
    # Newest first: the newest dead job opens the first page.
    wd.run("const o = document.getElementById('order'); o.value = 'newest'; o.dispatchEvent(new Event('change'));")
    wait_for("newest first", lambda: rows()[:2] == ["dead129", "dead128"])
    assert "1–50 of 130" in wd.text("#page-info"), wd.text("#page-info")

    # Search, over every state on the "all" tab: by id, by command, by tag.
    wd.click('[data-tab="all"]')
    type_search = lambda text: wd.run(
        "const s = document.getElementById('search'); s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
        text)
    type_search("DEAD12")
    wait_for("the search by id", lambda: sorted(rows()) == [f"dead{i}" for i in range(120, 130)])
    type_search("echo next")
    wait_for("the search by command", lambda: rows() == ["after-paint"])
    type_search("nightly")
    wait_for("the search by tag", lambda: rows() == ["later"])
    due = wd.text('tr[data-id="later"] td.due')
    assert re.fullmatch(r"in (2h|1h5\dm)", due), f"DUE of a job delayed 2h: {due!r}"
    type_search("no such thing")
    wait_for("no match", lambda: rows() == [] and "no job matches" in wd.text("#page-info"))
    type_search("")

    # The detail view of the completed job: its fields, and its log with the colours
    # rendered (no escape sequence shown).
    worker = subprocess.Popen([QUEUECTL, "--spool", spool, "worker", "start", "--count", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(worker)
    wait_for("paint completed", lambda: state("paint") == "completed")
    wd.s("POST", "/url", {"url": base + "#job=paint"})
    wait_for("the detail view", lambda: "red alert" in wd.text("#log"))
    assert wd.text("#detail-id") == "paint"
    assert "completed" in wd.text("#detail-state")
    assert "printf" in wd.text('#detail-fields tr[data-field="command"]')
    assert "colours" in wd.text('#detail-fields tr[data-field="tags"]')
    assert "ago" in wd.text('#detail-fields tr[data-field="created_at"]')
    log = wd.run("return document.getElementById('log').textContent;")
    assert "\nred alert plain green\n" in log and "\x1b" not in log and "[0m" not in log and "(B" not in log, repr(log)
    colours = wd.run("""return [...document.querySelectorAll('#log span')].map(s =>
        [s.textContent, getComputedStyle(s).color, getComputedStyle(s).fontWeight]);""")
    assert ["red alert", "rgb(241, 76, 76)", "700"] in colours or ["red alert", "rgb(205, 49, 49)", "700"] in colours, \
        colours
    assert any(c[0] == "green" and c[1] == "rgb(0, 255, 0)" for c in colours), colours
    # Its detail view sits in the first screen, not below the tables.
    top = wd.run("return document.getElementById('log').getBoundingClientRect().top;")
    assert top < 1000, f"the log starts {top} px down"

    # A dependency is listed with its state, and links to its own view.
    wd.s("POST", "/url", {"url": base + "#job=after-paint"})
    wait_for("the dependency", lambda: "completed" in wd.text('#detail-deps tr[data-dep="paint"]'))
    assert "held" in wd.text("#detail-state")
    wd.click('#detail-deps tr[data-dep="paint"] a')
    wait_for("the dependency's view", lambda: wd.text("#detail-id") == "paint")

    # Delete from the detail view: asked first; then the job and its log are gone.
    wd.click('#detail-actions button[data-action="purge"]')
    question = wait_for("the question", lambda: wd.s("GET", "/alert/text"))
    assert "Delete job paint" in question, question
    wd.s("POST", "/alert/accept", {})
    wait_for("paint deleted", lambda: state("paint") is None)
    assert not os.path.exists(os.path.join(spool, "done", "paint.log"))
    wait_for("the view says so", lambda: "no longer exists" in wd.text("#detail-message"))
    wd.click("#detail-close")
    wait_for("the view closed", lambda: wd.run("return document.getElementById('detail').hidden;") is True)

    # A running job's log grows in its detail view (only what was appended is read).
    # Then kill it from its row: asked first, then dead as "cancelled".
    q("enqueue", "--id", "long", "--command", "echo one; sleep 1; echo two; sleep 300")
    wait_for("long running", lambda: state("long") == "processing")
    wd.s("POST", "/url", {"url": base + "#job=long"})
    wait_for("the first line", lambda: "one" in wd.text("#log"))
    wait_for("the line appended a second later", lambda: "two" in wd.text("#log"))
    log = wd.run("return document.getElementById('log').textContent;")
    assert log.count("one") == 1 and log.count("two") == 1, repr(log)
    wd.click("#detail-close")
    wd.click('[data-tab="processing"]')
    wd.click('tr[data-id="long"] button[data-action="cancel"]')
    question = wait_for("the kill question", lambda: wd.s("GET", "/alert/text"))
    assert "Kill job long" in question, question
    wd.s("POST", "/alert/accept", {})
    wait_for("long killed", lambda: state("long") == "dead", timeout=30)
    assert json.loads(q("show", "long"))["last_error"] == "cancelled"

    # Retry all dead: asked first; every dead job goes back to pending (and, with no
    # retries and failing commands, they end dead again: stop the worker first).
    worker.terminate()
    worker.wait(timeout=30)
    wd.click('[data-tab="dead"]')
    wait_for("the dead actions", lambda: wd.run("return document.getElementById('dead-actions').hidden;") is False)
    wd.click("#retry-all")
    question = wait_for("the retry question", lambda: wd.s("GET", "/alert/text"))
    assert "Retry every dead job" in question, question
    wd.s("POST", "/alert/accept", {})
    wait_for("no dead jobs", lambda: wd.text("#count-dead") == "0")
    assert len(os.listdir(os.path.join(spool, "dead"))) == 0
    # Purge all dead: dismissing the question changes nothing; accepting it purges.
    q("cancel", "long", "dead000", "dead001")
    wait_for("three dead", lambda: wd.text("#count-dead") == "3")
    wd.click("#purge-all")
    wait_for("the purge question", lambda: wd.s("GET", "/alert/text"))
    wd.s("POST", "/alert/dismiss", {})
    # Two more refreshes of the page: a purge sent anyway would have landed by then.
    seen = set()
    wait_for("two refreshes", lambda: seen.add(wd.text("#updated")) or len(seen) >= 3)
    assert wd.text("#count-dead") == "3" and len(os.listdir(os.path.join(spool, "dead"))) >= 3
    wd.click("#purge-all")
    wait_for("the purge question again", lambda: wd.s("GET", "/alert/text"))
    wd.s("POST", "/alert/accept", {})
    wait_for("dead purged", lambda: wd.text("#count-dead") == "0")
    assert state("dead000") is None and state("dead002") == "pending"

    # At a phone's width: nothing wider than the screen, the pager and a row's actions
    # within reach, and the detail view the whole width.
    wd.s("POST", "/window/rect", {"width": 420, "height": 900})
    wd.click('[data-tab="pending"]')
    wait_for("pending rows at 420 px", lambda: len(rows()) == 50)
    fits = wd.run("""const w = window.innerWidth, d = document.documentElement;
        const right = (sel) => document.querySelector(sel).getBoundingClientRect().right;
        return [w, d.scrollWidth, right('#last'), right('#search'),
        ...[...document.querySelectorAll('#jobs tr:first-child td.actions button')].map(b => b.getBoundingClientRect().right)];""")
    w = fits[0]
    assert w <= 420 and all(x <= w for x in fits[1:]), f"wider than {w} px: {fits}"
    wd.s("POST", "/url", {"url": base + "#job=later"})
    wait_for("the detail view at 420 px", lambda: wd.text("#detail-id") == "later")
    width = wd.run("return [document.getElementById('detail').getBoundingClientRect().width, window.innerWidth];")
    assert abs(width[0] - width[1]) <= 1, width
    assert "in " in wd.text('#detail-fields tr[data-field="due"]'), wd.text("#detail-fields")
    out = os.environ.get("SCREENSHOT")
    if out:
        with open(out, "wb") as f:
            f.write(base64.b64decode(wd.s("GET", "/screenshot")))
    wd.s("DELETE", "")
    print("ok")
finally:
    clean_up(procs, tmp)
