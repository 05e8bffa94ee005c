"""A fake ingestion service for the SDK's functional tests: API.md's append semantics, minimally, plus faults.

Every batch first goes through the service's own request validation (``agentops_server.validation``: strict I-JSON,
ELS section 3 payload types, redaction siblings), answered with the service's status, code and details, so what the
fake accepts the real service accepts. ``refusal``, when set, is asked about every validated batch and may refuse it
the way a service with stricter rules would (a scripted 4xx).

It keeps what a real server keeps per session (the chain it built with ``agentops_verify.chain_event``, authority
``server``), treats a re-sent stored batch as an idempotent 200, answers 409 SEQUENCE_CONFLICT with the head for
anything else that does not start at the next sequence number, and refuses requests without a SigV4
``Authorization`` header like the local stack does. Faults are scripted per request: ``"500"``, ``"429"``,
``"reset"`` (close the connection without storing or answering), ``"store_then_reset"`` (store, then close without
answering: the lost-response case), ``"store_then_stall"`` (store, then answer only after ``stall_seconds``),
``"store_then_conflict"`` (store, then answer 409 SEQUENCE_CONFLICT with the new head, as a server does when a
concurrent retry of the same batch won the race).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentops_server.errors import ApiError
from agentops_server.redaction import reject_unbacked_redaction
from agentops_server.validation import validate_batch
from agentops_verify import PRODUCER_FIELDS, canonicalize, chain_event

# A scripted refusal: given the batch's events, None to accept or (status, error body) to refuse.
Refusal = Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]] | None]


class FakeIngest:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: dict[str, list[dict[str, Any]]] = {}  # events as the client sent them, by sequence
        self.chains: dict[str, list[dict[str, Any]]] = {}  # the chain the "server" built
        self.faults: deque[str] = deque()
        self.requests = 0
        self.stall_seconds = 2.0
        self.authorizations: list[str] = []
        self.refusal: Refusal | None = None
        self.refused: list[tuple[int, dict[str, Any]]] = []  # every 4xx the fake answered, in order

    def chain_bytes(self, session_id: str) -> bytes:
        with self.lock:
            return b"".join(canonicalize(event) + b"\n" for event in self.chains.get(session_id, []))

    def event_types(self, session_id: str) -> list[str]:
        with self.lock:
            return [event["event_type"] for event in self.chains.get(session_id, [])]

    def payloads(self, session_id: str, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [event["payload"] for event in self.chains.get(session_id, []) if event["event_type"] == event_type]

    def head(self, session_id: str) -> dict[str, Any]:
        chain = self.chains.get(session_id, [])
        return {
            "next_sequence_number": len(chain),
            "last_event_hash": chain[-1]["event_hash"] if chain else None,
            "status": "ENDED" if chain and chain[-1]["event_type"] == "SESSION_END" else "OPEN",
        }

    def append(self, session_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        status, answer = self._append(session_id, body)
        if 400 <= status < 500:
            self.refused.append((status, answer))
        return status, answer

    def _append(self, session_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            batch = validate_batch(body, session_id)
            for index, (event, payload_bytes) in enumerate(zip(batch.events, batch.payloads, strict=True)):
                reject_unbacked_redaction(index, event["payload"], payload_bytes)
            events = [dict(event) for event in batch.events]
        except ApiError as exc:
            return exc.status, exc.body()
        if self.refusal is not None:
            refused = self.refusal(events)
            if refused is not None:
                return refused
        first = events[0]["sequence_number"]
        if [event["sequence_number"] for event in events] != list(range(first, first + len(events))):
            return 400, _error("NON_CONTIGUOUS_BATCH", {})
        received = self.received.setdefault(session_id, [])
        chain = self.chains.setdefault(session_id, [])
        if first < len(received):
            if received[first : first + len(events)] == [_client_form(event) for event in events]:
                return 200, self._accepted(session_id, first, len(events))
            return 409, _error("SEQUENCE_CONFLICT", {"head": self.head(session_id)})
        if first > len(received):
            return 409, _error("SEQUENCE_CONFLICT", {"head": self.head(session_id)})
        if chain and chain[-1]["event_type"] == "SESSION_END":
            return 409, _error("SESSION_ENDED", {})
        if first == 0 and events[0]["event_type"] != "SESSION_START":
            return 400, _error("INVALID_FIRST_EVENT", {})
        ids = {event["event_id"] for event in received}
        for event in events:
            if event["event_id"] in ids:
                return 400, _error("DUPLICATE_EVENT_ID", {})
            ids.add(event["event_id"])
        for event in events:
            received.append(_client_form(event))
            chain.append(
                chain_event(
                    **{key: event[key] for key in PRODUCER_FIELDS if key != "session_id"},
                    session_id=session_id,
                    prev_event_hash=chain[-1]["event_hash"] if chain else None,
                    chain_authority="server",
                    authority_id="fake-ingest",
                )
            )
        return 200, self._accepted(session_id, first, len(events))

    def _accepted(self, session_id: str, first: int, count: int) -> dict[str, Any]:
        stored = self.chains[session_id][first : first + count]
        return {
            "session_id": session_id,
            "accepted": count,
            "events": [
                {"sequence_number": e["sequence_number"], "event_id": e["event_id"], "event_hash": e["event_hash"]}
                for e in stored
            ],
            "head": self.head(session_id),
        }


def _client_form(event: dict[str, Any]) -> dict[str, Any]:
    return {key: event.get(key) for key in PRODUCER_FIELDS}


def _error(code: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"code": code, "message": f"fake ingest: {code}", "details": details}}


def _handler_for(fake: FakeIngest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with fake.lock:
                fake.requests += 1
                fault = fake.faults.popleft() if fake.faults else None
                if fault == "reset":
                    self._reset()
                    return
                if fault in ("500", "429"):
                    self._reply(int(fault), _error("INTERNAL" if fault == "500" else "THROTTLED", {}))
                    return
                authorization = self.headers.get("Authorization", "")
                fake.authorizations.append(authorization)
                parts = self.path.split("/")
                if not authorization.startswith("AWS4-HMAC-SHA256 Credential="):
                    status, answer = 403, _error("FORBIDDEN", {})
                elif len(parts) != 5 or parts[1:3] != ["v1", "sessions"] or parts[4] != "events":
                    status, answer = 404, _error("NOT_FOUND", {})
                else:
                    status, answer = fake.append(parts[3], body)
            if fault == "store_then_reset":
                self._reset()
                return
            if fault == "store_then_stall":
                time.sleep(fake.stall_seconds)
            if fault == "store_then_conflict" and status == 200:
                with fake.lock:
                    status, answer = 409, _error("SEQUENCE_CONFLICT", {"head": fake.head(parts[3])})
            self._reply(status, answer)

        def _reply(self, status: int, answer: dict[str, Any]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _reset(self) -> None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


@contextmanager
def running_fake_ingest(tls: ssl.SSLContext | None = None) -> Iterator[tuple[FakeIngest, str]]:
    """The fake on 127.0.0.1; with ``tls`` (a server context) it speaks HTTPS and is named ``localhost``."""
    fake = FakeIngest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield fake, f"https://localhost:{port}" if tls is not None else f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
