"""The command line against a scripted HTTP service on 127.0.0.1: answers the local stack cannot be made to give
(a download that does not match its SHA-256, a 202 PENDING export, a chain that does not verify)."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SESSION_ID = "3f1c2b6e-0000-4000-8000-000000000001"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeService:
    """Answers each ``(method, path)`` with its scripted answers in turn (the last one repeats). An answer is
    ``(status, JSON document)`` or ``(status, raw bytes)``."""

    base_url: str = ""
    answers: dict[tuple[str, str], deque[tuple[int, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.answers[(method, path)] = deque(answers)

    def answer(self, request: Request) -> tuple[int, bytes, str]:
        self.requests.append(request)
        scripted = self.answers.get((request.method, request.path))
        if not scripted:
            return 404, json.dumps({"error": {"code": "NOT_FOUND", "message": "No such route."}}).encode(), "json"
        status, body = scripted.popleft() if len(scripted) > 1 else scripted[0]
        if isinstance(body, bytes):
            return status, body, "octet-stream"
        return status, json.dumps(body).encode(), "json"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDCLIFUNCTIONAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    fake = FakeService()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {name.lower(): value for name, value in self.headers.items()},
                self.rfile.read(length),
            )
            status, body, kind = fake.answer(request)
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if kind == "json" else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _serve  # noqa: N815 - the names http.server calls
        do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AGENTOPS_ENDPOINT", fake.base_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
