"""Events as an agent sends them under server authority (API.md): no hashes, no chain or authority fields."""

from __future__ import annotations

import json
import uuid
from typing import Any

CLIENT_PAYLOADS: dict[str, dict[str, Any]] = {
    "SESSION_START": {"agent_id": "hardening-agent", "environment": "dev"},
    "MODEL_REQUEST": {"model": "m-1", "messages": [{"role": "user", "content": "refund order 42"}]},
    "MODEL_RESPONSE": {"model": "m-1", "content": "calling the refund tool"},
    "TOOL_CALL": {"tool_name": "refund", "args": {"order": 42, "amount": 12.5}},
    "TOOL_RESULT": {"tool_name": "refund", "result": {"ok": True}, "status": "success"},
    "SESSION_END": {"status": "success"},
}


def client_event(sequence: int, event_type: str = "MODEL_REQUEST", **fields: Any) -> dict[str, Any]:
    """One event at ``sequence``; ``fields`` replace or add envelope members (any JSON value, for attacks)."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence,
        "timestamp_wall": f"2026-01-01T12:00:{sequence % 60:02d}.000Z",
        "event_type": event_type,
        "payload": json.loads(json.dumps(CLIENT_PAYLOADS.get(event_type, {}))),
    }
    event.update(fields)
    return event


def opening(extra: int = 0) -> list[dict[str, Any]]:
    return [client_event(0, "SESSION_START"), *(client_event(n) for n in range(1, extra + 1))]


def body(events: list[dict[str, Any]], **top_level: Any) -> bytes:
    return json.dumps({"events": events, **top_level}).encode()
