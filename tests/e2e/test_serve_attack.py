"""serve against a real browser (SPEC section 5): a web page of another local origin,
loaded in Debian's headless Chromium, tries every cross-site POST a page can send (a
text/plain form, no-cors fetches, a beacon, a CORS fetch that needs a preflight) to queue
a command; a DNS-rebinding page (another name resolved to 127.0.0.1) tries reads and
writes from the server's own port. Nothing may be enqueued or run. Then the dashboard of
a server with a token asks for it, and works once it is given.

Environment: QUEUECTL (the binary). Exits 77 (skipped) without chromium/chromedriver.
"""
import http.server
import json
import os
import subprocess
import tempfile
import threading

from browser import WebDriver, clean_up, free_port, skip_without_browser, start_chromedriver, start_serve, wait_for

QUEUECTL = os.environ["QUEUECTL"]
skip_without_browser()

tmp = tempfile.mkdtemp(prefix="queuectl-attack.")
spool = os.path.join(tmp, "spool")
procs = []


def q(*args):
    return subprocess.run([QUEUECTL, "--spool", spool, *args], check=True, stdout=subprocess.PIPE, text=True).stdout


def serve(*args):
    server, base = start_serve(QUEUECTL, spool, *args)
    procs.append(server)
    return server, base


def attacker_page(target):
    """Every way a page may send a POST across sites without the target's consent."""
    cmd = lambda name: json.dumps({"command": f"touch {tmp}/pwned-{name}"})
    return f"""<!doctype html><title>attack</title>
<iframe name="sink" style="display:none"></iframe>
<form id="f" method="POST" action="{target}api/jobs" enctype="text/plain" target="sink">
  <input name='{{"command":"touch {tmp}/pwned-form","x":"' value='"}}'>
</form>
<script>
const target = {json.dumps(target)};
const results = {{}};
async function attempt(name, fn) {{
  try {{ const r = await fn(); results[name] = r && r.type ? r.type + " " + r.status : "sent"; }}
  catch (e) {{ results[name] = "blocked: " + e.message; }}
}}
async function main() {{
  document.getElementById("f").submit();
  await attempt("no-cors text/plain", () => fetch(target + "api/jobs", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(cmd("nocors"))}}}));
  await attempt("no-cors json", () => fetch(target + "api/jobs", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "application/json"}}, body: {json.dumps(cmd("nocorsjson"))}}}));
  await attempt("cors json", () => fetch(target + "api/jobs", {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: {json.dumps(cmd("cors"))}}}));
  await attempt("beacon", () => navigator.sendBeacon(target + "api/jobs",
    new Blob([{json.dumps(cmd("beacon"))}], {{type: "text/plain"}})));
  await attempt("retry", () => fetch(target + "api/jobs/victim/retry", {{method: "POST", mode: "no-cors"}}));
  await attempt("delete", () => fetch(target + "api/jobs/victim/purge", {{method: "POST", mode: "no-cors"}}));
  await attempt("purge all dead", () => fetch(target + "api/dlq/purge", {{method: "POST", mode: "no-cors"}}));
  await new Promise((r) => setTimeout(r, 500)); // the form's own navigation
  document.title = "done " + JSON.stringify(results);
}}
main();
</script>"""


class Handler(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(Handler.page)

    def log_message(self, *args):
        pass


try:
    q("enqueue", "--command", "true", "--id", "victim")
    q("cancel", "victim")
    server, base = serve("--listen", "127.0.0.1:0")
    port = base.rstrip("/").rsplit(":", 1)[-1]

    # The attacker: another origin (another port) on this machine.
    Handler.page = attacker_page(base).encode()
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    evil_url = f"http://127.0.0.1:{evil.server_address[1]}/"

    driver, wd_url = start_chromedriver()
    procs.append(driver)
    # rebind.test resolves to this machine, as a DNS-rebinding site would make it.
    wd = WebDriver(wd_url, os.path.join(tmp, "profile"), ["--host-resolver-rules=MAP rebind.test 127.0.0.1"])

    wd.s("POST", "/url", {"url": evil_url})
    title = wait_for("the attack page to finish", lambda: (t := wd.s("GET", "/title")).startswith("done") and t)
    print("cross-site attempts:", title)
    status = json.loads(q("status", "--json"))
    assert status["pending"] == 0 and status["dead"] == 1, f"cross-site requests changed the spool: {status}"

    # DNS rebinding: the page is served from the server's own port under another name, so
    # its scripts are same-origin with it; the server refuses that name.
    wd.s("POST", "/url", {"url": f"http://rebind.test:{port}/"})
    page = wd.run("return document.body.innerText;")
    assert "queuectl" not in page.lower() or "not this server" in page, f"the dashboard was served to rebind.test: {page[:200]}"
    rebound = wd.run("""
      const cmd = JSON.stringify({command: "touch %s/pwned-rebind"});
      return Promise.all([
        fetch("/api/status").then((r) => r.status),
        fetch("/api/jobs", {method: "POST", headers: {"Content-Type": "application/json"}, body: cmd}).then((r) => r.status),
        fetch("/api/jobs/victim/retry", {method: "POST", headers: {"Content-Type": "application/json"}}).then((r) => r.status),
        fetch("/api/dlq/purge", {method: "POST", headers: {"Content-Type": "application/json"}}).then((r) => r.status),
      ]);""" % tmp)
    assert rebound == [403, 403, 403, 403], f"a rebound page got {rebound}"

    status = json.loads(q("status", "--json"))
    assert status["pending"] == 0 and status["dead"] == 1, f"a rebound page changed the spool: {status}"
    pwned = [f for f in os.listdir(tmp) if f.startswith("pwned")]
    assert not pwned, f"attacks ran commands: {pwned}"
    server.terminate()
    server.wait(timeout=10)

    # A server with a token: its dashboard asks for it, then works; the tab keeps it.
    with open(os.path.join(tmp, "token"), "w") as f:
        f.write("s3cret\n")
    server, base = serve("--listen", "127.0.0.1:0", "--token-file", os.path.join(tmp, "token"))
    wd.s("POST", "/url", {"url": base})
    wait_for("the page to ask for the token",
             lambda: "needs its token" in wd.text("#updated") and "needed" in wd.run(
                 "return document.getElementById('token-label').className;"))
    wd.run("""const box = document.getElementById('token');
              box.value = 's3cret'; box.dispatchEvent(new Event('change'));""")
    wait_for("counts once the token is given", lambda: wd.text("#count-dead") == "1")
    wd.click('button[data-action="retry"][data-id="victim"]')
    wait_for("the retry made with the token", lambda: json.loads(q("show", "victim"))["state"] == "pending")
    wd.s("POST", "/refresh", {})
    wait_for("the token kept for the tab", lambda: wd.text("#count-pending") == "1")
    wd.s("DELETE", "")
    print("ok")
finally:
    clean_up(procs, tmp)
