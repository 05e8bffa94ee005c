"""Request validation for POST /v1/sessions/{id}/events: strict I-JSON, strict types, ELS section 3 payload rules.

Checks run in a fixed precedence, so a request with several problems always gets the same answer (first match wins):

1. path session id is not a canonical UUID -> SESSION_ID_MISMATCH
2. body is not strict I-JSON (ELS section 2) -> INVALID_JSON (nesting depth is bounded after the other checks on a
   valid batch, and walked before any other error is returned, so it keeps this rank)
3. body is not ``{"events": [...]}`` -> VALIDATION_ERROR; no events -> EMPTY_BATCH; over 500 -> BATCH_TOO_LARGE
4. an event claims a server field -> AUTHORITY_FIELD_REJECTED (ELS section 4)
5. an event is a CHAIN_SEAL -> SERVER_ONLY_EVENT_TYPE; a type outside the closed set -> UNKNOWN_EVENT_TYPE
6. fields and payloads (types, formats, unknown envelope fields, required payload keys, enums) -> VALIDATION_ERROR,
   listing every problem of the batch in ``details.errors``
7. an event's ``session_id`` differs from the path -> SESSION_ID_MISMATCH
8. sequence numbers not consecutive -> NON_CONTIGUOUS_BATCH
9. sequence 0 is not SESSION_START, or SESSION_START elsewhere -> INVALID_FIRST_EVENT
10. anything after SESSION_END, or two SESSION_ENDs -> ORDER_VIOLATION
11. an event id twice in the batch -> DUPLICATE_EVENT_ID

The ingestion core continues with the checks that need hashes or stored state (``agentops_server.ingest``).
Validation never changes the client's values: it returns the parsed events as they are, and each payload's canonical
bytes (RFC 8785), which the service hashes and stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from agentops_verify import (
    MAX_DEPTH,
    SPEC_VERSION,
    MalformedJSONError,
    canonical_bytes,
    check_depth,
    loads_for_hashing,
)
from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one, not typing's, before Python 3.12

from agentops_server.errors import ApiError

MAX_BATCH_EVENTS = 500
MAX_SAFE_INTEGER = 2**53 - 1
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID_CHECK = TypeAdapter(Annotated[str, StringConstraints(pattern=UUID_PATTERN)])

# ELS section 4: fields only the chain authority sets.
AUTHORITY_FIELDS = frozenset({"prev_event_hash", "event_hash", "chain_authority", "authority_id"})
SERVER_ONLY_EVENT_TYPES = frozenset({"CHAIN_SEAL"})
CLIENT_EVENT_TYPES = frozenset(
    {
        "SESSION_START",
        "SESSION_END",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "TOOL_CALL",
        "TOOL_RESULT",
        "AGENT_STATE_SNAPSHOT",
        "DECISION_TRACE",
        "ERROR",
        "ANNOTATION",
        "LOG_DROP",
    }
)


def _calendar_date(value: str) -> str:
    # The pattern fixes the shape; this rejects impossible dates and times such as 2026-02-30 or 25:00:00. RFC 3339
    # (section 5.6) allows a leap second, :60, which datetime cannot hold: it is checked as :59, as the verifier does.
    date_and_time = value[:19]
    if date_and_time.endswith(":60"):
        date_and_time = date_and_time[:-2] + "59"
    try:
        datetime.fromisoformat(date_and_time)
    except ValueError as exc:
        raise ValueError("not a valid calendar date and time") from exc
    return value


Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
# ELS section 1: RFC 3339 UTC with Z, YYYY-MM-DDTHH:MM:SS[.fraction]Z.
Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"),
    AfterValidator(_calendar_date),
]
SafeCount = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
Name = Annotated[str, StringConstraints(min_length=1)]

# The schema is TypedDicts rather than models: validation only answers yes or no (the service hashes the parsed
# values, never validated copies), and pydantic checks a TypedDict about a third faster than a model. An optional
# key may be left out, but when present it has its type: null is not a way to say "absent".

# ELS section 3 payloads are open (redaction adds ``<key>_hash`` siblings, producers add their own keys): what the
# section names is checked strictly, other keys are allowed and not copied. Free-form values (messages, arguments,
# results, state, ...) are any JSON, "[REDACTED]" included.
_PAYLOAD = ConfigDict(strict=True, extra="ignore")
# ELS section 1 fields a client may send (API.md); nothing else.
_EVENT = ConfigDict(strict=True, extra="forbid")
# API.md: the values of optional envelope fields a client leaves out.
ENVELOPE_DEFAULTS = {"timestamp_monotonic": 0, "source_sdk_ver": "unknown", "schema_ver": SPEC_VERSION}


@with_config(_PAYLOAD)
class SessionStartPayload(TypedDict):
    agent_id: Name
    environment: NotRequired[Literal["prod", "staging", "dev"]]
    framework: NotRequired[str]
    framework_version: NotRequired[str]
    sdk_version: NotRequired[str]
    tags: NotRequired[list[str]]
    system_prompt_hash: NotRequired[str]


@with_config(_PAYLOAD)
class SessionEndPayload(TypedDict):
    status: Literal["success", "failure", "timeout", "cancelled"]
    reason: NotRequired[str]
    duration_ms: NotRequired[SafeCount]
    total_cost_usd: NotRequired[Annotated[float, Field(ge=0)]]


@with_config(_PAYLOAD)
class ModelRequestPayload(TypedDict):
    model: Name
    provider: NotRequired[str]
    prompt_hash: NotRequired[str]


@with_config(_PAYLOAD)
class ModelResponsePayload(TypedDict):
    model: Name
    content_hash: NotRequired[str]
    finish_reason: NotRequired[str]


@with_config(_PAYLOAD)
class ToolCallPayload(TypedDict):
    tool_name: Name
    tool_id: NotRequired[str]
    args_hash: NotRequired[str]


@with_config(_PAYLOAD)
class ToolResultPayload(TypedDict):
    tool_name: Name
    tool_id: NotRequired[str]
    result_hash: NotRequired[str]
    status: NotRequired[str]
    duration_ms: NotRequired[SafeCount]


@with_config(_PAYLOAD)
class AgentStateSnapshotPayload(TypedDict):
    checkpoint_id: NotRequired[str]


@with_config(_PAYLOAD)
class DecisionTracePayload(TypedDict):
    decision_id: Name
    inputs: Any
    outputs: Any
    justification: Any
    policy_version: NotRequired[str]


@with_config(_PAYLOAD)
class ErrorPayload(TypedDict):
    error_type: Name
    message: str
    fatal: NotRequired[bool]


@with_config(_PAYLOAD)
class AnnotationPayload(TypedDict):
    annotator_id: Name
    annotation_type: Literal["flag", "comment", "rating"]
    content: Any
    target_event_id: NotRequired[Uuid]


@with_config(_PAYLOAD)
class LogDropPayload(TypedDict):
    dropped_count: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
    cumulative_drops: SafeCount
    drop_reason: Literal["BUFFER_FULL", "NETWORK_LOSS", "SDK_CRASH"]


class _Envelope(TypedDict):
    event_id: Uuid
    sequence_number: SafeCount
    timestamp_wall: Timestamp
    timestamp_monotonic: NotRequired[SafeCount]
    source_sdk_ver: NotRequired[str]
    schema_ver: NotRequired[Literal["v0.6"]]
    session_id: NotRequired[Uuid]
    payload_hash: NotRequired[str]  # optional end-to-end check, compared with the server's value


@with_config(_EVENT)
class SessionStartEvent(_Envelope):
    event_type: Literal["SESSION_START"]
    payload: SessionStartPayload


@with_config(_EVENT)
class SessionEndEvent(_Envelope):
    event_type: Literal["SESSION_END"]
    payload: SessionEndPayload


@with_config(_EVENT)
class ModelRequestEvent(_Envelope):
    event_type: Literal["MODEL_REQUEST"]
    payload: ModelRequestPayload


@with_config(_EVENT)
class ModelResponseEvent(_Envelope):
    event_type: Literal["MODEL_RESPONSE"]
    payload: ModelResponsePayload


@with_config(_EVENT)
class ToolCallEvent(_Envelope):
    event_type: Literal["TOOL_CALL"]
    payload: ToolCallPayload


@with_config(_EVENT)
class ToolResultEvent(_Envelope):
    event_type: Literal["TOOL_RESULT"]
    payload: ToolResultPayload


@with_config(_EVENT)
class AgentStateSnapshotEvent(_Envelope):
    event_type: Literal["AGENT_STATE_SNAPSHOT"]
    payload: AgentStateSnapshotPayload


@with_config(_EVENT)
class DecisionTraceEvent(_Envelope):
    event_type: Literal["DECISION_TRACE"]
    payload: DecisionTracePayload


@with_config(_EVENT)
class ErrorEvent(_Envelope):
    event_type: Literal["ERROR"]
    payload: ErrorPayload


@with_config(_EVENT)
class AnnotationEvent(_Envelope):
    event_type: Literal["ANNOTATION"]
    payload: AnnotationPayload


@with_config(_EVENT)
class LogDropEvent(_Envelope):
    event_type: Literal["LOG_DROP"]
    payload: LogDropPayload


ClientEvent = Annotated[
    SessionStartEvent
    | SessionEndEvent
    | ModelRequestEvent
    | ModelResponseEvent
    | ToolCallEvent
    | ToolResultEvent
    | AgentStateSnapshotEvent
    | DecisionTraceEvent
    | ErrorEvent
    | AnnotationEvent
    | LogDropEvent,
    Discriminator("event_type"),
]
# One validator call for the whole batch (the hot path): pydantic-core walks the list in Rust.
_BATCH = TypeAdapter(list[ClientEvent])


@dataclass(frozen=True)
class ValidatedBatch:
    session_id: str
    events: Sequence[dict[str, Any]]  # the parsed client events, valid, in batch order (defaults not applied)
    payloads: Sequence[bytes]  # the canonical bytes (RFC 8785) of each event's payload, as the service hashes it
    first_sequence: int
    ends_session: bool

    @property
    def last_sequence(self) -> int:
        return self.first_sequence + len(self.events) - 1


def is_canonical_uuid(value: str) -> bool:
    try:
        _UUID_CHECK.validate_python(value)
    except ValidationError:
        return False
    return True


def validate_batch(body: bytes | str, path_session_id: str) -> ValidatedBatch:
    """Parse and check a request body; raise ``ApiError`` with the first problem in the precedence above."""
    if not is_canonical_uuid(path_session_id):
        raise ApiError(
            "SESSION_ID_MISMATCH",
            "The session id in the path is not a UUID in canonical lowercase form.",
            {"field": "session_id", "value": path_session_id},
        )
    try:
        # The nesting depth is bounded more cheaply below (_canonical_payloads); every other I-JSON rule holds here.
        document, exact_canonical = loads_for_hashing(body, caller_bounds_depth=True)
    except MalformedJSONError as exc:
        raise _invalid_json(exc) from exc
    try:
        return _checked_batch(document, exact_canonical, path_session_id)
    except ApiError:
        _check_nesting(document)  # a body nested too deep is INVALID_JSON, whatever else is wrong with it
        raise


def _checked_batch(document: Any, exact_canonical: bool, path_session_id: str) -> ValidatedBatch:
    events = _events_of(document)
    _reject_authority_fields(events)
    _reject_event_types(events)
    try:
        _BATCH.validate_python(events)
    except ValidationError as exc:
        errors = [_describe(error) for error in exc.errors(include_url=False, include_context=False)]
        raise ApiError(
            "VALIDATION_ERROR", f"{len(errors)} problem(s) in the batch; see details.errors.", {"errors": errors}
        ) from exc
    _check_session_ids(events, path_session_id)
    _check_contiguous(events)
    _check_first_event(events)
    _check_order(events)
    _check_unique_ids(events)
    return ValidatedBatch(
        session_id=path_session_id,
        events=events,
        payloads=_canonical_payloads(document, events, exact_canonical),
        first_sequence=events[0]["sequence_number"],
        ends_session=any(event["event_type"] == "SESSION_END" for event in events),
    )


# ELS section 2: nothing nests deeper than 64 levels. Once the events are valid, every envelope value is a scalar
# and each payload sits at level 3 ({"events": [{"payload": ...}]}). A payload nests no deeper than the brackets in
# its canonical form, so only a payload with more than 61 of them needs the walk of the whole body.
_PAYLOAD_LEVEL = 3
_BRACKETS_WITHOUT_WALK = MAX_DEPTH - _PAYLOAD_LEVEL


def _canonical_payloads(document: Any, events: list[Any], exact_canonical: bool) -> tuple[bytes, ...]:
    payloads = []
    bounded = True
    try:
        for event in events:
            payload = canonical_bytes(event["payload"], exact=exact_canonical)
            if payload.count(b"{") + payload.count(b"[") > _BRACKETS_WITHOUT_WALK:
                bounded = False
            payloads.append(payload)
    except MalformedJSONError as exc:  # deeper than the interpreter's recursion limit
        raise _invalid_json(exc) from exc
    if not bounded:
        _check_nesting(document)
    return tuple(payloads)


def _check_nesting(document: Any) -> None:
    try:
        check_depth(document)
    except MalformedJSONError as exc:
        raise _invalid_json(exc) from exc


def _invalid_json(exc: MalformedJSONError) -> ApiError:
    return ApiError("INVALID_JSON", "The body is not valid I-JSON.", {"problem": str(exc)})


REDACTED = "[REDACTED]"
REDACTED_JSON = b'"[REDACTED]"'  # how the marker appears in canonical bytes (JCS escapes none of its characters)


def unbacked_redaction(payload: dict[str, Any]) -> str | None:
    """ELS section 3: the path of the first "[REDACTED]" value without a string ``<key>_hash`` sibling, or None.
    The verifier fails such an event (REDACTION_INTEGRITY), so accepting it would make the session unsealable.
    A redacted array element has no key, hence no sibling: it is always unbacked."""
    stack: list[tuple[Any, str]] = [(payload, "payload")]
    while stack:
        node, path = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in children:
            child_path = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
            if isinstance(value, str) and value == REDACTED:
                if isinstance(key, int) or not isinstance(node.get(f"{key}_hash"), str):
                    return child_path
            elif isinstance(value, dict | list):
                stack.append((value, child_path))
    return None


def _events_of(document: Any) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise _validation_error(None, "events", "the body must be an object with an array 'events'")
    unknown = sorted(set(document) - {"events"})
    if unknown:
        raise _validation_error(None, unknown[0], "unknown field")
    events: list[Any] = document["events"]
    if not events:
        raise ApiError("EMPTY_BATCH", "The batch holds no events.")
    if len(events) > MAX_BATCH_EVENTS:
        raise ApiError(
            "BATCH_TOO_LARGE",
            f"The batch holds {len(events)} events; the limit is {MAX_BATCH_EVENTS}.",
            {"limit": MAX_BATCH_EVENTS, "count": len(events)},
        )
    return events


def _reject_authority_fields(events: list[Any]) -> None:
    for index, event in enumerate(events):
        if isinstance(event, dict):
            claimed = AUTHORITY_FIELDS.intersection(event)
            if claimed:
                field = sorted(claimed)[0]
                raise ApiError(
                    "AUTHORITY_FIELD_REJECTED",
                    f"Event {index} sets {field}; only the service computes chain fields.",
                    {"event_index": index, "field": field},
                )


def _reject_event_types(events: list[Any]) -> None:
    for index, event in enumerate(events):
        # Only a string can name a type; anything else (a list is not even hashable) is a VALIDATION_ERROR later.
        if (
            isinstance(event, dict)
            and isinstance(event.get("event_type"), str)
            and event["event_type"] in (SERVER_ONLY_EVENT_TYPES)
        ):
            raise ApiError(
                "SERVER_ONLY_EVENT_TYPE",
                f"Event {index} is a {event['event_type']}; only the service appends it.",
                {"event_index": index, "field": "event_type", "value": event["event_type"]},
            )
    for index, event in enumerate(events):
        if isinstance(event, dict):
            event_type = event.get("event_type")
            if isinstance(event_type, str) and event_type not in CLIENT_EVENT_TYPES:
                raise ApiError(
                    "UNKNOWN_EVENT_TYPE",
                    f"Event {index} has an event type outside ELS section 3.",
                    {"event_index": index, "field": "event_type", "value": event_type},
                )


def _describe(error: Any) -> dict[str, Any]:
    location = list(error["loc"])
    event_index = location.pop(0) if location and isinstance(location[0], int) else None
    if location and location[0] in CLIENT_EVENT_TYPES:
        location.pop(0)  # the union tag pydantic inserts; not a field of the event
    field = ""
    for part in location:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    kind = error["type"]
    if kind in {"union_tag_not_found", "union_tag_invalid"}:
        field, problem = "event_type", "missing or not a string"
    elif kind == "extra_forbidden":
        problem = "unknown field"
    elif kind in {"model_type", "model_attributes_type", "dict_type"} and not field:
        problem = "an event must be a JSON object"
    else:
        problem = error["msg"]
    return {"event_index": event_index, "field": field or "event", "problem": problem}


def _validation_error(event_index: int | None, field: str, problem: str) -> ApiError:
    return ApiError(
        "VALIDATION_ERROR",
        f"{field}: {problem}.",
        {"errors": [{"event_index": event_index, "field": field, "problem": problem}]},
    )


def _check_session_ids(events: list[Any], path_session_id: str) -> None:
    for index, event in enumerate(events):
        session_id = event.get("session_id")
        if session_id is not None and session_id != path_session_id:
            raise ApiError(
                "SESSION_ID_MISMATCH",
                f"Event {index} names another session than the path.",
                {"event_index": index, "field": "session_id", "value": session_id},
            )


def _check_contiguous(events: list[Any]) -> None:
    first = events[0]["sequence_number"]
    for index, event in enumerate(events):
        if event["sequence_number"] != first + index:
            raise ApiError(
                "NON_CONTIGUOUS_BATCH",
                f"Event {index} has sequence number {event['sequence_number']}; expected {first + index}.",
                {"event_index": index, "field": "sequence_number", "expected": first + index},
            )


def _check_first_event(events: list[Any]) -> None:
    # ELS section 3: sequence 0 is SESSION_START, and there is no other SESSION_START.
    for index, event in enumerate(events):
        if (event["sequence_number"] == 0) != (event["event_type"] == "SESSION_START"):
            raise ApiError(
                "INVALID_FIRST_EVENT",
                "A session starts at sequence 0 with SESSION_START, and SESSION_START appears nowhere else.",
                {"event_index": index, "field": "event_type", "sequence_number": event["sequence_number"]},
            )


def _check_order(events: list[Any]) -> None:
    for index, event in enumerate(events[:-1]):
        if event["event_type"] == "SESSION_END":
            raise ApiError(
                "ORDER_VIOLATION",
                f"Event {index + 1} follows SESSION_END; nothing but the seal may follow it.",
                {"event_index": index + 1, "field": "event_type"},
            )


def _check_unique_ids(events: list[Any]) -> None:
    seen: dict[str, int] = {}
    for index, event in enumerate(events):
        first = seen.setdefault(event["event_id"], index)
        if first != index:
            raise ApiError(
                "DUPLICATE_EVENT_ID",
                f"Events {first} and {index} share an event id.",
                {"event_index": index, "field": "event_id", "value": event["event_id"], "first_index": first},
            )
