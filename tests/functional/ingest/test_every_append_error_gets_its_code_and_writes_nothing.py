"""Every error of API.md's POST /events table, through the handler over moto: the status, the code, and nothing
written (the table is compared item for item before and after)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from agentops_server.store import StoredBatch
from botocore.exceptions import ClientError

from tests.functional.ingest.conftest import INTRUDER, NO_CALLER, Api, Response, table_items
from tests.functional.ingest.events import batch, event, new_session_id


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    code: str
    send: Callable[[Api, str], Response]  # (api, open session id with events 0..1) -> response


def _post(events: list[dict[str, Any]], **options: Any) -> Callable[[Api, str], Response]:
    return lambda api, session_id: api.post_events(session_id, events, **options)


def _raw(body: str | bytes, **options: Any) -> Callable[[Api, str], Response]:
    return lambda api, session_id: api.call("POST", f"/v1/sessions/{session_id}/events", body=body, **options)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def _with_payload(sequence: int, **payload: Any) -> dict[str, Any]:
    built = event(sequence)
    built["payload"] = {**built["payload"], **payload}
    return built


REUSED_IN_BATCH = event(2)

CASES = [
    Case("not json", 400, "INVALID_JSON", _raw("{not json")),
    Case("NaN", 400, "INVALID_JSON", _raw(json.dumps({"events": [_with_payload(2, score=float("nan"))]}))),
    Case("integer beyond 2**53-1", 400, "INVALID_JSON", _raw(json.dumps({"events": [_with_payload(2, n=2**53)]}))),
    Case(
        "lone surrogate",
        400,
        "INVALID_JSON",
        _raw(json.dumps({"events": [_with_payload(2, text="\ud800")]}, ensure_ascii=True)),
    ),
    Case(
        "duplicate key",
        400,
        "INVALID_JSON",
        _raw(json.dumps({"events": [event(2)]})[:-2] + ',"event_type":"ERROR"}]}'),
    ),
    Case(
        "nesting deeper than 64",
        400,
        "INVALID_JSON",
        _raw(json.dumps({"events": [_with_payload(2, deep=_nested(64))]})),
    ),
    Case("sequence number as a string", 400, "VALIDATION_ERROR", _post([event(2, sequence_number="2")])),
    Case("sequence number as true", 400, "VALIDATION_ERROR", _post([event(1, sequence_number=True)])),
    Case(
        "sequence number as 2.0",
        400,
        "VALIDATION_ERROR",
        _raw(json.dumps({"events": [event(2)]}).replace('"sequence_number": 2', '"sequence_number": 2.0')),
    ),
    Case(
        "uppercase event id",
        400,
        "VALIDATION_ERROR",
        _post([event(2, event_id="A" * 8 + "-1111-4111-8111-111111111111")]),
    ),
    Case(
        "timestamp with offset", 400, "VALIDATION_ERROR", _post([event(2, timestamp_wall="2026-01-01T12:00:00+00:00")])
    ),
    Case("payload missing a required key", 400, "VALIDATION_ERROR", _post([event(2, payload={"args": {}})])),
    Case("unknown envelope field", 400, "VALIDATION_ERROR", _post([event(2, trace_id="abc")])),
    Case("body without events", 400, "VALIDATION_ERROR", _raw(json.dumps({"batch": []}))),
    Case(
        "log drop of zero events",
        400,
        "VALIDATION_ERROR",
        _post([event(2, "LOG_DROP", payload={"dropped_count": 0, "cumulative_drops": 0, "drop_reason": "SDK_CRASH"})]),
    ),
    Case("unknown event type", 400, "UNKNOWN_EVENT_TYPE", _post([event(2, event_type="TOOL_INVOKE")])),
    Case("client chain seal", 400, "SERVER_ONLY_EVENT_TYPE", _post([event(2, event_type="CHAIN_SEAL")])),
    Case("client event hash", 400, "AUTHORITY_FIELD_REJECTED", _post([event(2, event_hash="0" * 64)])),
    Case("client prev hash", 400, "AUTHORITY_FIELD_REJECTED", _post([event(2, prev_event_hash=None)])),
    Case("client authority", 400, "AUTHORITY_FIELD_REJECTED", _post([event(2, chain_authority="sdk")])),
    Case("client authority id", 400, "AUTHORITY_FIELD_REJECTED", _post([event(2, authority_id="me")])),
    Case("event of another session", 400, "SESSION_ID_MISMATCH", _post([event(2, session_id=new_session_id())])),
    Case(
        "path that is not a uuid",
        400,
        "SESSION_ID_MISMATCH",
        lambda api, session_id: api.post_events(session_id.upper(), [event(2)]),
    ),
    Case("gap inside the batch", 400, "NON_CONTIGUOUS_BATCH", _post([event(2), event(4)])),
    Case("second session start", 400, "INVALID_FIRST_EVENT", _post([event(2, "SESSION_START")])),
    Case(
        "new session not starting at 0",
        400,
        "INVALID_FIRST_EVENT",
        lambda api, session_id: api.post_events(new_session_id(), [event(3)]),
    ),
    Case(
        "new session starting with another type",
        400,
        "INVALID_FIRST_EVENT",
        lambda api, session_id: api.post_events(new_session_id(), [event(0, "TOOL_CALL")]),
    ),
    Case("event after the end", 400, "ORDER_VIOLATION", _post([event(2, "SESSION_END"), event(3)])),
    Case("wrong payload hash", 400, "PAYLOAD_HASH_MISMATCH", _post([event(2, payload_hash="0" * 64)])),
    Case(
        "event id twice in the batch",
        400,
        "DUPLICATE_EVENT_ID",
        _post([REUSED_IN_BATCH, {**event(3), "event_id": REUSED_IN_BATCH["event_id"]}]),
    ),
    Case("empty batch", 400, "EMPTY_BATCH", _post([])),
    Case("501 events", 400, "BATCH_TOO_LARGE", _post(batch(2, 501))),
    Case("body over 1 MiB", 413, "PAYLOAD_TOO_LARGE", _post([_with_payload(2, blob="x" * (1024 * 1024))])),
    Case("event over 256 KiB", 413, "PAYLOAD_TOO_LARGE", _post([_with_payload(2, blob="x" * (256 * 1024))])),
    Case("text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", _post([event(2)], content_type="text/plain")),
    Case("no content type", 415, "UNSUPPORTED_MEDIA_TYPE", _post([event(2)], content_type="")),
    Case(
        "latin-1 json",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        _post([event(2)], content_type="application/json; charset=latin-1"),
    ),
    Case("no caller identity", 403, "FORBIDDEN", _post([event(2)], caller=NO_CALLER)),
    Case("another principal's session", 403, "FORBIDDEN", _post([event(2)], caller=INTRUDER)),
    Case("batch beyond the head", 409, "SEQUENCE_CONFLICT", _post([event(5)])),
    Case("other events at a stored sequence", 409, "SEQUENCE_CONFLICT", _post([event(1)])),
]


@pytest.fixture
def open_session(api: Api) -> str:
    session_id = new_session_id()
    response = api.post_events(session_id, batch(0, 2))
    assert response.status == 200, response.body
    return session_id


def _assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert set(response.body) == {"error"}
    error: dict[str, Any] = response.body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_rejected_request_gets_its_code_and_writes_nothing(
    case: Case, api: Api, open_session: str, dynamodb: Any, table_name: str
) -> None:
    before = table_items(dynamodb, table_name)
    view_before = api.get_session(open_session).body
    error = _assert_error(case.send(api, open_session), case.status, case.code)
    assert table_items(dynamodb, table_name) == before
    assert api.get_session(open_session).body == view_before
    if case.status == 409:
        assert error["details"]["head"] == {
            "next_sequence_number": 2,
            "last_event_hash": view_before["last_event_hash"],
            "status": "OPEN",
        }


def test_validation_errors_name_each_event_and_field(api: Api, open_session: str) -> None:
    sent = [event(2, payload={"args": {}}), event(3, "SESSION_END", payload={"status": "done"}), event(4, extra=1)]
    error = _assert_error(api.post_events(open_session, sent), 400, "VALIDATION_ERROR")
    problems = {(problem["event_index"], problem["field"]) for problem in error["details"]["errors"]}
    assert problems == {(0, "payload.tool_name"), (1, "payload.status"), (2, "extra")}


def test_event_id_already_used_in_the_session_is_a_duplicate(
    api: Api, open_session: str, dynamodb: Any, table_name: str
) -> None:
    stored = api.post_events(open_session, [event(2)])
    assert stored.status == 200
    reused = stored.body["events"][0]["event_id"]
    before = table_items(dynamodb, table_name)
    error = _assert_error(api.post_events(open_session, [event(3, event_id=reused)]), 400, "DUPLICATE_EVENT_ID")
    assert error["details"]["event_index"] == 0
    assert table_items(dynamodb, table_name) == before


def test_ended_session_refuses_appends(api: Api, open_session: str, dynamodb: Any, table_name: str) -> None:
    assert api.post_events(open_session, [event(2, "SESSION_END")]).status == 200
    before = table_items(dynamodb, table_name)
    error = _assert_error(api.post_events(open_session, [event(3)]), 409, "SESSION_ENDED")
    assert error["details"]["head"]["status"] == "ENDED"
    assert error["details"]["head"]["next_sequence_number"] == 3
    assert table_items(dynamodb, table_name) == before


def test_sealed_session_refuses_appends(api: Api, open_session: str, dynamodb: Any, table_name: str) -> None:
    store = api.module.wiring.store
    tip = store.tip(open_session)
    assert tip is not None
    seal = StoredBatch(
        session_id=open_session,
        first_sequence=2,
        lines=(b'{"event_hash":"' + b"5" * 64 + b'","event_id":"00000000-0000-4000-8000-000000000000"}',),
        event_ids=("00000000-0000-4000-8000-000000000000",),
        event_hashes=("5" * 64,),
        owner=tip.owner,
        request_digest="s" * 64,
        accepted_at=tip.accepted_at,
        is_seal=True,
    )
    store.put_batch(seal)  # the sealer won sequence 2; the head was not told yet
    before = table_items(dynamodb, table_name)
    error = _assert_error(api.post_events(open_session, [event(2)]), 409, "SESSION_SEALED")
    assert error["details"]["head"]["next_sequence_number"] == 3
    _assert_error(api.post_events(open_session, [event(3)]), 409, "SESSION_SEALED")
    assert table_items(dynamodb, table_name) == before


def _failing(code: str) -> Callable[..., Any]:
    def fail(**_arguments: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "PutItem")

    return fail


@pytest.mark.parametrize(
    "failure",
    [
        ("ProvisionedThroughputExceededException", 429, "THROTTLED"),
        ("ThrottlingException", 429, "THROTTLED"),
        ("InternalServerError", 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_storage_failures_map_to_retryable_statuses(
    api: Api, open_session: str, snapshot: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    error_code, status, api_code = failure
    before = snapshot()
    monkeypatch.setattr(api.module.wiring.dynamodb, "put_item", _failing(error_code))
    _assert_error(api.post_events(open_session, [event(2)]), status, api_code)
    monkeypatch.undo()
    assert snapshot() == before


def test_unexpected_failure_is_a_generic_500(api: Api, open_session: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_arguments: Any, **_options: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.module.wiring.store, "tip", explode)
    error = _assert_error(api.post_events(open_session, [event(2)]), 500, "INTERNAL_ERROR")
    assert "secret" not in json.dumps(error)


def test_unknown_session_is_not_found(api: Api) -> None:
    _assert_error(api.get_session(new_session_id()), 404, "SESSION_NOT_FOUND")
    _assert_error(api.get_session("not-a-uuid"), 404, "SESSION_NOT_FOUND")


def test_reading_a_session_needs_an_identity_but_not_ownership(api: Api, open_session: str) -> None:
    _assert_error(api.get_session(open_session, caller=NO_CALLER), 403, "FORBIDDEN")
    assert api.get_session(open_session, caller=INTRUDER).status == 200


def test_health_needs_no_identity(api: Api) -> None:
    response = api.call("GET", "/v1/health", caller=NO_CALLER)
    assert (response.status, response.body) == (200, {"status": "ok"})


def test_unknown_route_is_not_found(api: Api) -> None:
    _assert_error(api.call("GET", "/v1/nothing"), 404, "NOT_FOUND")
