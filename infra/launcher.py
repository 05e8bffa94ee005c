"""Start ``python -m infra.local_stack`` in a subprocess, wait for its ready line, and stop it cleanly.

Used by ``make demo``, the integration fixture (``tests/integration/conftest.py``) and any test that needs a stack
with its own settings, e.g. ``running_local_stack(log_path, {"SEAL_IDLE_SECONDS": "1"})``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_LINE = re.compile(r"^AgentOps Replay local stack ready at (http://127\.0\.0\.1:\d+)$", re.MULTILINE)
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class LocalStackHandle:
    base_url: str
    info: dict[str, Any]  # GET /_local/info: aws_endpoint, region, table, archive_bucket, kms_key_id
    log_path: Path
    function_log_path: Path  # the functions' structured log lines (FUNCTION_LOG_FILE)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def function_log_records(self) -> list[dict[str, Any]]:
        """The functions' log lines so far, one JSON object each."""
        if not self.function_log_path.exists():
            return []
        return [json.loads(line) for line in self.function_log_path.read_text().splitlines() if line]

    def seal_now(self) -> list[str]:
        request = urllib.request.Request(f"{self.base_url}/_local/seal", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            sealed: list[str] = json.loads(response.read())["sealed"]
            return sealed


@contextmanager
def running_local_stack(
    log_path: Path, extra_env: dict[str, str] | None = None, stop_signal: signal.Signals = signal.SIGTERM
) -> Iterator[LocalStackHandle]:
    """Run a local stack on a free port; on exit send ``stop_signal`` and require a clean exit (status 0). The
    functions' log lines go to ``<log_path stem>.functions.log`` beside ``log_path`` unless ``extra_env`` names a
    ``FUNCTION_LOG_FILE``."""
    environment = {
        **os.environ,
        "PORT": "0",
        # Tests seal explicitly through POST /_local/seal; the timer would race them.
        "SEAL_INTERVAL_SECONDS": "3600",
        "PYTHONUNBUFFERED": "1",
        "FUNCTION_LOG_FILE": str(log_path.with_name(f"{log_path.stem}.functions.log")),
        **(extra_env or {}),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        base_url = _wait_until_ready(process, log_path)
        with urllib.request.urlopen(f"{base_url}/_local/info", timeout=10) as response:
            info = json.loads(response.read())
        yield LocalStackHandle(base_url, info, log_path, Path(environment["FUNCTION_LOG_FILE"]))
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"local stack exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        ready = READY_LINE.search(log_path.read_text(errors="replace"))
        if ready:
            return ready.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited with {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    raise TimeoutError(f"local stack not ready within {START_TIMEOUT_SECONDS}s:\n{log_path.read_text()}")
