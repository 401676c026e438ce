"""``dbops-console web`` in a real headless browser (Debian's chromium, driven
by Selenium) against real sandboxes, the server run as a subprocess:

- without the token the page and the websocket are refused (401) and no
  console is spawned; the login form lets the browser in and the
  dashboard shows the sandbox's hosts; SIGTERM ends the session's console
  and exits 0;
- with ``?token=`` (redirected to the URL without it), a switchover typed
  in the browser (the failover task started with ``s``, its screen opened
  with Enter, ``s`` and the cluster name typed in the confirmation dialog)
  completes: ``dbops-console status --json`` shows the new primary; SIGINT
  ends the console and exits 0.  A private sandbox, so the shared one is
  not changed.

The screen is read from xterm.js's buffer: a hook installed before the page
loads catches the ``Terminal`` textual.js makes (whatever the renderer:
WebGL, canvas or DOM)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.procs import alive, children_of  # noqa: E402

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]

# never skipped: scripts/bootstrap.sh installs both; a machine without them fails here
assert os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK), \
    "needs Debian's chromium and chromium-driver: run scripts/bootstrap.sh"

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

# Catches every object given a ``terminal`` that looks like an xterm.js
# Terminal (textual.js does ``this.terminal = new Terminal(...)``).
TERMINAL_HOOK = """
window.__terms = [];
Object.defineProperty(Object.prototype, 'terminal', {configurable: true,
  set(v) {
    Object.defineProperty(this, 'terminal', {value: v, writable: true, configurable: true,
                                             enumerable: true});
    if (v && v.buffer && v.buffer.active) window.__terms.push(v);
  }});
"""
READ_SCREEN = """
const t = window.__terms && window.__terms[0];
if (!t) return null;
const b = t.buffer.active, out = [];
for (let i = 0; i < t.rows; i++) {
  const line = b.getLine(b.viewportY + i);
  out.push(line ? line.translateToString(true) : '');
}
return out.join('\\n');
"""
LONG = 120  # seconds: generous, the machine may be busy


# ---- helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, fn, timeout: float = LONG, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def own_config(config_path: Path, state: Path, dest: Path) -> Path:
    """The sandbox's config with this test's own state directory."""
    text = re.sub(r'(?m)^state_dir = .*$', f'state_dir = "{state}"', config_path.read_text())
    dest.write_text(text)
    return dest


class WebServer:
    """``dbops-console web`` as a subprocess; its stderr lines collected."""

    def __init__(self, config: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console", "web", "--config", str(config),
             "--listen", f"127.0.0.1:{self.port}"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for("the web console's URL line",  # after its engine answers
                 lambda: any(line.startswith("web: the console at") for line in self.lines)
                 or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.text()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def engine_pid(self) -> int:
        """The engine `web` started in the background (every session's
        console is its client)."""
        line = next(x for x in self.lines if x.startswith("web: the engine (pid "))
        return int(line.split("(pid ", 1)[1].split(")", 1)[0])

    def consoles(self) -> list[int]:
        return [p for p in children_of(self.proc.pid) if p != self.engine_pid]

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
        self._reader.join(10)
        self.stop_engine()
        return rc

    def stop_engine(self) -> None:
        """The background engine outlives `web` (as it should): the test ends it."""
        pid = self.engine_pid
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for("the engine's end", lambda: not alive(pid), 90)


def raw_get(port: int, path: str, headers: dict[str, str] | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1600,1000"):
        opts.add_argument(a)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver_pid = driver.service.process.pid
    browsers = children_of(driver_pid)
    try:
        driver.set_page_load_timeout(LONG)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TERMINAL_HOOK})
        yield driver
    finally:
        driver.quit()
        for pid in [*browsers, driver_pid]:  # whatever quit() left, by its pid
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)


def screen(driver) -> str:
    return driver.execute_script(READ_SCREEN) or ""


def wait_screen(driver, what: str, pred, timeout: float = LONG) -> str:
    last = [""]

    def check():
        last[0] = screen(driver)
        return pred(last[0])

    try:
        wait_for(what, check, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; the screen:\n{last[0]}") from None
    return last[0]


def press(driver, *keys: str) -> None:
    """Keys typed into the terminal (xterm.js's input element has the focus)."""
    driver.execute_script("document.querySelector('.xterm-helper-textarea').focus()")
    for k in keys:
        ActionChains(driver).send_keys(k).perform()
        time.sleep(0.15)


def status(config: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(config),
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=LONG)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["clusters"]["sandbox"]


# ---- tests -----------------------------------------------------------------------------


def test_refused_without_the_token_then_the_dashboard_shows_the_hosts(sandbox, browser, tmp_path):
    state = tmp_path / "state"
    cfg = own_config(sandbox.config_path, state, tmp_path / "dbops.toml")
    server = WebServer(cfg)
    try:
        token = (state / "api.token").read_text().strip()
        assert token not in server.text()
        # without the token: the page, the websocket, a wrong token: 401, no console
        assert raw_get(server.port, "/")[0] == 401
        ws_headers = {"Upgrade": "websocket", "Connection": "Upgrade",
                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
        code, body = raw_get(server.port, "/ws?width=80&height=24", ws_headers)
        assert code == 401, body
        assert raw_get(server.port, "/?token=not-the-token")[0] == 401
        browser.get(server.url)
        assert "401" in browser.find_element(By.TAG_NAME, "h1").text
        time.sleep(1)  # a console spawned by mistake would show by now
        assert server.consoles() == []
        assert "console session started" not in server.text()
        # the login form: the browser gets in, the dashboard shows the hosts
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "login").click()
        wait_for("the page after the login", lambda: "/login" not in browser.current_url, 60)
        assert browser.current_url == server.url
        text = wait_screen(browser, "the sandbox's hosts on the dashboard",
                           lambda s: all(n in s for n in ("node1", "node2", "node3"))
                           and "primary" in s and "Hosts" in s)
        for n in sandbox.nodes:
            assert f"127.0.0.1:{n.port}" in text
        consoles = server.consoles()
        assert len(consoles) == 1 and "console session started" in server.text()
    finally:
        rc = server.stop(signal.SIGTERM)
    assert rc == 0, server.text()
    assert "web: stopped by SIGTERM: 1 console session(s) ended" in server.text()
    assert not any(alive(p) for p in consoles)
    assert token not in server.text()


def test_a_switchover_typed_in_the_browser_completes(make_sandbox, browser, tmp_path):
    sb = make_sandbox(replicas=2)
    state = tmp_path / "state"
    cfg = own_config(sb.config_path, state, tmp_path / "dbops.toml")
    old = status(cfg)["primary"]
    assert old == f"127.0.0.1:{sb.port('node1')}"
    server = WebServer(cfg)
    try:
        token = (state / "api.token").read_text().strip()
        browser.get(f"{server.url}?token={token}")
        wait_for("the redirect without the token", lambda: browser.current_url == server.url, 60)
        wait_screen(browser, "the dashboard's task list",
                    lambda s: "node3" in s and re.search(r"failover\s+(failover\s+)?not started", s))
        # the tasks: sandbox-relay, sandbox-backup, failover; start the failover task
        press(browser, Keys.ARROW_DOWN, Keys.ARROW_DOWN, "s")
        wait_screen(browser, "the failover task running",
                    lambda s: re.search(r"failover\s+(failover\s+)?running", s))
        press(browser, Keys.ENTER)
        wait_screen(browser, "the failover screen's ranked candidates",
                    lambda s: "S: switch over" in s
                    and re.search(r"(?m)^\W*1\s+node[23]\s", s))
        press(browser, "S")
        wait_screen(browser, "the confirmation dialog", lambda s: "Type sandbox to confirm" in s)
        press(browser, *"sandbox", Keys.ENTER)
        new = wait_for("the new primary in `status --json`",
                       lambda: (p := status(cfg)["primary"]) not in ("", None, old) and p, LONG, 1)
        assert new in (f"127.0.0.1:{sb.port('node2')}", f"127.0.0.1:{sb.port('node3')}")
        wait_screen(browser, "the switchover's report", lambda s: "last switchover: ok" in s)
        consoles = server.consoles()
    finally:
        rc = server.stop(signal.SIGINT)
    assert rc == 0, server.text()
    assert "web: stopped by SIGINT: 1 console session(s) ended" in server.text()
    assert not any(alive(p) for p in consoles)
    assert server.consoles() == []
