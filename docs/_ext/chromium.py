"""Headless Chromium for the built docs, driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: JSON messages ending in NUL on file descriptors 3 and 4), so it
needs no package beyond the standard library and the browser itself (Debian's ``chromium``).

Used by ``docs/screenshots.py`` and ``tests/test_browser.py``::

    with serve(html_dir) as base, Chromium() as browser:
        page = browser.open(f"{base}/index.html")
        page.evaluate("document.title")
        page.screenshot(Path("index.png"))
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: where Debian's package puts the browser; ``XMARL_CHROMIUM`` names another
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    """The Chromium executable: ``$XMARL_CHROMIUM``, else the first of :data:`CANDIDATES` on PATH."""
    if os.environ.get("XMARL_CHROMIUM"):
        return os.environ["XMARL_CHROMIUM"]
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab: navigate, evaluate JavaScript, screenshot; events are collected per page."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session
        self.console: list[str] = []  # errors: console.error, uncaught exceptions, failed loads
        self.requests: list[str] = []  # every URL the page asked for

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def open(self, url: str, timeout: float = 30.0) -> Page:
        self.browser.clear_events(self.session, "Page.loadEventFired")
        self.send("Page.navigate", url=url)
        self.browser.wait_event(self.session, "Page.loadEventFired", timeout)
        return self

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        out = self.browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                     "returnByValue": True}, self.session, timeout)
        if "exceptionDetails" in out:
            raise BrowserError(f"{expression[:80]!r} failed: {out['exceptionDetails'].get('text')} "
                               f"{out['exceptionDetails'].get('exception', {}).get('description', '')}")
        return out["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll until ``expression`` is truthy; its value."""
        end = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > end:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element matching ``selector``."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                            "e.scrollIntoView({block: 'center', behavior: 'instant'}); "  # furo scrolls smoothly
                            "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path, width: int = 1280, height: int | None = None) -> Path:
        """A PNG of the page at ``width`` CSS pixels: the first ``height`` pixels, or all of it."""
        full = self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        h = min(full, height) if height else full
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=h, deviceScaleFactor=1, mobile=False)
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        data = self.send("Page.captureScreenshot", format="png", clip={"x": 0, "y": 0, "width": width, "height": h,
                                                                      "scale": 1})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


class Chromium:
    """A headless Chromium process with a fresh profile, ended on exit."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("Chromium not found: apt-get install -y chromium (or set XMARL_CHROMIUM)")
        self.size = (width, height)
        self._next = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[tuple[str | None, str, dict[str, Any]]] = []
        self._pages: dict[str, Page] = {}
        self._cond = threading.Condition()

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="xmarl-chromium-")
        to_browser, self._out = os.pipe()  # the browser reads commands on fd 3
        self._in, from_browser = os.pipe()  # and writes replies on fd 4

        def fds() -> None:
            a, b = os.dup(to_browser), os.dup(from_browser)  # out of the way of 3 and 4 first
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)
        os.close(to_browser)
        os.close(from_browser)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send("Target.setDiscoverTargets", {"discover": True})
        return self

    def __exit__(self, *exc: Any) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", {}, timeout=5)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- the protocol --------------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._event(msg)
                    self._cond.notify_all()

    def _event(self, msg: dict[str, Any]) -> None:
        session, method, params = msg.get("sessionId"), msg["method"], msg.get("params", {})
        self._events.append((session, method, params))
        page = self._pages.get(session or "")
        if page is None:
            return
        if method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            page.console.append(f"uncaught: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            page.console.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                             for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            page.console.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            page.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            page.console.append(f"failed to load: {params.get('errorText')} ({params.get('type')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            page.console.append(f"HTTP {params['response']['status']}: {params['response']['url']}")

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        with self._cond:
            self._next += 1
            mid = self._next
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = end - time.monotonic()
                if left <= 0 or getattr(self, "_closed", False):
                    raise BrowserError(f"no reply to {method} within {timeout}s")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def clear_events(self, session: str, method: str) -> None:
        with self._cond:
            self._events = [e for e in self._events if not (e[0] == session and e[1] == method)]

    def wait_event(self, session: str, method: str, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self._events:
                    if e[0] == session and e[1] == method:
                        self._events.remove(e)
                        return e[2]
                left = end - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no {method} within {timeout}s")
                self._cond.wait(left)

    # -- pages ---------------------------------------------------------------------------------
    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        with self._cond:
            self._pages[session] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1], deviceScaleFactor=1,
                  mobile=False)
        return page

    def open(self, url: str) -> Page:
        return self.new_page().open(url)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port for the duration; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
