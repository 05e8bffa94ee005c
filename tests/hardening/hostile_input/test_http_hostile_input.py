"""Hostile requests over real HTTP against the local stack: each gets its exact 4xx and error code, never a 5xx,
always the API.md error body, and the session it aimed at is unchanged afterwards (API.md: "A 4xx writes nothing").

Every request targets one open session whose next sequence number is 2, so an accidental acceptance would also show
up as a moved head.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from agentops_server.errors import STATUS_BY_CODE

from infra.api_client import ApiClient, ApiResponse
from infra.launcher import LocalStackHandle
from tests.hardening.client_events import body, client_event, opening

NEXT = 2
_same_id = str(uuid.uuid4())
MIB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    session_id: str
    stored_event_ids: tuple[str, ...]

    @property
    def events_path(self) -> str:
        return f"/v1/sessions/{self.session_id}/events"


@dataclass(frozen=True)
class Hostile:
    name: str
    body: Callable[[Target], bytes]
    status: int
    code: str
    content_type: str | None = "application/json"
    path: Callable[[Target], str] = lambda t: t.events_path
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)


def one(event: dict[str, Any], **top_level: Any) -> bytes:
    return body([event], **top_level)


def event_bytes_with(raw_member: bytes) -> bytes:
    """A next event whose payload gets ``raw_member`` (JSON text no encoder would produce) spliced in."""
    encoded = one(client_event(NEXT))
    return encoded.replace(b'"model": "m-1"', b'"model": "m-1", ' + raw_member, 1)


def nested(depth: int) -> bytes:
    return event_bytes_with(b'"deep": ' + b"[" * depth + b"]" * depth)


def without(name: str) -> bytes:
    event = client_event(NEXT)
    del event[name]
    return one(event)


HOSTILE: list[Hostile] = [
    # --- not JSON, not I-JSON ----------------------------------------------------------------------------
    Hostile("empty_body", lambda t: b"", 400, "INVALID_JSON"),
    Hostile("truncated_json", lambda t: one(client_event(NEXT))[:-7], 400, "INVALID_JSON"),
    Hostile("trailing_garbage", lambda t: one(client_event(NEXT)) + b" {}", 400, "INVALID_JSON"),
    Hostile(
        "invalid_utf8",
        lambda t: one(client_event(NEXT, payload={"model": "\u00e9"})).replace(b"\\u00e9", b"\xc3("),
        400,
        "INVALID_JSON",
    ),
    Hostile("utf16_with_bom", lambda t: one(client_event(NEXT)).decode().encode("utf-16"), 400, "INVALID_JSON"),
    Hostile("utf8_bom", lambda t: b"\xef\xbb\xbf" + one(client_event(NEXT)), 400, "INVALID_JSON"),
    Hostile("raw_control_character_in_string", lambda t: event_bytes_with(b'"x": "a\x01b"'), 400, "INVALID_JSON"),
    Hostile("lone_high_surrogate", lambda t: event_bytes_with(b'"x": "\\ud800"'), 400, "INVALID_JSON"),
    Hostile("lone_low_surrogate_in_key", lambda t: event_bytes_with(b'"\\udc00": 1'), 400, "INVALID_JSON"),
    Hostile("lone_surrogate_in_upper_case_escape", lambda t: event_bytes_with(b'"x": "\\uDBFF"'), 400, "INVALID_JSON"),
    Hostile(
        "high_surrogate_before_a_plain_escape",
        lambda t: event_bytes_with(b'"x": "\\ud83d\\u0041"'),
        400,
        "INVALID_JSON",
    ),
    Hostile("surrogate_pair_reversed", lambda t: event_bytes_with(b'"x": "\\ude00\\ud83d"'), 400, "INVALID_JSON"),
    Hostile("nan", lambda t: event_bytes_with(b'"x": NaN'), 400, "INVALID_JSON"),
    Hostile("infinity", lambda t: event_bytes_with(b'"x": -Infinity'), 400, "INVALID_JSON"),
    Hostile("number_overflowing_a_double", lambda t: event_bytes_with(b'"x": 1e400'), 400, "INVALID_JSON"),
    Hostile("integer_beyond_2_pow_53", lambda t: event_bytes_with(b'"x": 9007199254740992'), 400, "INVALID_JSON"),
    Hostile(
        "huge_sequence_number",
        lambda t: one(client_event(NEXT)).replace(b'"sequence_number": 2', b'"sequence_number": ' + b"9" * 400),
        400,
        "INVALID_JSON",
    ),
    Hostile("duplicate_key_in_payload", lambda t: event_bytes_with(b'"model": "other"'), 400, "INVALID_JSON"),
    Hostile(
        "duplicate_events_key",
        lambda t: b'{"events": [], "events": ' + json.dumps([client_event(NEXT)]).encode() + b"}",
        400,
        "INVALID_JSON",
    ),
    Hostile("nesting_65_deep", lambda t: nested(64), 400, "INVALID_JSON"),
    Hostile("nesting_100000_deep", lambda t: nested(100_000), 400, "INVALID_JSON"),
    Hostile(
        "nesting_65_deep_around_an_escaped_emoji",
        lambda t: event_bytes_with(b'"deep": ' + b"[" * 64 + b'"\\ud83d\\ude00"' + b"]" * 64),
        400,
        "INVALID_JSON",
    ),
    Hostile(
        "gzip_body_declared_as_json",
        lambda t: gzip.compress(one(client_event(NEXT))),
        400,
        "INVALID_JSON",
        headers={"Content-Encoding": "gzip"},
    ),
    # --- wrong shapes and types -----------------------------------------------------------------------------
    Hostile("json_scalar", lambda t: b"42", 400, "VALIDATION_ERROR"),
    Hostile("bare_array_of_events", lambda t: json.dumps([client_event(NEXT)]).encode(), 400, "VALIDATION_ERROR"),
    Hostile("events_is_an_object", lambda t: b'{"events": {"0": {}}}', 400, "VALIDATION_ERROR"),
    Hostile("unknown_top_level_field", lambda t: one(client_event(NEXT), dry_run=True), 400, "VALIDATION_ERROR"),
    Hostile("event_is_a_string", lambda t: body(["event"]), 400, "VALIDATION_ERROR"),  # type: ignore[list-item]
    Hostile("unknown_envelope_field", lambda t: one(client_event(NEXT, approved=True)), 400, "VALIDATION_ERROR"),
    Hostile("missing_event_id", lambda t: without("event_id"), 400, "VALIDATION_ERROR"),
    Hostile("missing_timestamp", lambda t: without("timestamp_wall"), 400, "VALIDATION_ERROR"),
    Hostile("missing_payload", lambda t: without("payload"), 400, "VALIDATION_ERROR"),
    Hostile("missing_event_type", lambda t: without("event_type"), 400, "VALIDATION_ERROR"),
    Hostile(
        "sequence_number_as_string", lambda t: one(client_event(NEXT, sequence_number="2")), 400, "VALIDATION_ERROR"
    ),
    Hostile(
        "sequence_number_as_float", lambda t: one(client_event(NEXT, sequence_number=2.0)), 400, "VALIDATION_ERROR"
    ),
    Hostile(
        "sequence_number_as_boolean", lambda t: one(client_event(NEXT, sequence_number=True)), 400, "VALIDATION_ERROR"
    ),
    Hostile("negative_sequence_number", lambda t: one(client_event(NEXT, sequence_number=-1)), 400, "VALIDATION_ERROR"),
    Hostile(
        "uppercase_event_id",
        lambda t: one(client_event(NEXT, event_id=str(uuid.uuid4()).upper())),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile(
        "event_id_not_a_uuid", lambda t: one(client_event(NEXT, event_id="../../etc/passwd")), 400, "VALIDATION_ERROR"
    ),
    Hostile(
        "timestamp_with_offset",
        lambda t: one(client_event(NEXT, timestamp_wall="2026-01-01T12:00:00+02:00")),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile(
        "impossible_date",
        lambda t: one(client_event(NEXT, timestamp_wall="2026-02-30T12:00:00Z")),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile("payload_is_an_array", lambda t: one(client_event(NEXT, payload=[1])), 400, "VALIDATION_ERROR"),
    Hostile("payload_is_null", lambda t: one(client_event(NEXT, payload=None)), 400, "VALIDATION_ERROR"),
    Hostile(
        "required_payload_key_missing",
        lambda t: one(client_event(NEXT, payload={"messages": []})),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile("event_type_is_a_number", lambda t: one({**client_event(NEXT), "event_type": 7}), 400, "VALIDATION_ERROR"),
    Hostile(
        "event_type_is_an_array",
        lambda t: one({**client_event(NEXT), "event_type": ["MODEL_REQUEST"]}),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile(
        "event_type_is_an_object", lambda t: one({**client_event(NEXT), "event_type": {}}), 400, "VALIDATION_ERROR"
    ),
    Hostile("legacy_schema_version", lambda t: one(client_event(NEXT, schema_ver="v0.5")), 400, "VALIDATION_ERROR"),
    Hostile(
        "optional_field_set_to_null", lambda t: one(client_event(NEXT, source_sdk_ver=None)), 400, "VALIDATION_ERROR"
    ),
    Hostile(
        "log_drop_of_zero_events",
        lambda t: one(
            client_event(
                NEXT,
                "LOG_DROP",
                payload={"dropped_count": 0, "cumulative_drops": 0, "drop_reason": "BUFFER_FULL"},
            )
        ),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile(
        "redacted_value_without_its_hash",
        lambda t: one(client_event(NEXT, payload={"model": "m-1", "messages": "[REDACTED]"})),
        400,
        "VALIDATION_ERROR",
    ),
    Hostile(
        "redacted_array_element",
        lambda t: one(client_event(NEXT, payload={"model": "m-1", "messages": ["hi", "[REDACTED]"]})),
        400,
        "VALIDATION_ERROR",
    ),
    # --- client-supplied chain, authority and server-only content ------------------------------------------
    Hostile(
        "client_event_hash", lambda t: one(client_event(NEXT, event_hash="0" * 64)), 400, "AUTHORITY_FIELD_REJECTED"
    ),
    Hostile(
        "client_prev_event_hash",
        lambda t: one(client_event(NEXT, prev_event_hash=None)),
        400,
        "AUTHORITY_FIELD_REJECTED",
    ),
    Hostile(
        "client_chain_authority",
        lambda t: one(client_event(NEXT, chain_authority="server")),
        400,
        "AUTHORITY_FIELD_REJECTED",
    ),
    Hostile(
        "client_authority_id", lambda t: one(client_event(NEXT, authority_id="me")), 400, "AUTHORITY_FIELD_REJECTED"
    ),
    Hostile(
        "wrong_client_payload_hash",
        lambda t: one(client_event(NEXT, payload_hash="0" * 64)),
        400,
        "PAYLOAD_HASH_MISMATCH",
    ),
    Hostile(
        "client_chain_seal",
        lambda t: one(client_event(NEXT, "CHAIN_SEAL", payload={"signature": "AAAA"})),
        400,
        "SERVER_ONLY_EVENT_TYPE",
    ),
    Hostile("unknown_event_type", lambda t: one(client_event(NEXT, "SHELL_EXEC")), 400, "UNKNOWN_EVENT_TYPE"),
    Hostile("lowercase_event_type", lambda t: one(client_event(NEXT, "model_request")), 400, "UNKNOWN_EVENT_TYPE"),
    # --- batch and session rules --------------------------------------------------------------------------------
    Hostile("empty_batch", lambda t: body([]), 400, "EMPTY_BATCH"),
    Hostile(
        "batch_of_501_events", lambda t: body([client_event(NEXT + n) for n in range(501)]), 400, "BATCH_TOO_LARGE"
    ),
    Hostile(
        "event_for_another_session",
        lambda t: one(client_event(NEXT, session_id=str(uuid.uuid4()))),
        400,
        "SESSION_ID_MISMATCH",
    ),
    Hostile(
        "non_contiguous_batch",
        lambda t: body([client_event(NEXT), client_event(NEXT + 2)]),
        400,
        "NON_CONTIGUOUS_BATCH",
    ),
    Hostile("second_session_start", lambda t: one(client_event(NEXT, "SESSION_START")), 400, "INVALID_FIRST_EVENT"),
    Hostile(
        "event_after_session_end_in_batch",
        lambda t: body([client_event(NEXT, "SESSION_END"), client_event(NEXT + 1)]),
        400,
        "ORDER_VIOLATION",
    ),
    Hostile(
        "duplicate_event_id_in_batch",
        lambda t: body([client_event(NEXT, event_id=_same_id), client_event(NEXT + 1, event_id=_same_id)]),
        400,
        "DUPLICATE_EVENT_ID",
    ),
    Hostile(
        "event_id_reused_from_the_stored_chain",
        lambda t: one(client_event(NEXT, event_id=t.stored_event_ids[0])),
        400,
        "DUPLICATE_EVENT_ID",
    ),
    Hostile("rewriting_a_stored_sequence_number", lambda t: one(client_event(1)), 409, "SEQUENCE_CONFLICT"),
    Hostile("skipping_ahead", lambda t: one(client_event(NEXT + 5)), 409, "SEQUENCE_CONFLICT"),
    # --- size -------------------------------------------------------------------------------------------------
    Hostile(
        "body_over_one_mib",
        lambda t: one(client_event(NEXT, payload={"model": "m", "blob": "x" * MIB})),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    Hostile(
        "one_event_over_256_kib",
        lambda t: one(client_event(NEXT, payload={"model": "m", "blob": "x" * (256 * 1024)})),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    Hostile(
        "event_under_256_kib_as_sent_but_over_it_in_canonical_form",
        lambda t: event_bytes_with(b'"numbers": [' + b",".join([b"1e15"] * 20_000) + b"]"),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    # --- media type -------------------------------------------------------------------------------------------
    Hostile("no_content_type", lambda t: one(client_event(NEXT)), 415, "UNSUPPORTED_MEDIA_TYPE", content_type=None),
    Hostile("text_plain", lambda t: one(client_event(NEXT)), 415, "UNSUPPORTED_MEDIA_TYPE", content_type="text/plain"),
    Hostile(
        "form_encoded",
        lambda t: one(client_event(NEXT)),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content_type="application/x-www-form-urlencoded",
    ),
    Hostile(
        "json_in_another_charset",
        lambda t: one(client_event(NEXT)),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content_type="application/json; charset=latin-1",
    ),
    Hostile(
        "json_lookalike_media_type",
        lambda t: one(client_event(NEXT)),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content_type="application/jsonp",
    ),
    # --- path tricks ------------------------------------------------------------------------------------------
    Hostile(
        "uppercase_session_uuid",
        lambda t: one(client_event(NEXT)),
        400,
        "SESSION_ID_MISMATCH",
        path=lambda t: f"/v1/sessions/{t.session_id.upper()}/events",
    ),
    Hostile(
        "session_id_not_a_uuid",
        lambda t: one(client_event(NEXT)),
        400,
        "SESSION_ID_MISMATCH",
        path=lambda t: "/v1/sessions/not-a-session/events",
    ),
    Hostile(
        "encoded_dot_dot_slash",
        lambda t: one(client_event(NEXT)),
        400,
        "SESSION_ID_MISMATCH",
        path=lambda t: "/v1/sessions/..%2F..%2Fkeys/events",
    ),
    Hostile(
        "encoded_slash_after_the_session_id",
        lambda t: one(client_event(NEXT)),
        400,
        "SESSION_ID_MISMATCH",
        path=lambda t: f"/v1/sessions/{t.session_id}%2F..%2Fx/events",
    ),
    Hostile(
        "braces_hex_uuid",
        lambda t: one(client_event(NEXT)),
        400,
        "SESSION_ID_MISMATCH",
        path=lambda t: f"/v1/sessions/%7B{t.session_id}%7D/events",
    ),
    Hostile("trailing_slash", lambda t: one(client_event(NEXT)), 404, "NOT_FOUND", path=lambda t: t.events_path + "/"),
    Hostile(
        "extra_path_segment",
        lambda t: one(client_event(NEXT)),
        404,
        "NOT_FOUND",
        path=lambda t: f"/v1/sessions/{t.session_id}/events/0",
    ),
    Hostile("put_instead_of_post", lambda t: one(client_event(NEXT)), 404, "NOT_FOUND", method="PUT"),
    Hostile(
        "delete_the_session",
        lambda t: b"",
        404,
        "NOT_FOUND",
        method="DELETE",
        path=lambda t: f"/v1/sessions/{t.session_id}",
    ),
]


@pytest.fixture(scope="module")
def agent(local_stack: LocalStackHandle) -> ApiClient:
    return ApiClient(local_stack.base_url, access_key_id=f"AKIDHOSTILE{uuid.uuid4().hex[:9].upper()}")


@pytest.fixture(scope="module")
def target(agent: ApiClient) -> Target:
    session_id = str(uuid.uuid4())
    events = opening(extra=1)
    response = agent.post(f"/v1/sessions/{session_id}/events", {"events": events})
    assert response.status == 200, response.body
    return Target(session_id, tuple(event["event_id"] for event in events))


def assert_error_body(response: ApiResponse, status: int, code: str) -> None:
    assert (response.status, response.error_code) == (status, code), response.body[:400]
    document = response.json()
    assert set(document) == {"error"}
    error = document["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    assert STATUS_BY_CODE[code] == status
    assert response.headers.get("Content-Type", response.headers.get("content-type", "")).startswith("application/json")


def session_state(agent: ApiClient, target: Target) -> dict[str, Any]:
    response = agent.get(f"/v1/sessions/{target.session_id}")
    assert response.status == 200
    state: dict[str, Any] = response.json()
    return state


def test_there_are_many_distinct_hostile_requests() -> None:
    assert len({case.name for case in HOSTILE}) == len(HOSTILE) >= 70


@pytest.mark.parametrize("case", HOSTILE, ids=lambda case: case.name)
def test_hostile_request_gets_its_4xx_and_changes_nothing(case: Hostile, agent: ApiClient, target: Target) -> None:
    before = session_state(agent, target)
    response = agent.request(
        case.method, case.path(target), body=case.body(target), content_type=case.content_type, headers=case.headers
    )
    assert_error_body(response, case.status, case.code)
    assert session_state(agent, target) == before
    assert before["next_sequence_number"] == NEXT


@pytest.mark.parametrize(
    "events",
    [
        [client_event(3)],
        [client_event(1, "SESSION_START")],
        [client_event(0, "MODEL_REQUEST")],
    ],
    ids=["ordinary_event_at_3", "session_start_at_1", "ordinary_event_at_0"],
)
def test_a_new_session_opens_only_at_0_with_session_start_and_nothing_is_created(
    events: list[dict[str, Any]], agent: ApiClient
) -> None:
    session_id = str(uuid.uuid4())
    response = agent.post(f"/v1/sessions/{session_id}/events", {"events": events})
    assert_error_body(response, 400, "INVALID_FIRST_EVENT")
    missing = agent.get(f"/v1/sessions/{session_id}")
    assert (missing.status, missing.error_code) == (404, "SESSION_NOT_FOUND")


def test_the_target_session_still_accepts_its_next_event_afterwards(agent: ApiClient, target: Target) -> None:
    """Runs last in this file: after every hostile request, sequence 2 is still free and chains onto sequence 1."""
    response = agent.post(target.events_path, {"events": [client_event(NEXT)]})
    assert response.status == 200, response.body
    assert response.json()["head"]["next_sequence_number"] == NEXT + 1
