"""Drive a headless Chromium over the Chrome DevTools Protocol (CDP), with no extra dependency
but `websocket-client`. Used by tests/test_slides.py to open the decks and the site.

    with Chromium() as browser:
        report = browser.visit("http://127.0.0.1:8000/slides/02_attention.slides.html",
                               ready="document.querySelector('.reveal.ready') !== null")
        report.failed_loads, report.errors, browser.evaluate("1 + 1"), browser.screenshot()

A visit records every request, every failed load (network error or HTTP status >= 400),
uncaught exceptions and console errors of the page.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
    "--window-size=1280,800", "--remote-debugging-port=0",
]
CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
HOW_TO_GET = ("Headless Chromium is needed for this test. On Debian/Ubuntu: "
              "`apt-get install chromium` (`make browser` does it when run as root); elsewhere "
              "install Chromium or Chrome and set CHROMIUM=/path/to/the/binary.")


def find_chromium() -> str | None:
    """The browser binary: $CHROMIUM, else the first of CANDIDATES on the PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@dataclass
class Visit:
    url: str
    requests: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ready: bool = False


class Chromium:
    """A headless Chromium with one page, driven over its DevTools websocket."""

    def __init__(self, binary: str | None = None, timeout: float = 30.0):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise FileNotFoundError(HOW_TO_GET)
        self.timeout = timeout
        self._id = 0
        self._events: list[dict] = []

    # -- start and stop
    def __enter__(self) -> Chromium:
        import websocket  # websocket-client

        self._profile = tempfile.mkdtemp(prefix="vit-course-chromium-")
        self._proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"{self.binary} did not start (exit code {self._proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        self._ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                               timeout=self.timeout, suppress_origin=True)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        return self

    def __exit__(self, *exc) -> None:
        if getattr(self, "_ws", None):
            self._ws.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol
    def send(self, method: str, **params) -> dict:
        """Call a CDP method and return its result; events that arrive meanwhile are kept."""
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    # -- a page visit
    def visit(self, url: str, ready: str = "true", settle: float = 0.3) -> Visit:
        """Open ``url``, wait for the load event and then for the JS condition ``ready``."""
        self._events.clear()
        self.send("Page.navigate", url=url)
        visit = Visit(url)
        deadline = time.monotonic() + self.timeout
        loaded = False
        while time.monotonic() < deadline:
            is_ready = self.evaluate(f"!!({ready})")  # also receives the events sent meanwhile
            loaded = loaded or any(e["method"] == "Page.loadEventFired" for e in self._events)
            if loaded and is_ready:
                visit.ready = True
                break
            time.sleep(0.1)
        time.sleep(settle)  # late requests (fonts, lazy MathJax parts) and their failures
        self.evaluate("0")  # drain the events that arrived
        urls = {}
        for e in self._events:
            m, p = e["method"], e.get("params", {})
            if m == "Network.requestWillBeSent":
                urls[p["requestId"]] = p["request"]["url"]
                visit.requests.append(p["request"]["url"])
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                visit.failed_loads.append(f"{urls.get(p['requestId'], '?')}: {p.get('errorText')}")
            elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
                visit.failed_loads.append(f"{p['response']['url']}: HTTP {p['response']['status']}")
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                visit.errors.append(d.get("exception", {}).get("description") or d.get("text"))
            elif m == "Runtime.consoleAPICalled" and p["type"] == "error":
                visit.errors.append(" ".join(str(a.get("value", a.get("description")))
                                             for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                visit.errors.append(f"{p['entry'].get('url', '')}: {p['entry']['text']}")
        return visit
