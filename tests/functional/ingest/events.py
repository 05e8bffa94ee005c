"""Client events as an SDK would send them (server authority: no chain fields)."""

from __future__ import annotations

import uuid
from typing import Any

PAYLOADS: dict[str, dict[str, Any]] = {
    "SESSION_START": {"agent_id": "travel-agent", "environment": "dev", "framework": "langchain"},
    "SESSION_END": {"status": "success", "duration_ms": 1200},
    "MODEL_REQUEST": {"model": "claude-sonnet", "messages": [{"role": "user", "content": "Find a flight to Lisbon"}]},
    "MODEL_RESPONSE": {"model": "claude-sonnet", "content": "Searching flights.", "finish_reason": "tool_use"},
    "TOOL_CALL": {"tool_name": "search_flights", "args": {"to": "LIS", "max_price": 900}},
    "TOOL_RESULT": {"tool_name": "search_flights", "result": {"offers": 3}, "status": "ok", "duration_ms": 340},
    "AGENT_STATE_SNAPSHOT": {"state": {"step": 3}, "checkpoint_id": "c-3"},
    "DECISION_TRACE": {
        "decision_id": "d-1",
        "inputs": {"offers": 3},
        "outputs": {"pick": 1},
        "justification": "cheapest",
    },
    "ERROR": {"error_type": "Timeout", "message": "tool timed out", "fatal": False},
    "ANNOTATION": {"annotator_id": "reviewer", "annotation_type": "comment", "content": "looks fine"},
    "LOG_DROP": {"dropped_count": 2, "cumulative_drops": 2, "drop_reason": "BUFFER_FULL"},
}


def event(sequence: int, event_type: str | None = None, **fields: Any) -> dict[str, Any]:
    chosen = event_type or ("SESSION_START" if sequence == 0 else "TOOL_CALL")
    built: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence,
        "timestamp_wall": "2026-01-01T12:00:00.250Z",
        "timestamp_monotonic": 1_000 + sequence,
        "event_type": chosen,
        "source_sdk_ver": "agentops-replay-python/0.1.0",
        "schema_ver": "v0.6",
        "payload": dict(PAYLOADS.get(chosen, PAYLOADS["TOOL_CALL"])),
    }
    built.update(fields)
    return built


def batch(first: int, count: int, *, end: bool = False) -> list[dict[str, Any]]:
    events = [event(sequence) for sequence in range(first, first + count)]
    if end:
        events[-1] = event(first + count - 1, "SESSION_END")
    return events


def new_session_id() -> str:
    return str(uuid.uuid4())
