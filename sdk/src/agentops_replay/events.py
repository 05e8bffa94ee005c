"""The closed set of event types and the payload rules the SDK enforces before an event is buffered (ELS section 3).

These checks run on the agent's thread, so they are deliberately shallow: the event type, that the payload is a
dict, its required keys, the types of the keys ELS section 3 names (as strictly as the ingestion service checks them,
so that one bad event never gets a whole batch refused), and the top-level values that are cheap to test for I-JSON
(ELS section 2). Nested values are checked off-thread when the sender canonicalizes the event; an event that fails
there is counted as invalid and never sent, and it never receives a sequence number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

from agentops_verify import REQUIRED_PAYLOAD_KEYS

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

# ELS section 3: required payload keys of every type an agent may record (from the verifier: one statement of the
# rules). SESSION_START and SESSION_END are recorded by Session itself, LOG_DROP by the sender, CHAIN_SEAL only by a
# server (or local mode).
RECORDABLE_TYPES: Final[dict[str, tuple[str, ...]]] = {
    event_type: keys
    for event_type, keys in REQUIRED_PAYLOAD_KEYS.items()
    if event_type not in (SESSION_START, SESSION_END, LOG_DROP, CHAIN_SEAL)
}

SESSION_END_STATUSES: Final = frozenset({"success", "failure", "timeout", "cancelled"})

# ELS section 3: why events were dropped.
BUFFER_FULL: Final = "BUFFER_FULL"
NETWORK_LOSS: Final = "NETWORK_LOSS"
SDK_CRASH: Final = "SDK_CRASH"

MAX_SAFE_INTEGER: Final = 2**53 - 1


def _name(value: Any) -> bool:
    return type(value) is str and value != ""


def _text(value: Any) -> bool:
    return type(value) is str


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INTEGER


def _flag(value: Any) -> bool:
    return type(value) is bool


def _amount(value: Any) -> bool:
    return (type(value) is int or type(value) is float) and value >= 0


def _one_of(*allowed: str) -> Callable[[Any], bool]:
    choices = frozenset(allowed)
    return lambda value: type(value) is str and value in choices


def _tags(value: Any) -> bool:
    return value == "[REDACTED]" or (type(value) is list and all(type(tag) is str for tag in value))


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(value: Any) -> bool:
    return type(value) is str and _UUID.fullmatch(value) is not None


# ELS section 3 keys with a fixed type. Free-form keys (messages, args, result, state, inputs, ...) take any JSON.
# An optional key is either absent or of its type: null is not a way to say "absent".
KEY_RULES: Final[dict[str, dict[str, Callable[[Any], bool]]]] = {
    SESSION_START: {
        "agent_id": _name,
        "environment": _one_of("prod", "staging", "dev"),
        "framework": _text,
        "framework_version": _text,
        "sdk_version": _text,
        "tags": _tags,
        "system_prompt_hash": _text,
    },
    SESSION_END: {
        "status": _one_of("success", "failure", "timeout", "cancelled"),
        "reason": _text,
        "duration_ms": _count,
        "total_cost_usd": _amount,
    },
    MODEL_REQUEST: {"model": _name, "provider": _text, "prompt_hash": _text},
    MODEL_RESPONSE: {"model": _name, "content_hash": _text, "finish_reason": _text},
    TOOL_CALL: {"tool_name": _name, "tool_id": _text, "args_hash": _text},
    TOOL_RESULT: {"tool_name": _name, "tool_id": _text, "result_hash": _text, "status": _text, "duration_ms": _count},
    AGENT_STATE_SNAPSHOT: {"checkpoint_id": _text},
    DECISION_TRACE: {"decision_id": _name, "policy_version": _text},
    ERROR: {"error_type": _name, "message": _text, "fatal": _flag},
    ANNOTATION: {
        "annotator_id": _name,
        "annotation_type": _one_of("flag", "comment", "rating"),
        "target_event_id": _uuid,
    },
}


def mistyped_keys(event_type: str, payload: dict[str, Any]) -> list[str]:
    """The ELS-named keys of ``payload`` whose values do not have their type."""
    rules = KEY_RULES.get(event_type, {})
    return [key for key, valid in rules.items() if key in payload and not valid(payload[key])]


def payload_problem(event_type: str, payload: Any) -> str | None:
    """Return why ``payload`` cannot be recorded as ``event_type``, or None when the shallow checks pass.

    One pass over the top level: this runs on the agent's thread for every event."""
    required = RECORDABLE_TYPES.get(event_type)
    if required is None:
        return f"event type {event_type!r} cannot be recorded by an agent"
    if type(payload) is not dict:
        return "payload is not a dict"
    for key in required:
        if key not in payload:
            return f"payload lacks the required key {key!r}"
    rules = KEY_RULES[event_type]
    for key, value in payload.items():
        if type(key) is not str:
            return f"payload key {key!r} is not a string"
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return f"payload value of {key!r} is not a finite number"
        elif kind is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return f"payload value of {key!r} is outside +-(2**53 - 1)"
        rule = rules.get(key)
        if rule is not None and not rule(value):
            return f"payload key {key!r} does not have its ELS section 3 type"
    return None
