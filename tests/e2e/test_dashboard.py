"""End-to-end test of the dashboard in Debian's headless Chromium, driven through
chromedriver's WebDriver HTTP API (no extra client library): the page shows the counts of
a spool prepared here, and clicking "retry" on a dead job moves it back to pending.

Environment: QUEUECTL (the binary), SCREENSHOT (where to save a PNG of the page).
Exits 77 (skipped) when chromium or chromedriver is not installed.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

QUEUECTL = os.environ["QUEUECTL"]
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
if not CHROMIUM or not DRIVER:
    print("SKIP: chromium and chromium-driver are not installed (see .ci/install-deps)")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="queuectl-e2e.")
spool = os.path.join(tmp, "spool")
procs = []


def q(*args):
    return subprocess.run([QUEUECTL, "--spool", spool, *args], check=True, stdout=subprocess.PIPE, text=True).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=20):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the page or the driver may not be ready yet
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class WebDriver:
    def __init__(self, url):
        self.url = url
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1100",
                     f"--user-data-dir={os.path.join(tmp, 'chrome-profile')}"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)["value"]

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def find(self, css):
        el = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(el.values()))

    def text(self, css):
        return self.s("GET", f"/element/{self.find(css)}/text")

    def click(self, css):
        """Clicks, trying again while the element is missing or stale: the page rebuilds
        its tables on every refresh, so a found element can be replaced before the click."""
        def attempt():
            self.s("POST", f"/element/{self.find(css)}/click", {})
            return True
        wait_for(f"a click on {css}", attempt)


try:
    # A spool with jobs in several states, and no workers.
    for i in range(2):
        q("enqueue", "--command", f"echo later {i}", "--delay", "3600", "--id", f"later{i}")
    q("enqueue", "--command", "make deploy", "--id", "deploy")
    q("cancel", "deploy")
    with open(os.path.join(spool, "done", "built.json"), "w") as f:
        json.dump({"id": "built", "command": "make", "state": "completed", "attempts": 1, "max_retries": 3,
                   "exit_code": 0, "last_error": None, "created_at": "2026-11-23T05:00:00.000000Z"}, f)

    server = subprocess.Popen([QUEUECTL, "--spool", spool, "serve", "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, text=True)
    procs.append(server)
    line = server.stdout.readline()
    base = line.strip().rsplit(" ", 1)[-1]
    assert base.startswith("http://127.0.0.1:"), line

    port = free_port()
    driver = subprocess.Popen([DRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(driver)
    wd_url = f"http://127.0.0.1:{port}"
    wait_for("chromedriver", lambda: urllib.request.urlopen(wd_url + "/status", timeout=2).status == 200)
    wd = WebDriver(wd_url)
    wd.s("POST", "/url", {"url": base})

    counts = lambda: {k: wd.text(f"#count-{k}") for k in ("pending", "processing", "failed", "completed", "dead", "workers")}
    want = {"pending": "2", "processing": "0", "failed": "0", "completed": "1", "dead": "1", "workers": "0"}
    wait_for(f"counts {want}", lambda: counts() == want)

    # The dead tab lists the cancelled job with its error and a retry button.
    wait_for("the dead job's row", lambda: "cancelled" in wd.text('tr[data-id="deploy"]'))
    wd.click('button[data-action="retry"][data-id="deploy"]')
    want = dict(want, pending="3", dead="0")
    wait_for(f"counts after retry {want}", lambda: counts() == want)
    state = json.loads(q("show", "deploy"))["state"]
    assert state == "pending", f"deploy is {state} after clicking retry"

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
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
