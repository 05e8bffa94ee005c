"""Headless Chromium driven through the DevTools protocol, standard library only.

The browser is Debian's ``chromium`` (``make browser`` installs it). It is started with ``--remote-debugging-pipe``:
the protocol's JSON messages, each ended by a NUL byte, travel over the browser's file descriptors 3 (commands in)
and 4 (replies and events out), so no port is opened and no websocket client is needed. One ``Browser`` serves a
whole test session; ``Browser.page()`` gives a fresh tab (its own target session) that records every network request
the page makes and every Content-Security-Policy violation it reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, on a machine without network: no sandbox (root), nothing that phones home, a fresh profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)
# Every CSP violation the page reports, collected before any of the page's own scripts run.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({directive: event.violatedDirective, blocked: event.blockedURI});
});
"""


class BrowserError(RuntimeError):
    """The browser could not be started, went away, or answered a command with an error."""


def chromium_path() -> Path:
    if not CHROMIUM.exists():
        raise BrowserError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    return CHROMIUM


@dataclass
class _Connection:
    process: subprocess.Popen[bytes]
    commands: int  # our end of the browser's fd 3
    replies: int  # our end of the browser's fd 4
    next_id: int = 1
    buffer: bytearray = field(default_factory=bytearray)
    events: list[dict[str, Any]] = field(default_factory=list)

    def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> int:
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self.next_id += 1
        data = json.dumps(message).encode("utf-8") + b"\0"
        while data:
            written = os.write(self.commands, data)
            data = data[written:]
        return int(message["id"])

    def receive(self, deadline: float) -> dict[str, Any]:
        while True:
            end = self.buffer.find(b"\0")
            if end >= 0:
                message: dict[str, Any] = json.loads(bytes(self.buffer[:end]))
                del self.buffer[: end + 1]
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the browser did not answer in time")
            ready, _, _ = select.select([self.replies], [], [], remaining)
            if ready:
                chunk = os.read(self.replies, 1 << 20)
                if not chunk:
                    raise BrowserError("the browser closed its DevTools pipe")
                self.buffer.extend(chunk)

    def call(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        command_id = self.send(method, params, session_id)
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(deadline)
            if message.get("id") == command_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def pump(self, timeout: float) -> None:
        """Collect the events that arrive within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError):
            while True:
                self.events.append(self.receive(deadline))


class Page:
    """One tab: navigate to a file, evaluate JavaScript, press keys; remembers its requests and CSP violations."""

    def __init__(self, connection: _Connection, target_id: str, session_id: str) -> None:
        self._connection = connection
        self.target_id = target_id
        self.session_id = session_id
        self.requests: list[str] = []  # every URL the page asked for, in order (including refused ones)
        self.blocked: dict[str, str] = {}  # URL -> why the browser refused to send it ("csp", ...)
        self.console_errors: list[str] = []
        self._urls: dict[str, str] = {}

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        result = self._connection.call(method, params, self.session_id, timeout)
        self._absorb_events()
        return result

    def _absorb_events(self) -> None:
        kept = []
        for event in self._connection.events:
            if event.get("sessionId") != self.session_id:
                kept.append(event)
                continue
            method = event.get("method")
            params = event.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
                self._urls[params["requestId"]] = params["request"]["url"]
            elif method == "Network.loadingFailed" and params.get("blockedReason"):
                self.blocked[self._urls.get(params["requestId"], "?")] = params["blockedReason"]
            elif method == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:2000])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                self.console_errors.append(params["entry"].get("text", ""))
        self._connection.events = kept

    def open(self, path: Path, fragment: str = "") -> str:
        """Load ``path`` as a file:// page (``#fragment`` appended); returns the URL."""
        url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        self.call("Page.navigate", {"url": url})
        return url

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, interval: float = 0.02) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(interval)

    def press(self, key: str) -> None:
        """One key press (keydown with its text, then keyup), as a person's keyboard would send it."""
        code = _KEY_CODES.get(key, {"key": key, "code": f"Key{key.upper()}", "text": key})
        down = {"type": "keyDown", **code}
        if "text" not in code:
            down["type"] = "rawKeyDown"
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **{k: v for k, v in code.items() if k != "text"}})

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", {"text": text})

    def settle(self, seconds: float = 0.05) -> None:
        self._connection.pump(seconds)
        self._absorb_events()

    def close(self) -> None:
        self._connection.call("Target.closeTarget", {"targetId": self.target_id})


_KEY_CODES: dict[str, dict[str, Any]] = {
    "Enter": {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
    "ArrowDown": {"key": "ArrowDown", "code": "ArrowDown", "windowsVirtualKeyCode": 40},
    "ArrowUp": {"key": "ArrowUp", "code": "ArrowUp", "windowsVirtualKeyCode": 38},
    "End": {"key": "End", "code": "End", "windowsVirtualKeyCode": 35},
    "Home": {"key": "Home", "code": "Home", "windowsVirtualKeyCode": 36},
    "Escape": {"key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27},
    "j": {"key": "j", "code": "KeyJ", "windowsVirtualKeyCode": 74, "text": "j"},
    "k": {"key": "k", "code": "KeyK", "windowsVirtualKeyCode": 75, "text": "k"},
    "/": {"key": "/", "code": "Slash", "windowsVirtualKeyCode": 191, "text": "/"},
}


def _pipe_above_four() -> tuple[int, int]:
    """A pipe whose two ends are not descriptors 3 or 4, so moving them there cannot close one by accident."""
    read_end, write_end = os.pipe()
    moved = (fcntl.fcntl(read_end, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(write_end, fcntl.F_DUPFD_CLOEXEC, 10))
    os.close(read_end)
    os.close(write_end)
    return moved


class Browser:
    """A headless Chromium process with a fresh profile, ended (with its profile) by ``close``."""

    def __init__(self, window_size: tuple[int, int] = (1280, 900)) -> None:
        executable = chromium_path()
        self._profile = tempfile.mkdtemp(prefix="agentops-chromium-")
        commands_read, commands_write = _pipe_above_four()
        replies_read, replies_write = _pipe_above_four()
        # bash (dash takes single-digit descriptors only) moves the pipe ends to the descriptors 3 and 4 that
        # --remote-debugging-pipe uses, then becomes the browser.
        script = f'exec "$0" "$@" 3<&{commands_read} 4>&{replies_write} {commands_read}<&- {replies_write}>&-'
        arguments = [
            *FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={window_size[0]},{window_size[1]}",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            ["/bin/bash", "-c", script, str(executable), *arguments],
            pass_fds=(commands_read, replies_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so close() ends the helpers it spawns too
        )
        os.close(commands_read)
        os.close(replies_write)
        self._connection = _Connection(self._process, commands_write, replies_read)
        try:
            self.version = self._connection.call("Browser.getVersion", timeout=60)["product"]
        except BaseException:
            self.close()
            raise

    def page(self) -> Page:
        target_id = self._connection.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self._connection.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})[
            "sessionId"
        ]
        page = Page(self._connection, target_id, session_id)
        page.call("Page.enable")
        page.call("Network.enable")
        page.call("Runtime.enable")
        page.call("Log.enable")
        page.call("Page.addScriptToEvaluateOnNewDocument", {"source": _CSP_LISTENER})
        return page

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far by every process of this browser (Linux ``/proc``): on a busy
        machine it says how much work a page took where wall time says mostly how long it waited for a CPU."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) == self._process.pid:  # its process group is the browser's (start_new_session)
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        with contextlib.suppress(BrowserError, TimeoutError, OSError):
            self._connection.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)  # renderer or zygote helpers left behind
        for descriptor in (self._connection.commands, self._connection.replies):
            with contextlib.suppress(OSError):
                os.close(descriptor)
        shutil.rmtree(self._profile, ignore_errors=True)


@contextlib.contextmanager
def running_browser() -> Iterator[Browser]:
    browser = Browser()
    try:
        yield browser
    finally:
        browser.close()
