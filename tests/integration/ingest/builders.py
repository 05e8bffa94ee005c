"""Client-side events for the ingest API (what an agent sends) and the chain a correct server makes of them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from agentops_verify import event_hash, payload_hash

TIMESTAMP = "2026-01-01T12:00:00.000Z"
PAYLOADS: dict[str, dict[str, Any]] = {
    "SESSION_START": {"agent_id": "integration-agent", "environment": "dev"},
    "MODEL_REQUEST": {"model": "test-model", "messages": [{"role": "user", "content": "2+2?"}]},
    "MODEL_RESPONSE": {"model": "test-model", "content": "4"},
    "TOOL_CALL": {"tool_name": "calculator", "args": {"expression": "2+2"}},
    "SESSION_END": {"status": "success"},
}


def new_session_id() -> str:
    return str(uuid.uuid4())


def event(
    sequence_number: int, event_type: str = "MODEL_REQUEST", payload: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """One event as an agent sends it: no hashes, no authority fields."""
    built: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence_number,
        "timestamp_wall": TIMESTAMP,
        "event_type": event_type,
        "payload": dict(PAYLOADS[event_type]) if payload is None else payload,
    }
    built.update(fields)
    return built


def opening_batch(extra_events: int = 0) -> list[dict[str, Any]]:
    """SESSION_START at 0 followed by ``extra_events`` model requests."""
    return [event(0, "SESSION_START")] + [event(n) for n in range(1, extra_events + 1)]


def batch_body(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"events": list(events)}


def expected_hashes(session_id: str, events: Sequence[dict[str, Any]], prev_event_hash: str | None) -> list[str]:
    """The event hashes ELS section 2 gives these events when chained after ``prev_event_hash``."""
    hashes = []
    for sent in events:
        envelope = {
            "event_id": sent["event_id"],
            "session_id": session_id,
            "sequence_number": sent["sequence_number"],
            "timestamp_wall": sent["timestamp_wall"],
            "event_type": sent["event_type"],
            "payload_hash": payload_hash(sent["payload"]),
            "prev_event_hash": prev_event_hash,
        }
        prev_event_hash = event_hash(envelope)
        hashes.append(prev_event_hash)
    return hashes
