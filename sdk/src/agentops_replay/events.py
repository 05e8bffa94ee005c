"""The closed set of event types and the payload rules the SDK enforces before an event is buffered (ELS section 3).

These checks run on the agent's thread, so they are deliberately shallow: the event type, that the payload is a
dict, its required keys, and the top-level values that are cheap to test for I-JSON (ELS section 2). Nested values
are checked off-thread when the sender canonicalizes the event; an event that fails there is counted as invalid and
never sent, and it never receives a sequence number.
"""

from __future__ import annotations

import math
from typing import Any, Final

SESSION_START: Final = "SESSION_START"
SESSION_END: Final = "SESSION_END"
MODEL_REQUEST: Final = "MODEL_REQUEST"
MODEL_RESPONSE: Final = "MODEL_RESPONSE"
TOOL_CALL: Final = "TOOL_CALL"
TOOL_RESULT: Final = "TOOL_RESULT"
AGENT_STATE_SNAPSHOT: Final = "AGENT_STATE_SNAPSHOT"
DECISION_TRACE: Final = "DECISION_TRACE"
ERROR: Final = "ERROR"
ANNOTATION: Final = "ANNOTATION"
LOG_DROP: Final = "LOG_DROP"
CHAIN_SEAL: Final = "CHAIN_SEAL"

# ELS section 3: required payload keys of every type an agent may record. SESSION_START and SESSION_END are
# recorded by Session itself, LOG_DROP by the sender, CHAIN_SEAL only by a server (or local mode).
RECORDABLE_TYPES: Final[dict[str, tuple[str, ...]]] = {
    MODEL_REQUEST: ("model",),
    MODEL_RESPONSE: ("model",),
    TOOL_CALL: ("tool_name",),
    TOOL_RESULT: ("tool_name",),
    AGENT_STATE_SNAPSHOT: (),
    DECISION_TRACE: ("decision_id", "inputs", "outputs", "justification"),
    ERROR: ("error_type", "message"),
    ANNOTATION: ("annotator_id", "annotation_type", "content"),
}

SESSION_END_STATUSES: Final = frozenset({"success", "failure", "timeout", "cancelled"})

# ELS section 3: why events were dropped.
BUFFER_FULL: Final = "BUFFER_FULL"
NETWORK_LOSS: Final = "NETWORK_LOSS"
SDK_CRASH: Final = "SDK_CRASH"

MAX_SAFE_INTEGER: Final = 2**53 - 1


def payload_problem(event_type: str, payload: Any) -> str | None:
    """Return why ``payload`` cannot be recorded as ``event_type``, or None when the shallow checks pass."""
    required = RECORDABLE_TYPES.get(event_type)
    if required is None:
        return f"event type {event_type!r} cannot be recorded by an agent"
    if type(payload) is not dict:
        return "payload is not a dict"
    for key in required:
        if key not in payload:
            return f"payload lacks the required key {key!r}"
    return top_level_ijson_problem(payload)


def top_level_ijson_problem(payload: dict[str, Any]) -> str | None:
    """ELS section 2, first level only: string keys, finite floats, integers within +-(2**53 - 1)."""
    for key, value in payload.items():
        if type(key) is not str:
            return f"payload key {key!r} is not a string"
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return f"payload value of {key!r} is not a finite number"
        elif kind is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return f"payload value of {key!r} is outside +-(2**53 - 1)"
    return None
