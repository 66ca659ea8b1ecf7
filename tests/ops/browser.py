"""Headless Chromium driven over the DevTools protocol: load a page, collect what went wrong
(exceptions, console errors, failed or external requests), query it, take a screenshot."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops_support import stop

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    value: Any = None
    screenshot: bytes = b""


class _Session:
    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=20)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self.events.append(message)

    def close(self) -> None:
        self.ws.close()


def _devtools_port(user_data: Path, proc: subprocess.Popen, timeout: float = 30.0) -> int:
    marker = user_data / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")


@contextmanager
def open_page(chromium: str, url: str, width: int = 1280) -> Iterator[_Session]:
    """Chromium with `url` loaded (the load event fired), driven over one DevTools session."""
    user_data = Path(tempfile.mkdtemp(prefix="sftforge-chromium-"))
    proc = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={user_data}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port = _devtools_port(user_data, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t.get("type") == "page")
        session = _Session(page["webSocketDebuggerUrl"])
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                session.call(f"{domain}.enable")
            session.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            session.call("Page.navigate", url=url)
            session.wait_for("Page.loadEventFired")
            yield session
        finally:
            session.close()
    finally:
        stop(proc, grace=5.0)
        shutil.rmtree(user_data, ignore_errors=True)


def evaluate(session: _Session, expression: str) -> Any:
    evaluated = session.call("Runtime.evaluate", expression=expression, returnByValue=True)
    if "exceptionDetails" in evaluated:
        raise RuntimeError(json.dumps(evaluated["exceptionDetails"])[:500])
    return evaluated.get("result", {}).get("value")


def click(session: _Session, x: float, y: float) -> None:
    """A real mouse click (pressed, released) at viewport coordinates."""
    for kind in ("mousePressed", "mouseReleased"):
        session.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def problems(session: _Session, result: PageResult) -> None:
    """What went wrong in the page, and every request it made, into `result`."""
    for event in session.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            result.errors.append(json.dumps(params.get("exceptionDetails"))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            result.errors.append(json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            result.errors.append(params["entry"].get("text", "")[:500])
        elif method == "Network.loadingFailed":
            result.errors.append(f"failed to load: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            result.requests.append(params["request"]["url"])


def render(chromium: str, url: str, expression: str, width: int = 1280) -> PageResult:
    """Load `url`, evaluate `expression` (its JSON value is returned), screenshot the page."""
    with open_page(chromium, url, width) as session:
        result = PageResult(value=evaluate(session, expression))
        size = session.call("Page.getLayoutMetrics")["cssContentSize"]
        height = int(min(size["height"], 16000))
        session.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = session.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        result.screenshot = base64.b64decode(shot["data"])
        problems(session, result)
        return result
