"""What the browser tests share: chromedriver driven through its WebDriver HTTP API (no
client library), waiting for a condition with a deadline, starting `serve`, and cleaning
up after a test."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")


def skip_without_browser():
    """Exits 77 (ctest's skip) when Debian's chromium or chromium-driver is missing."""
    if not CHROMIUM or not DRIVER:
        print("SKIP: chromium and chromium-driver are not installed (see .ci/install-deps)")
        sys.exit(77)


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
    """A headless Chromium session; `extra` are more command-line flags for it."""

    def __init__(self, url, profile, extra=()):
        self.url = url
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1100",
                     f"--user-data-dir={profile}", *extra]}}}}
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
        """The element's text, trying again while it is missing or stale (the page
        rebuilds its tables on every refresh)."""
        found = []

        def attempt():
            found[:] = [self.s("GET", f"/element/{self.find(css)}/text")]
            return True
        wait_for(f"the text of {css}", attempt)
        return found[0]

    def run(self, script, *args):
        """Runs `script` in the page (a function body; `arguments` are `args`) and returns
        its value; a returned promise is awaited."""
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def click(self, css):
        """Clicks, trying again while the element is missing or stale: the page rebuilds
        its tables on every refresh, so a found element can be replaced before the click."""
        def attempt():
            self.s("POST", f"/element/{self.find(css)}/click", {})
            return True
        wait_for(f"a click on {css}", attempt)


def start_chromedriver():
    """Starts chromedriver on a free port: (its process, its URL)."""
    port = free_port()
    driver = subprocess.Popen([DRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for("chromedriver", lambda: urllib.request.urlopen(url + "/status", timeout=2).status == 200)
    return driver, url


def start_serve(queuectl, spool, *args):
    """Starts `queuectl serve` on the spool: (its process, the URL it says it serves)."""
    server = subprocess.Popen([queuectl, "--spool", spool, "serve", *args], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    base = line.strip().rsplit(" ", 1)[-1]
    assert base.startswith("http://"), line
    return server, base


def clean_up(procs, tmp):
    """Ends the processes a test started (SIGTERM, SIGKILL after 10 s) and removes its
    temporary directory."""
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
