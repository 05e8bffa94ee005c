"""POST /v1/sessions/{id}/events, GET /v1/sessions/{id} and GET /v1/health over real HTTP against the local stack.

Every row of API.md's error table for these routes is exercised; every rejection also checks that the session's
stored items did not change ("a 4xx writes nothing").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.api_client import ApiClient, ApiResponse
from infra.launcher import LocalStackHandle
from tests.integration.ingest.builders import (
    batch_body,
    event,
    expected_hashes,
    new_session_id,
    opening_batch,
)
from tests.integration.ingest.storage import stored_items, table_item_count

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def events_path(session_id: str) -> str:
    return f"/v1/sessions/{session_id}/events"


def post_events(api: ApiClient, session_id: str, events: list[dict[str, Any]]) -> ApiResponse:
    return api.post(events_path(session_id), batch_body(events))


def post_raw(api: ApiClient, session_id: str, body: bytes, content_type: str = "application/json") -> ApiResponse:
    return api.request("POST", events_path(session_id), body=body, content_type=content_type)


def assert_error(response: ApiResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    document = response.json()
    assert set(document) == {"error"}
    error: dict[str, Any] = document["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


@pytest.fixture
def open_session(api: ApiClient) -> str:
    """A session of this test's principal holding SESSION_START and one MODEL_REQUEST (next sequence: 2)."""
    session_id = new_session_id()
    response = post_events(api, session_id, opening_batch(extra_events=1))
    assert response.status == 200, response.body
    return session_id


# ------------------------------------------------------------------------------------------------ health and reads


def test_health_answers_without_credentials_and_writes_nothing(local_stack: LocalStackHandle) -> None:
    items_before = table_item_count(local_stack)
    unsigned = ApiClient(local_stack.base_url, access_key_id=None)
    response = unsigned.get("/v1/health")
    assert response.status == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Content-Type"].startswith("application/json")
    assert table_item_count(local_stack) == items_before


def test_first_batch_creates_the_session_and_returns_the_server_chain(api: ApiClient) -> None:
    session_id = new_session_id()
    sent = opening_batch(extra_events=2)
    response = post_events(api, session_id, sent)
    assert response.status == 200, response.body
    body = response.json()
    hashes = expected_hashes(session_id, sent, None)
    assert body == {
        "session_id": session_id,
        "accepted": 3,
        "events": [{"sequence_number": n, "event_id": sent[n]["event_id"], "event_hash": hashes[n]} for n in range(3)],
        "head": {"next_sequence_number": 3, "last_event_hash": hashes[-1], "status": "OPEN"},
    }


def test_next_batch_links_to_the_previous_one(api: ApiClient, open_session: str) -> None:
    head = api.get(f"/v1/sessions/{open_session}").json()
    sent = [event(2, "TOOL_CALL"), event(3, "SESSION_END")]
    response = post_events(api, open_session, sent)
    assert response.status == 200, response.body
    hashes = expected_hashes(open_session, sent, head["last_event_hash"])
    assert [accepted["event_hash"] for accepted in response.json()["events"]] == hashes
    assert response.json()["head"] == {"next_sequence_number": 4, "last_event_hash": hashes[-1], "status": "ENDED"}


def test_session_view_reports_owner_status_and_head(api: ApiClient, open_session: str) -> None:
    response = api.get(f"/v1/sessions/{open_session}")
    assert response.status == 200, response.body
    view = response.json()
    assert {
        "session_id",
        "owner",
        "status",
        "event_count",
        "next_sequence_number",
        "last_event_hash",
        "started_at",
        "ended_at",
        "sealed_at",
        "evidence_class",
        "archive",
    } <= set(view)
    assert view["session_id"] == open_session
    assert api.access_key_id is not None
    assert api.access_key_id in view["owner"]
    assert (view["status"], view["event_count"], view["next_sequence_number"]) == ("OPEN", 2, 2)
    assert (view["ended_at"], view["sealed_at"], view["archive"]) == (None, None, None)


def test_unknown_session_is_not_found(api: ApiClient) -> None:
    assert_error(api.get(f"/v1/sessions/{new_session_id()}"), 404, "SESSION_NOT_FOUND")


def test_reading_a_session_requires_an_identity(api: ApiClient, open_session: str) -> None:
    assert_error(api.as_principal(None).get(f"/v1/sessions/{open_session}"), 403, "FORBIDDEN")


# ------------------------------------------------------------------------------------------------ idempotent retry


def test_resending_a_stored_batch_returns_the_same_response_and_writes_nothing(
    api: ApiClient, local_stack: LocalStackHandle
) -> None:
    session_id = new_session_id()
    body = json.dumps(batch_body(opening_batch(extra_events=3))).encode()
    first = post_raw(api, session_id, body)
    assert first.status == 200, first.body
    items = stored_items(local_stack, session_id)
    again = post_raw(api, session_id, body)
    assert again.status == 200, again.body
    assert again.json() == first.json()
    assert stored_items(local_stack, session_id) == items


# ------------------------------------------------------------------------------------------------ rejections

NEW = "new session"
EXISTING = "existing session (next sequence 2)"


@dataclass(frozen=True)
class Rejection:
    name: str
    target: str  # NEW or EXISTING
    body: Callable[[str], bytes]  # session id -> request body
    status: int
    code: str
    content_type: str = "application/json"

    def __str__(self) -> str:
        return self.name


def as_json(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(batch_body(events)).encode()


def start_with(**fields: Any) -> Callable[[str], bytes]:
    """A new session's opening batch whose SESSION_START carries ``fields``."""
    return lambda session_id: as_json([event(0, "SESSION_START", **fields), event(1)])


def opening_with(**fields: Any) -> Callable[[str], bytes]:
    """A new session's SESSION_START with ``fields`` overwritten (also with values of the wrong type)."""
    return lambda session_id: as_json([event(0, "SESSION_START") | fields])


def next_event_with(**fields: Any) -> Callable[[str], bytes]:
    """The existing session's next event (sequence 2) carrying ``fields``."""
    return lambda session_id: as_json([event(2, **fields)])


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"next": value}
    return value


def raw_start_with_payload(payload_text: str) -> Callable[[str], bytes]:
    """Body text with a hand-written payload, for inputs json.dumps cannot produce."""

    def build(session_id: str) -> bytes:
        template = json.dumps(batch_body([event(0, "SESSION_START", payload={"agent_id": "PAYLOAD"})]))
        return template.replace('{"agent_id": "PAYLOAD"}', payload_text).encode()

    return build


REJECTIONS = [
    # 400 INVALID_JSON: not JSON, or not I-JSON (ELS section 2).
    Rejection("not json", NEW, lambda s: b'{"events": [', 400, "INVALID_JSON"),
    Rejection("NaN", NEW, raw_start_with_payload('{"agent_id": "a", "score": NaN}'), 400, "INVALID_JSON"),
    Rejection("infinity", NEW, raw_start_with_payload('{"agent_id": "a", "score": Infinity}'), 400, "INVALID_JSON"),
    Rejection(
        "huge integer", NEW, raw_start_with_payload('{"agent_id": "a", "n": 9007199254740992}'), 400, "INVALID_JSON"
    ),
    Rejection("lone surrogate", NEW, raw_start_with_payload('{"agent_id": "a\\ud800"}'), 400, "INVALID_JSON"),
    Rejection("duplicate key", NEW, raw_start_with_payload('{"agent_id": "a", "agent_id": "b"}'), 400, "INVALID_JSON"),
    Rejection(
        "nesting deeper than 64",
        NEW,
        lambda s: as_json([event(0, "SESSION_START", payload={"agent_id": "a", "deep": nested(70)})]),
        400,
        "INVALID_JSON",
    ),
    # 400 VALIDATION_ERROR: missing, mistyped, malformed or unknown fields; payload lacking a required key.
    Rejection(
        "missing event_id",
        NEW,
        lambda s: as_json([{k: v for k, v in event(0, "SESSION_START").items() if k != "event_id"}]),
        400,
        "VALIDATION_ERROR",
    ),
    Rejection("sequence number as string", NEW, opening_with(sequence_number="0"), 400, "VALIDATION_ERROR"),
    Rejection(
        "sequence number as bool", NEW, lambda s: as_json([event(True, "SESSION_START")]), 400, "VALIDATION_ERROR"
    ),
    Rejection("event id not a uuid", NEW, start_with(event_id="not-a-uuid"), 400, "VALIDATION_ERROR"),
    Rejection(
        "timestamp without Z", NEW, start_with(timestamp_wall="2026-01-01T12:00:00+00:00"), 400, "VALIDATION_ERROR"
    ),
    Rejection("unknown field", NEW, start_with(colour="red"), 400, "VALIDATION_ERROR"),
    Rejection(
        "payload without required key",
        NEW,
        lambda s: as_json([event(0, "SESSION_START", payload={"environment": "dev"})]),
        400,
        "VALIDATION_ERROR",
    ),
    Rejection(
        "payload not an object",
        NEW,
        opening_with(payload=["a"]),
        400,
        "VALIDATION_ERROR",
    ),
    Rejection("events not a list", NEW, lambda s: b'{"events": {"a": 1}}', 400, "VALIDATION_ERROR"),
    # 400 type rules.
    Rejection(
        "unknown event type",
        EXISTING,
        lambda s: as_json([event(2, "MODEL_REQUEST") | {"event_type": "TELEPORT"}]),
        400,
        "UNKNOWN_EVENT_TYPE",
    ),
    Rejection(
        "client sends CHAIN_SEAL",
        EXISTING,
        lambda s: as_json([event(2, "MODEL_REQUEST") | {"event_type": "CHAIN_SEAL", "payload": {"event_count": 2}}]),
        400,
        "SERVER_ONLY_EVENT_TYPE",
    ),
    # 400 AUTHORITY_FIELD_REJECTED: the server alone computes and sets these (ELS section 4).
    *[
        Rejection(
            f"client sends {field}",
            EXISTING,
            next_event_with(**{field: value}),
            400,
            "AUTHORITY_FIELD_REJECTED",
        )
        for field, value in [
            ("prev_event_hash", "0" * 64),
            ("event_hash", "0" * 64),
            ("chain_authority", "server"),
            ("authority_id", "agentops-replay"),
        ]
    ],
    # 400 SESSION_ID_MISMATCH.
    Rejection(
        "event names another session",
        EXISTING,
        lambda s: as_json([event(2, session_id=new_session_id())]),
        400,
        "SESSION_ID_MISMATCH",
    ),
    # 400 batch shape.
    Rejection("gap inside the batch", EXISTING, lambda s: as_json([event(2), event(4)]), 400, "NON_CONTIGUOUS_BATCH"),
    Rejection(
        "new session starting at 1", NEW, lambda s: as_json([event(1, "SESSION_START")]), 400, "INVALID_FIRST_EVENT"
    ),
    Rejection(
        "new session without SESSION_START",
        NEW,
        lambda s: as_json([event(0, "MODEL_REQUEST")]),
        400,
        "INVALID_FIRST_EVENT",
    ),
    Rejection(
        "second SESSION_START", EXISTING, lambda s: as_json([event(2, "SESSION_START")]), 400, "INVALID_FIRST_EVENT"
    ),
    Rejection(
        "event after SESSION_END",
        EXISTING,
        lambda s: as_json([event(2, "SESSION_END"), event(3)]),
        400,
        "ORDER_VIOLATION",
    ),
    Rejection(
        "two SESSION_ENDs",
        EXISTING,
        lambda s: as_json([event(2, "SESSION_END"), event(3, "SESSION_END")]),
        400,
        "ORDER_VIOLATION",
    ),
    Rejection(
        "wrong payload hash",
        EXISTING,
        lambda s: as_json([event(2, payload_hash="a" * 64)]),
        400,
        "PAYLOAD_HASH_MISMATCH",
    ),
    Rejection(
        "event id twice in the batch",
        EXISTING,
        lambda s: as_json(
            [
                event(2, event_id="6f1c2d3e-4b5a-4c6d-8e7f-001122334455"),
                event(3, event_id="6f1c2d3e-4b5a-4c6d-8e7f-001122334455"),
            ]
        ),
        400,
        "DUPLICATE_EVENT_ID",
    ),
    Rejection("empty batch", EXISTING, lambda s: b'{"events": []}', 400, "EMPTY_BATCH"),
    Rejection("501 events", EXISTING, lambda s: as_json([event(n) for n in range(2, 503)]), 400, "BATCH_TOO_LARGE"),
    # 413 PAYLOAD_TOO_LARGE.
    Rejection(
        "body over 1 MiB",
        EXISTING,
        lambda s: as_json([event(n, payload={"model": "m", "prompt_hash": "x" * 2300}) for n in range(2, 502)]),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    Rejection(
        "one event over 256 KiB",
        EXISTING,
        lambda s: as_json([event(2, "MODEL_RESPONSE", payload={"model": "m", "content": "x" * (300 * 1024)})]),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    # 415 UNSUPPORTED_MEDIA_TYPE.
    Rejection("text/plain body", EXISTING, lambda s: as_json([event(2)]), 415, "UNSUPPORTED_MEDIA_TYPE", "text/plain"),
    Rejection(
        "form body",
        EXISTING,
        lambda s: as_json([event(2)]),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "application/x-www-form-urlencoded",
    ),
    # 409 on the session's state.
    Rejection("batch ahead of the head", EXISTING, lambda s: as_json([event(5)]), 409, "SEQUENCE_CONFLICT"),
    Rejection(
        "batch behind the head with new content", EXISTING, lambda s: as_json([event(1)]), 409, "SEQUENCE_CONFLICT"
    ),
]


@pytest.mark.parametrize("case", REJECTIONS, ids=str)
def test_rejected_batch_gets_its_error_code_and_writes_nothing(
    case: Rejection, api: ApiClient, local_stack: LocalStackHandle
) -> None:
    if case.target == NEW:
        session_id = new_session_id()
    else:
        session_id = new_session_id()
        assert post_events(api, session_id, opening_batch(extra_events=1)).status == 200
    items_before = stored_items(local_stack, session_id)
    head_before = api.get(f"/v1/sessions/{session_id}")

    response = post_raw(api, session_id, case.body(session_id), content_type=case.content_type)

    error = assert_error(response, case.status, case.code)
    assert stored_items(local_stack, session_id) == items_before
    head_after = api.get(f"/v1/sessions/{session_id}")
    assert (head_after.status, head_after.body) == (head_before.status, head_before.body)
    if case.code == "SEQUENCE_CONFLICT":
        assert error["details"]["head"]["next_sequence_number"] == 2
        assert error["details"]["head"]["last_event_hash"] == head_before.json()["last_event_hash"]


def test_validation_errors_say_which_event_and_field(api: ApiClient) -> None:
    sent = [event(0, "SESSION_START"), event(1, "TOOL_CALL", payload={"args": {}})]
    error = assert_error(post_events(api, new_session_id(), sent), 400, "VALIDATION_ERROR")
    problems = error["details"]["errors"]
    assert problems
    assert all(set(problem) >= {"event_index", "field", "problem"} for problem in problems)
    assert any(problem["event_index"] == 1 and "tool_name" in problem["field"] for problem in problems)


def test_path_that_is_not_a_uuid_is_rejected(api: ApiClient) -> None:
    response = post_events(api, "not-a-session-id", opening_batch())
    assert_error(response, 400, "SESSION_ID_MISMATCH")


def test_event_id_reused_from_an_earlier_batch_is_rejected(
    api: ApiClient, open_session: str, local_stack: LocalStackHandle
) -> None:
    reused = new_session_id()
    assert post_events(api, open_session, [event(2, event_id=reused)]).status == 200
    items = stored_items(local_stack, open_session)
    response = post_events(api, open_session, [event(3, event_id=reused)])
    assert_error(response, 400, "DUPLICATE_EVENT_ID")
    assert stored_items(local_stack, open_session) == items


def test_ended_session_refuses_appends(api: ApiClient, open_session: str, local_stack: LocalStackHandle) -> None:
    assert post_events(api, open_session, [event(2, "SESSION_END")]).status == 200
    items = stored_items(local_stack, open_session)
    assert_error(post_events(api, open_session, [event(3)]), 409, "SESSION_ENDED")
    assert stored_items(local_stack, open_session) == items


# ------------------------------------------------------------------------------------------------ identity


def test_request_without_identity_is_forbidden_and_writes_nothing(
    api: ApiClient, local_stack: LocalStackHandle
) -> None:
    session_id = new_session_id()
    response = post_events(api.as_principal(None), session_id, opening_batch())
    assert_error(response, 403, "FORBIDDEN")
    assert stored_items(local_stack, session_id) == []
    assert_error(api.get(f"/v1/sessions/{session_id}"), 404, "SESSION_NOT_FOUND")


def test_another_principal_cannot_append_to_a_session(
    api: ApiClient, open_session: str, local_stack: LocalStackHandle
) -> None:
    items = stored_items(local_stack, open_session)
    intruder = api.as_principal("AKIDINTRUDER00000001")
    assert_error(post_events(intruder, open_session, [event(2)]), 403, "FORBIDDEN")
    assert stored_items(local_stack, open_session) == items
    # The owner is unaffected and carries on at the same sequence number.
    assert post_events(api, open_session, [event(2)]).status == 200
