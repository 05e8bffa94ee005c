"""The closed set of event types and the payload rules the SDK enforces before an event is buffered (ELS section 3).

These checks run on the agent's thread, so they are deliberately shallow: the event type, that the payload is a
dict, its required keys, the types of the keys ELS section 3 names (as strictly as the ingestion service checks them,
so that one bad event never gets a whole batch refused), and the top-level keys and numbers for I-JSON (ELS section
2, decided by the verifier). Nested values are checked off-thread when the sender forms the batch (``_batch``); an
event refused there never receives a sequence number of its own: a LOG_DROP takes its place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final

from agentops_verify import (
    CHAIN_SEAL,
    LOG_DROP,
    MAX_SAFE_INTEGER,
    REQUIRED_PAYLOAD_KEYS,
    SESSION_END,
    SESSION_START,
    CanonicalizationError,
    MalformedJSONError,
    canonicalize,
    is_canonical_uuid,
    is_redacted,
    loads,
)

# The SDK's names of ELS section 3's event types (the verifier's EVENT_TYPES); the four the format itself names
# (SESSION_START, SESSION_END, LOG_DROP, CHAIN_SEAL) are the verifier's constants.
MODEL_REQUEST: Final = "MODEL_REQUEST"
MODEL_RESPONSE: Final = "MODEL_RESPONSE"
TOOL_CALL: Final = "TOOL_CALL"
TOOL_RESULT: Final = "TOOL_RESULT"
AGENT_STATE_SNAPSHOT: Final = "AGENT_STATE_SNAPSHOT"
DECISION_TRACE: Final = "DECISION_TRACE"
ERROR: Final = "ERROR"
ANNOTATION: Final = "ANNOTATION"

# ELS section 3: required payload keys of every type an agent may record (from the verifier: one statement of the
# rules). SESSION_START and SESSION_END are recorded by Session itself, LOG_DROP by the sender, CHAIN_SEAL only by a
# server (or local mode).
RECORDABLE_TYPES: Final[dict[str, tuple[str, ...]]] = {
    event_type: keys
    for event_type, keys in REQUIRED_PAYLOAD_KEYS.items()
    if event_type not in (SESSION_START, SESSION_END, LOG_DROP, CHAIN_SEAL)
}

SESSION_END_STATUS_LIST: Final = ("success", "failure", "timeout", "cancelled")
SESSION_END_STATUSES: Final = frozenset(SESSION_END_STATUS_LIST)

# ELS section 3: why events were dropped.
BUFFER_FULL: Final = "BUFFER_FULL"
NETWORK_LOSS: Final = "NETWORK_LOSS"
SDK_CRASH: Final = "SDK_CRASH"
# ELS section 3 has no drop reason for an event that was refused (by the SDK's checks or by the service): SDK_CRASH,
# "the SDK failed to deliver it", is the closest, and the LOG_DROP payload adds ``refused_by`` and ``problem``.
REFUSED: Final = SDK_CRASH


class KeyRule:
    """The type ELS section 3 gives one payload key: a check, and the words a refusal uses to say what is allowed."""

    __slots__ = ("allowed", "check")

    def __init__(self, check: Callable[[Any], bool], allowed: str) -> None:
        self.check = check
        self.allowed = allowed


def _is_name(value: Any) -> bool:
    return type(value) is str and value != ""


def _is_text(value: Any) -> bool:
    return type(value) is str


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INTEGER


def _is_amount(value: Any) -> bool:
    return (type(value) is int or type(value) is float) and value >= 0


def _is_tags(value: Any) -> bool:
    return is_redacted(value) or (type(value) is list and all(type(tag) is str for tag in value))


_NAME = KeyRule(_is_name, "a non-empty string")
_TEXT = KeyRule(_is_text, "a string")
_COUNT = KeyRule(_is_count, "an integer from 0 to 2**53 - 1")
_FLAG = KeyRule(lambda value: type(value) is bool, "true or false")
_AMOUNT = KeyRule(_is_amount, "a number >= 0")
_TAGS = KeyRule(_is_tags, "a list of strings")
_EVENT_ID = KeyRule(is_canonical_uuid, "an event id (lowercase UUID)")


def _one_of(*allowed: str) -> KeyRule:
    choices = frozenset(allowed)
    return KeyRule(lambda value: type(value) is str and value in choices, "one of " + ", ".join(map(repr, allowed)))


# ELS section 3 keys with a fixed type. Free-form keys (messages, args, result, state, inputs, ...) take any JSON.
# An optional key is either absent or of its type: null is not a way to say "absent".
KEY_RULES: Final[dict[str, dict[str, KeyRule]]] = {
    SESSION_START: {
        "agent_id": _NAME,
        "environment": _one_of("prod", "staging", "dev"),
        "framework": _TEXT,
        "framework_version": _TEXT,
        "sdk_version": _TEXT,
        "tags": _TAGS,
        "system_prompt_hash": _TEXT,
    },
    SESSION_END: {
        "status": _one_of(*SESSION_END_STATUS_LIST),
        "reason": _TEXT,
        "duration_ms": _COUNT,
        "total_cost_usd": _AMOUNT,
    },
    MODEL_REQUEST: {"model": _NAME, "provider": _TEXT, "prompt_hash": _TEXT},
    MODEL_RESPONSE: {"model": _NAME, "content_hash": _TEXT, "finish_reason": _TEXT},
    TOOL_CALL: {"tool_name": _NAME, "tool_id": _TEXT, "args_hash": _TEXT},
    TOOL_RESULT: {"tool_name": _NAME, "tool_id": _TEXT, "result_hash": _TEXT, "status": _TEXT, "duration_ms": _COUNT},
    AGENT_STATE_SNAPSHOT: {"checkpoint_id": _TEXT},
    DECISION_TRACE: {"decision_id": _NAME, "policy_version": _TEXT},
    ERROR: {"error_type": _NAME, "message": _TEXT, "fatal": _FLAG},
    ANNOTATION: {
        "annotator_id": _NAME,
        "annotation_type": _one_of("flag", "comment", "rating"),
        "target_event_id": _EVENT_ID,
    },
}


def wrong_type(event_type: str, key: str, value: Any) -> str:
    """Why ``value`` cannot be recorded under ``key``: the key and what ELS section 3 allows there, never the value
    itself (it may be content)."""
    return f"{event_type} {key} must be {KEY_RULES[event_type][key].allowed} (ELS section 3), not {_kind(value)}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return "an empty string" if value == "" else "another string"
    return f"a {type(value).__name__}"


def mistyped_keys(event_type: str, payload: dict[str, Any]) -> list[str]:
    """The ELS-named keys of ``payload`` whose values do not have their type."""
    rules = KEY_RULES.get(event_type, {})
    return [key for key, rule in rules.items() if key in payload and not rule.check(payload[key])]


def payload_problem(event_type: str, payload: Any) -> str | None:
    """Return why ``payload`` cannot be recorded as ``event_type``, or None when the shallow checks pass. The text
    names keys and rules, never values (it is logged, and values may be content).

    One pass over the top level: this runs on the agent's thread for every event. Numbers are put to the verifier's
    own rules (``number_problem``); nested values are checked by the sender (``_batch``)."""
    required = RECORDABLE_TYPES.get(event_type)
    if required is None:
        return f"event type {event_type!r} cannot be recorded by an agent"
    if type(payload) is not dict:
        return "the payload is not a dict"
    for key in required:
        if key not in payload:
            return f"a {event_type} payload needs the key {key!r} (ELS section 3)"
    rules = KEY_RULES[event_type]
    for key, value in payload.items():
        if type(key) is not str:
            return "a payload key is not a string (ELS section 2)"
        kind = type(value)
        if kind is float or kind is int:
            problem = number_problem(value)
            if problem is not None:
                return f"the value of {key!r} is not I-JSON (ELS section 2): {problem}"
        rule = rules.get(key)
        if rule is not None and not rule.check(value):
            return wrong_type(event_type, key, value)
    return None


def number_problem(value: float) -> str | None:
    """Why the service would refuse the number ``value`` (ELS section 2), or None. A safe integer is answered without
    a call (most numbers); any other number is put to the verifier once and the answer remembered (agents record the
    same few floats, a temperature, a score, over and over)."""
    if type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return None
    return _number_problem(value)


@functools.lru_cache(maxsize=4096, typed=True)  # typed: 1.0 and 1 are different questions
def _number_problem(value: float) -> str | None:
    try:
        loads(canonicalize(value))  # a number alone: the nesting a batch body adds cannot matter
    except (CanonicalizationError, MalformedJSONError) as exc:
        return describe_problem(str(exc))
    return None


# A payload value as deep as a batch body holds it: {"events": [{"payload": {key: value}}]}.
_VALUE_IN_BODY = b'{"events":[{"payload":{"v":%b}}]}'


def value_problem(value: Any) -> str | None:
    """Why the service would refuse ``value`` as a payload value, or None. The verifier decides (ELS section 2):
    ``value`` must have a canonical form, and that form must read back under the strict I-JSON reader the service
    uses, nested as deep as a batch body nests it."""
    try:
        loads(_VALUE_IN_BODY % canonicalize(value))
    except (CanonicalizationError, MalformedJSONError) as exc:
        return describe_problem(str(exc))
    return None


# What a refusal may say: the verifier's and the service's messages quote the offending value (a number, a key),
# which may be content. Quoted text, numbers with an exponent and numbers of three digits or more are left out of
# what is logged and recorded ("+-(2**53 - 1)" and "deeper than 64" stay readable).
_VALUE_TEXT = re.compile(r"'[^']*'|\"[^\"]*\"|[-+]?[0-9][0-9.]*[eE][-+]?[0-9]+|[-+]?[0-9]{3,}[0-9.]*")


def describe_problem(message: str) -> str:
    """``message`` without the values it quotes: the kind of problem, fit for logs and for the evidence."""
    return _VALUE_TEXT.sub("...", message)
