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
from typing import Any

from agentops_verify import (
    CHAIN_FIELDS,
    CHAIN_SEAL,
    MAX_DEPTH,
    OPTIONAL_FIELDS,
    PRODUCER_EVENT_TYPES,
    SESSION_END,
    SESSION_START,
    HashableDocument,
    MalformedJSONError,
    check_depth,
    is_canonical_uuid,
    parse_for_hashing,
)
from pydantic import ValidationError

from agentops_server.errors import ApiError
from agentops_server.event_schema import BATCH
from agentops_server.limits import MAX_BATCH_EVENTS

# is_canonical_uuid is the verifier's (ELS section 1), named here too for the callers that check a path's session id.
__all__ = [
    "AUTHORITY_FIELDS",
    "CLIENT_EVENT_TYPES",
    "SERVER_ONLY_EVENT_TYPES",
    "ValidatedBatch",
    "is_canonical_uuid",
    "validate_batch",
]

# ELS section 4: fields only the chain authority sets. A client may send ``payload_hash`` (API.md: an optional
# end-to-end check the service compares with its own), so it is not among them.
AUTHORITY_FIELDS = frozenset(CHAIN_FIELDS + OPTIONAL_FIELDS) - {"payload_hash"}
SERVER_ONLY_EVENT_TYPES = frozenset({CHAIN_SEAL})
CLIENT_EVENT_TYPES = frozenset(PRODUCER_EVENT_TYPES)


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
        parsed = parse_for_hashing(body, caller_bounds_depth=True)
    except MalformedJSONError as exc:
        raise _invalid_json(exc) from exc
    try:
        return _checked_batch(parsed, path_session_id)
    except ApiError:
        _check_nesting(parsed.value)  # a body nested too deep is INVALID_JSON, whatever else is wrong with it
        raise


def _checked_batch(parsed: HashableDocument, path_session_id: str) -> ValidatedBatch:
    events = _events_of(parsed.value)
    _reject_authority_fields(events)
    _reject_event_types(events)
    try:
        BATCH.validate_python(events)
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
        payloads=_canonical_payloads(parsed, events),
        first_sequence=events[0]["sequence_number"],
        ends_session=any(event["event_type"] == SESSION_END for event in events),
    )


# ELS section 2: nothing nests deeper than 64 levels. Once the events are valid, every envelope value is a scalar
# and each payload sits at level 3 ({"events": [{"payload": ...}]}). A payload nests no deeper than the brackets in
# its canonical form, so only a payload with more than 61 of them needs the walk of the whole body.
_PAYLOAD_LEVEL = 3
_BRACKETS_WITHOUT_WALK = MAX_DEPTH - _PAYLOAD_LEVEL


def _canonical_payloads(parsed: HashableDocument, events: list[Any]) -> tuple[bytes, ...]:
    try:
        # Valid events hold floats in their payloads only: every other envelope value is a string or an integer.
        payloads = parsed.canonical_parts([event["payload"] for event in events])
    except MalformedJSONError as exc:  # deeper than the interpreter's recursion limit
        raise _invalid_json(exc) from exc
    if any(payload.count(b"{") + payload.count(b"[") > _BRACKETS_WITHOUT_WALK for payload in payloads):
        _check_nesting(parsed.value)
    return tuple(payloads)


def _check_nesting(document: Any) -> None:
    try:
        check_depth(document)
    except MalformedJSONError as exc:
        raise _invalid_json(exc) from exc


def _invalid_json(exc: MalformedJSONError) -> ApiError:
    return ApiError("INVALID_JSON", "The body is not valid I-JSON.", {"problem": str(exc)})


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
            and event["event_type"] in SERVER_ONLY_EVENT_TYPES
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
        if (event["sequence_number"] == 0) != (event["event_type"] == SESSION_START):
            raise ApiError(
                "INVALID_FIRST_EVENT",
                "A session starts at sequence 0 with SESSION_START, and SESSION_START appears nowhere else.",
                {"event_index": index, "field": "event_type", "sequence_number": event["sequence_number"]},
            )


def _check_order(events: list[Any]) -> None:
    for index, event in enumerate(events[:-1]):
        if event["event_type"] == SESSION_END:
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
