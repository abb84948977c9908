"""Open a page in headless Chromium and record what it did, through the DevTools protocol.

Chromium listens for DevTools on a free port of 127.0.0.1 only, resolves no host name
(``--host-resolver-rules``), and every wait here is bounded; the browser is killed at the
end whatever happens.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT_S = 30.0
LOAD_TIMEOUT_S = 30.0

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Belt and braces: even if a page asked for a host, no name would resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    "--window-size=1400,1000",
)


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    return found or (CHROMIUM if Path(CHROMIUM).exists() else None)


@dataclass
class PageVisit:
    """What a page did while it loaded."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)


def visit(
    page: Path, *, screenshot: Path | None = None, evaluate: dict[str, str] | None = None
) -> PageVisit:
    """Load ``page`` (a local file), then run each ``evaluate`` expression and keep its value.

    Console errors are console.error calls, uncaught exceptions and browser log entries of
    level error; requests are every URL the page asked for, the page itself included.
    """
    import websocket

    chromium = chromium_path()
    assert chromium is not None, "chromium is not installed"
    profile_dir = tempfile.mkdtemp(prefix="profiletel-chromium-")
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port = _devtools_port(Path(profile_dir), process)
        target = _page_target(port)
        socket = websocket.create_connection(target, timeout=LOAD_TIMEOUT_S)
        try:
            return _drive(socket, page, screenshot, evaluate or {})
        finally:
            socket.close()
    finally:
        process.kill()
        process.wait(timeout=30)
        shutil.rmtree(profile_dir, ignore_errors=True)


def _devtools_port(profile_dir: Path, process: subprocess.Popen[bytes]) -> int:
    active = profile_dir / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} on start")
        if active.exists():
            lines = active.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        time.sleep(0.1)
    raise TimeoutError(f"chromium did not open DevTools within {START_TIMEOUT_S} s")


def _page_target(port: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
            targets = json.load(answer)
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise TimeoutError("chromium opened no page")


def _drive(socket: Any, page: Path, screenshot: Path | None,
           evaluate: dict[str, str]) -> PageVisit:
    visit_ = PageVisit()
    ids = iter(range(1, 10_000))
    deadline = time.monotonic() + LOAD_TIMEOUT_S

    def record(event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            visit_.console_errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            visit_.console_errors.append(str(params["exceptionDetails"].get("text")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            visit_.console_errors.append(str(params["entry"].get("text")))
        elif method == "Network.requestWillBeSent":
            visit_.requests.append(str(params["request"]["url"]))

    def call(method: str, **params: Any) -> dict[str, Any]:
        call_id = next(ids)
        socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while time.monotonic() < deadline:
            message = json.loads(socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return dict(message.get("result", {}))
            record(message)
        raise TimeoutError(f"no answer to {method} within {LOAD_TIMEOUT_S} s")

    def wait_for(method: str) -> None:
        while time.monotonic() < deadline:
            message = json.loads(socket.recv())
            record(message)
            if message.get("method") == method:
                return
        raise TimeoutError(f"no {method} within {LOAD_TIMEOUT_S} s")

    for domain in ("Runtime", "Log", "Network", "Page"):
        call(f"{domain}.enable")
    call("Page.navigate", url=page.resolve().as_uri())
    wait_for("Page.loadEventFired")
    # One round trip more, so events sent right after the load are recorded too.
    call("Runtime.evaluate", expression="new Promise(r => setTimeout(r, 200))",
         awaitPromise=True)
    for name, expression in evaluate.items():
        answer = call("Runtime.evaluate", expression=expression, returnByValue=True)
        visit_.results[name] = answer.get("result", {}).get("value")
    if screenshot is not None:
        shot = call("Page.captureScreenshot", format="png")
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    return visit_
