"""The append use case over the in-memory store: server-authority chaining, idempotency, ownership, repair."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import pytest
from agentops_server.errors import ApiError
from agentops_server.ingest import IngestService
from agentops_server.memory import InMemoryChainStore
from agentops_server.store import StoredBatch
from agentops_verify import REDACTED, canonicalize, chain_event, loads, payload_hash, verify_lines
from hypothesis import given, settings
from hypothesis import strategies as st

SERVICE_ID = "agentops-replay-test"
OWNER = "arn:aws:iam::111122223333:user/agent"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def _event(sequence: int, event_type: str | None = None, payload: Any = None, **fields: Any) -> dict[str, Any]:
    chosen = event_type or ("SESSION_START" if sequence == 0 else "TOOL_CALL")
    defaults: dict[str, Any] = {"SESSION_START": {"agent_id": "a"}, "SESSION_END": {"status": "success"}}
    default = defaults.get(chosen)
    built = {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence,
        "timestamp_wall": "2026-01-01T12:00:00.5Z",
        "event_type": chosen,
        "payload": payload if payload is not None else (default or {"tool_name": "search", "args": {"q": sequence}}),
    }
    built.update(fields)
    return built


def _body(events: list[dict[str, Any]]) -> str:
    return json.dumps({"events": events})


@pytest.fixture
def store() -> InMemoryChainStore:
    return InMemoryChainStore()


@pytest.fixture
def service(store: InMemoryChainStore) -> IngestService:
    return IngestService(store, FixedClock(), SERVICE_ID)


def _expected_line(event: dict[str, Any], session_id: str, previous: str | None) -> dict[str, Any]:
    return chain_event(
        event_id=event["event_id"],
        session_id=session_id,
        sequence_number=event["sequence_number"],
        timestamp_wall=event["timestamp_wall"],
        event_type=event["event_type"],
        payload=event["payload"],
        prev_event_hash=previous,
        chain_authority="server",
        authority_id=SERVICE_ID,
    )


TEXT_CHARACTERS = st.characters(blacklist_categories=["Cs"])  # no lone surrogates: not I-JSON
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(min_value=-(2.0**52), max_value=2.0**52)
    | st.text(TEXT_CHARACTERS).filter(lambda text: text != REDACTED),  # a bare marker is refused (ELS section 3)
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(TEXT_CHARACTERS, max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(extra=st.dictionaries(st.text(TEXT_CHARACTERS, max_size=8), json_values, max_size=5))
def test_stored_line_is_the_canonical_form_of_the_server_envelope(extra: dict[str, Any]) -> None:
    store = InMemoryChainStore()
    service = IngestService(store, FixedClock(), SERVICE_ID)
    session_id = str(uuid.uuid4())
    # Prefixed so a generated key never collides with an optional SESSION_START key and its own rules.
    payload = {**{f"extra_{key}": value for key, value in extra.items()}, "agent_id": "agent"}
    sent = _event(0, payload=payload, source_sdk_ver='sdk "quoted" ,"payload_hash":', timestamp_monotonic=9)
    response = service.append(session_id, OWNER, _body([sent]))
    expected = _expected_line(sent, session_id, None)
    expected["source_sdk_ver"] = sent["source_sdk_ver"]
    expected["timestamp_monotonic"] = 9
    expected["event_hash"] = chain_event(**{**_chain_arguments(expected), "authority_id": SERVICE_ID})["event_hash"]
    (line,) = store.iter_lines(session_id)
    assert line == canonicalize(expected)
    assert response["events"][0]["event_hash"] == expected["event_hash"]


def _chain_arguments(envelope: dict[str, Any]) -> dict[str, Any]:
    names = ("event_id", "session_id", "sequence_number", "timestamp_wall", "event_type", "payload")
    return {
        **{name: envelope[name] for name in names},
        "prev_event_hash": envelope["prev_event_hash"],
        "chain_authority": "server",
    }


def test_batches_link_into_one_verifiable_chain(service: IngestService, store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    sent = [_event(0), _event(1), _event(2), _event(3, "SESSION_END")]
    first = service.append(session_id, OWNER, _body(sent[:2]))
    second = service.append(session_id, OWNER, _body(sent[2:]))
    previous = None
    for event, line in zip(sent, store.iter_lines(session_id), strict=True):
        expected = _expected_line(event, session_id, previous)
        assert line == canonicalize(expected)
        previous = expected["event_hash"]
    assert first["head"] == {
        "next_sequence_number": 2,
        "last_event_hash": first["events"][-1]["event_hash"],
        "status": "OPEN",
    }
    assert second["head"]["status"] == "ENDED"
    report = verify_lines(store.iter_lines(session_id))
    assert report.passed
    assert (report.event_count, report.final_event_hash) == (4, previous)
    head = store.get_head(session_id)
    assert head is not None
    assert (head.owner, head.status, head.next_sequence_number) == (OWNER, "ENDED", 4)


def test_identical_retry_returns_the_original_body_and_changes_nothing(
    service: IngestService, store: InMemoryChainStore
) -> None:
    session_id = str(uuid.uuid4())
    body = _body([_event(0), _event(1)])
    original = service.append(session_id, OWNER, body)
    reordered = json.dumps({"events": [dict(reversed(list(event.items()))) for event in json.loads(body)["events"]]})
    assert service.append(session_id, OWNER, reordered) == original  # same events, other spelling
    assert len(list(store.iter_lines(session_id))) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {"tool_name": "search", "args": {"q": "other"}}},
        {"timestamp_wall": "2026-01-01T12:00:01Z"},
        {"timestamp_monotonic": 7},
        {"source_sdk_ver": "other-sdk/1.0"},
        {"event_type": "ERROR", "payload": {"error_type": "E", "message": "m"}},
    ],
)
def test_a_changed_event_at_a_taken_sequence_is_a_conflict_not_a_retry(
    service: IngestService, store: InMemoryChainStore, change: dict[str, Any]
) -> None:
    session_id = str(uuid.uuid4())
    first = [_event(0), _event(1)]
    service.append(session_id, OWNER, _body(first))
    before = list(store.iter_lines(session_id))
    assert _code(service, session_id, [first[0], {**first[1], **change}]) == "SEQUENCE_CONFLICT"
    assert list(store.iter_lines(session_id)) == before


def test_a_retry_that_spells_out_the_defaults_is_the_same_request(service: IngestService) -> None:
    session_id = str(uuid.uuid4())
    sent = [_event(0), _event(1)]
    original = service.append(session_id, OWNER, _body(sent))
    defaults = {"timestamp_monotonic": 0, "source_sdk_ver": "unknown", "schema_ver": "v0.6", "session_id": session_id}
    spelled_out = [
        {**event, **defaults, "payload_hash": event_hash}
        for event, event_hash in zip(sent, _payload_hashes(sent), strict=True)
    ]
    assert service.append(session_id, OWNER, _body(spelled_out)) == original


def _payload_hashes(events: list[dict[str, Any]]) -> list[str]:
    return [payload_hash(event["payload"]) for event in events]


def test_retry_restores_a_head_a_crash_left_behind(service: IngestService, store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    service.append(session_id, OWNER, _body([_event(0)]))
    body = _body([_event(1), _event(2, "SESSION_END")])
    with patch.object(store, "advance_head", lambda batch: None):  # the crash: the head is never folded
        lost = service.append(session_id, OWNER, body)
    head = store.get_head(session_id)
    assert head is not None
    assert (head.next_sequence_number, head.status) == (1, "OPEN")
    assert service.append(session_id, OWNER, body) == lost
    head = store.get_head(session_id)
    assert head is not None
    assert (head.next_sequence_number, head.status) == (3, "ENDED")


def test_next_append_after_a_crash_continues_from_the_stored_tail(
    service: IngestService, store: InMemoryChainStore
) -> None:
    session_id = str(uuid.uuid4())
    service.append(session_id, OWNER, _body([_event(0)]))
    with patch.object(store, "advance_head", lambda batch: None):  # the crash: the head is never folded
        service.append(session_id, OWNER, _body([_event(1)]))
    following = service.append(session_id, OWNER, _body([_event(2)]))
    head = store.get_head(session_id)
    assert head is not None
    assert (head.next_sequence_number, head.last_event_hash) == (3, following["head"]["last_event_hash"])
    assert verify_lines(store.iter_lines(session_id)).passed


def _code(service: IngestService, session_id: str, events: list[dict[str, Any]], caller: str = OWNER) -> str:
    with pytest.raises(ApiError) as raised:
        service.append(session_id, caller, _body(events))
    code: str = raised.value.code
    return code


def test_state_rejections_leave_the_chain_unchanged(service: IngestService, store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    service.append(session_id, OWNER, _body([_event(0), _event(1)]))
    before = list(store.iter_lines(session_id))
    stored_id = loads(before[1])["event_id"]
    assert _code(service, session_id, [_event(2)], caller="someone-else") == "FORBIDDEN"
    assert _code(service, session_id, [_event(3)]) == "SEQUENCE_CONFLICT"
    assert _code(service, session_id, [_event(1)]) == "SEQUENCE_CONFLICT"
    assert _code(service, session_id, [_event(2, event_id=stored_id)]) == "DUPLICATE_EVENT_ID"
    assert _code(service, str(uuid.uuid4()), [_event(1)]) == "INVALID_FIRST_EVENT"
    assert _code(service, session_id, [_event(2, payload={"tool_name": "x", "blob": "y" * 262_144})]) == (
        "PAYLOAD_TOO_LARGE"
    )
    assert _code(service, session_id, [_event(2, payload_hash="A" * 64)]) == "PAYLOAD_HASH_MISMATCH"
    assert list(store.iter_lines(session_id)) == before


def test_conflict_reports_the_current_head(service: IngestService) -> None:
    session_id = str(uuid.uuid4())
    accepted = service.append(session_id, OWNER, _body([_event(0), _event(1)]))
    with pytest.raises(ApiError) as raised:
        service.append(session_id, OWNER, _body([_event(5)]))
    assert raised.value.details == {"head": accepted["head"]}


def test_ended_and_sealed_sessions_refuse_appends(service: IngestService, store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    ended = service.append(session_id, OWNER, _body([_event(0), _event(1, "SESSION_END")]))
    assert _code(service, session_id, [_event(2)]) == "SESSION_ENDED"
    seal = StoredBatch(
        session_id=session_id,
        first_sequence=2,
        lines=(b"{}",),
        event_ids=(str(uuid.uuid4()),),
        event_hashes=("c" * 64,),
        owner=OWNER,
        request_digest="seal",
        accepted_at=NOW,
        is_seal=True,
    )
    store.put_batch(seal)
    assert _code(service, session_id, [_event(2)]) == "SESSION_SEALED"
    assert _code(service, session_id, [_event(3)]) == "SESSION_SEALED"
    assert ended["head"]["next_sequence_number"] == 2


def test_two_principals_racing_to_open_a_session_cannot_share_it(store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    service = IngestService(store, FixedClock(), SERVICE_ID)
    store.create_session(session_id, "first-principal", NOW)  # won the creation race, its batch not yet stored
    assert _code(service, session_id, [_event(0)], caller=OWNER) == "FORBIDDEN"
    assert list(store.iter_lines(session_id)) == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"tool_name": "mail", "args": "[REDACTED]"}, "payload.args"),
        ({"tool_name": "mail", "args": {"to": "[REDACTED]", "to_hash": 5}}, "payload.args.to"),
        ({"tool_name": "mail", "args": {"cc": ["a@example.com", "[REDACTED]"]}}, "payload.args.cc[1]"),
        ({"tool_name": "mail", "args": [{"to/cc~": "[REDACTED]"}]}, "payload.args[0].to/cc~"),
        # the first in document order, as the verifier's REDACTION_INTEGRITY names it
        ({"tool_name": "mail", "a": {"x": "[REDACTED]"}, "b": {"y": "[REDACTED]"}}, "payload.a.x"),
    ],
)
def test_redaction_without_its_hash_is_refused_because_the_chain_would_never_verify(
    service: IngestService, store: InMemoryChainStore, payload: dict[str, Any], field: str
) -> None:
    session_id = str(uuid.uuid4())
    service.append(session_id, OWNER, _body([_event(0)]))
    with pytest.raises(ApiError) as raised:
        service.append(session_id, OWNER, _body([_event(1, payload=payload)]))
    assert raised.value.code == "VALIDATION_ERROR"
    assert raised.value.details["errors"] == [
        {
            "event_index": 0,
            "field": field,
            "problem": "is [REDACTED] without a string <key>_hash sibling (ELS section 3)",
        }
    ]
    assert len(list(store.iter_lines(session_id))) == 1


def test_backed_redaction_is_accepted_and_verifies(service: IngestService, store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    redacted = {"tool_name": "mail", "args": {"to": "[REDACTED]", "to_hash": "b" * 64}, "note": "[REDACTED] inline"}
    service.append(session_id, OWNER, _body([_event(0), _event(1, payload=redacted)]))
    assert verify_lines(store.iter_lines(session_id)).passed


EVERY_TYPE = [
    ("SESSION_START", {"agent_id": "a", "environment": "prod", "tags": ["x"], "sdk_version": "0.1.0"}),
    ("MODEL_REQUEST", {"model": "m", "provider": "p", "messages": [{"role": "user", "content": "hi"}]}),
    ("MODEL_RESPONSE", {"model": "m", "content": "hello", "usage": {"input_tokens": 3}, "finish_reason": "stop"}),
    ("TOOL_CALL", {"tool_name": "t", "tool_id": "1", "args": {"q": 1.5}}),
    ("TOOL_RESULT", {"tool_name": "t", "tool_id": "1", "result": [1, 2], "status": "ok", "duration_ms": 4}),
    ("AGENT_STATE_SNAPSHOT", {}),
    ("DECISION_TRACE", {"decision_id": "d", "inputs": {}, "outputs": {}, "justification": "j"}),
    ("ERROR", {"error_type": "E", "message": "m", "fatal": False}),
    ("ANNOTATION", {"annotator_id": "a", "annotation_type": "rating", "content": 5}),
    ("LOG_DROP", {"dropped_count": 3, "cumulative_drops": 3, "drop_reason": "NETWORK_LOSS", "sequence_range": [9, 11]}),
    ("SESSION_END", {"status": "failure", "reason": "r", "duration_ms": 10, "total_cost_usd": 0.25}),
]


def test_every_accepted_event_type_gives_a_chain_the_verifier_passes(
    service: IngestService, store: InMemoryChainStore
) -> None:
    session_id = str(uuid.uuid4())
    events = [_event(index, event_type, payload) for index, (event_type, payload) in enumerate(EVERY_TYPE)]
    service.append(session_id, OWNER, _body(events))
    report = verify_lines(store.iter_lines(session_id))
    assert report.passed, report.violations
    assert report.event_count == len(EVERY_TYPE)


def test_a_leap_second_is_accepted_and_the_chain_verifies(service: IngestService, store: InMemoryChainStore) -> None:
    session_id = str(uuid.uuid4())
    events = [
        _event(0, timestamp_wall="2016-12-31T23:59:59.9Z"),
        _event(1, timestamp_wall="2016-12-31T23:59:60.5Z"),
        _event(2, "SESSION_END", timestamp_wall="2017-01-01T00:00:00Z"),
    ]
    service.append(session_id, OWNER, _body(events))
    report = verify_lines(store.iter_lines(session_id))
    assert report.passed
    assert [finding.type for finding in report.warnings] == []  # no TIMESTAMP_ANOMALY either


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"tool_name": "search", "args": {"n": 2**53}}, "outside"),
        ({"tool_name": "search", "args": json.loads("[" * 61 + "]" * 61)}, "nesting deeper than 64"),
    ],
)
def test_a_refused_payload_next_to_whole_number_floats_writes_nothing(
    service: IngestService, store: InMemoryChainStore, payload: dict[str, Any], problem: str
) -> None:
    session_id = str(uuid.uuid4())
    service.append(session_id, OWNER, _body([_event(0)]))
    before = list(store.iter_lines(session_id))
    body = _body([_event(1, payload={"tool_name": "search", "args": {"top_p": 1.0}}), _event(2, payload=payload)])
    with pytest.raises(ApiError) as raised:
        service.append(session_id, OWNER, body)
    assert raised.value.code == "INVALID_JSON"
    assert problem in raised.value.details["problem"]
    assert list(store.iter_lines(session_id)) == before


def test_payloads_with_whole_number_floats_are_stored_in_their_canonical_form(
    service: IngestService, store: InMemoryChainStore
) -> None:
    session_id = str(uuid.uuid4())
    payloads = [{"tool_name": "search", "args": {"top_p": 1.0}}, {"tool_name": "search", "args": {"note": "x:1.0,"}}]
    service.append(session_id, OWNER, _body([_event(0), *(_event(1 + i, payload=p) for i, p in enumerate(payloads))]))
    stored = [loads(line)["payload"] for line in list(store.iter_lines(session_id))[1:]]
    assert [canonicalize(payload) for payload in stored] == [canonicalize(payload) for payload in payloads]
    assert all(
        loads(line)["payload_hash"] == payload_hash(p)
        for line, p in zip(list(store.iter_lines(session_id))[1:], payloads, strict=True)
    )
    assert verify_lines(store.iter_lines(session_id)).passed
