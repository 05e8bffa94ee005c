"""GET /v1/sessions as a pure core over the in-memory store: parameters, rows, paging tokens, and every rejection."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agentops_server.errors import ApiError
from agentops_server.ingest import IngestService
from agentops_server.memory import InMemoryChainStore
from agentops_server.session_list import decode_token, encode_token, list_sessions
from agentops_server.store import ArchiveRef, ListPosition
from agentops_verify import canonicalize

OWNER = "arn:aws:iam::111122223333:user/agent"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class SteppingClock:
    """Each session starts one second after the previous one."""

    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def store() -> InMemoryChainStore:
    return InMemoryChainStore()


def record_sessions(store: InMemoryChainStore, agents: list[str], *, ended: frozenset[int] = frozenset()) -> list[str]:
    """One session per agent, one second apart, through the append use case (as agents create them)."""
    clock = SteppingClock()
    service = IngestService(store, clock, "agentops-replay-test")
    sessions = []
    for index, agent_id in enumerate(agents):
        clock.current = T0 + timedelta(seconds=index)
        session_id = str(uuid.uuid4())
        events: list[dict[str, Any]] = [event(0, "SESSION_START", {"agent_id": agent_id, "environment": "prod"})]
        events.append(event(1, "TOOL_CALL", {"tool_name": "lookup_order"}))
        if index in ended:
            events.append(event(2, "SESSION_END", {"status": "failure"}))
        service.append(session_id, OWNER, json.dumps({"events": events}))
        sessions.append(session_id)
    return sessions


def event(sequence: int, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence,
        "timestamp_wall": "2026-03-01T09:00:00Z",
        "event_type": event_type,
        "payload": payload,
    }


def ids(body: dict[str, Any]) -> list[str]:
    return [row["session_id"] for row in body["sessions"]]


def test_rows_carry_the_agent_of_session_start_and_the_chains_figures(store: InMemoryChainStore) -> None:
    first, second = record_sessions(store, ["support-agent", "refund-agent"], ended=frozenset({1}))
    body = list_sessions(store, {})
    assert body == {
        "sessions": [
            {
                "session_id": second,
                "owner": OWNER,
                "agent_id": "refund-agent",
                "status": "ENDED",
                "event_count": 3,
                "started_at": "2026-03-01T09:00:01.000000Z",
                "ended_at": "2026-03-01T09:00:01.000000Z",
                "sealed_at": None,
                "evidence_class": None,
            },
            {
                "session_id": first,
                "owner": OWNER,
                "agent_id": "support-agent",
                "status": "OPEN",
                "event_count": 2,
                "started_at": "2026-03-01T09:00:00.000000Z",
                "ended_at": None,
                "sealed_at": None,
                "evidence_class": None,
            },
        ],
        "next_token": None,
    }


def test_filters_combine(store: InMemoryChainStore) -> None:
    sessions = record_sessions(store, ["a", "b", "a", "a", "b"], ended=frozenset({0, 3}))
    assert ids(list_sessions(store, {"agent_id": "a"})) == [sessions[3], sessions[2], sessions[0]]
    assert ids(list_sessions(store, {"agent_id": "a", "status": "ENDED"})) == [sessions[3], sessions[0]]
    window = {"started_after": "2026-03-01T09:00:01Z", "started_before": "2026-03-01T09:00:04Z"}
    assert ids(list_sessions(store, window)) == [sessions[3], sessions[2]]
    assert ids(list_sessions(store, {**window, "status": "OPEN"})) == [sessions[2]]
    assert ids(list_sessions(store, {"started_after": "2026-03-01T09:00:03.999999Z"})) == [sessions[4]]


def test_pages_follow_the_token_to_the_end(store: InMemoryChainStore) -> None:
    sessions = record_sessions(store, ["a"] * 5)
    seen: list[str] = []
    parameters = {"limit": "2", "agent_id": "a"}
    while True:
        body = list_sessions(store, parameters)
        seen.extend(ids(body))
        if body["next_token"] is None:
            break
        parameters = {**parameters, "next_token": body["next_token"]}
    assert seen == sessions[::-1]


def test_default_limit_is_50(store: InMemoryChainStore) -> None:
    record_sessions(store, ["a"] * 51)
    body = list_sessions(store, None)
    assert len(body["sessions"]) == 50
    assert body["next_token"] is not None


def test_empty_values_count_as_absent(store: InMemoryChainStore) -> None:
    sessions = record_sessions(store, ["a", "b"])
    blank = dict.fromkeys(("agent_id", "status", "started_after", "started_before", "limit", "next_token"), "")
    assert ids(list_sessions(store, blank)) == sessions[::-1]


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "05"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1e2"}, "limit"),
        ({"status": "open"}, "status"),
        ({"status": "CLOSED"}, "status"),
        ({"status": "OPEN,SEALED"}, "status"),  # a repeated parameter arrives joined by a comma
        ({"started_after": "2026-03-01"}, "started_after"),
        ({"started_after": "2026-03-01T09:00:00+01:00"}, "started_after"),
        ({"started_after": "2026-02-30T09:00:00Z"}, "started_after"),
        ({"started_before": "2026-03-01T09:00:00.1234567Z"}, "started_before"),
        ({"started_before": "yesterday"}, "started_before"),
        ({"started_after": "2026-03-02T00:00:00Z", "started_before": "2026-03-01T00:00:00Z"}, "started_after"),
        ({"started_after": "2026-03-01T00:00:00Z", "started_before": "2026-03-01T00:00:00Z"}, "started_after"),
        ({"agent": "a"}, "agent"),
        ({"next_token": "not a token"}, "next_token"),
        ({"next_token": "eyJ2IjoxfQ"}, "next_token"),
    ],
)
def test_bad_parameters_are_validation_errors_naming_the_parameter(
    store: InMemoryChainStore, parameters: dict[str, str], field: str
) -> None:
    record_sessions(store, ["a"])
    with pytest.raises(ApiError) as raised:
        list_sessions(store, parameters)
    assert (raised.value.status, raised.value.code) == (400, "VALIDATION_ERROR")
    assert raised.value.details["errors"][0]["field"] == field


FINGERPRINT = "0" * 32
POSITION = ListPosition(T0, "3f1c2b6e-0000-4000-8000-000000000001")


def forged(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(canonicalize(document)).rstrip(b"=").decode()


def test_token_round_trips() -> None:
    assert decode_token(encode_token(POSITION, FINGERPRINT), FINGERPRINT) == POSITION


@pytest.mark.parametrize(
    "token",
    [
        encode_token(POSITION, FINGERPRINT) + "=",  # padding is not the written form
        encode_token(POSITION, FINGERPRINT) + "A",
        base64.urlsafe_b64encode(
            json.dumps(
                {"v": 1, "at": "2026-03-01T09:00:00.000000Z", "id": POSITION.session_id, "f": FINGERPRINT}
            ).encode()
        )
        .decode()
        .rstrip("="),  # not canonical JSON
        forged({"v": 2, "at": "2026-03-01T09:00:00.000000Z", "id": POSITION.session_id, "f": FINGERPRINT}),
        forged({"v": True, "at": "2026-03-01T09:00:00.000000Z", "id": POSITION.session_id, "f": FINGERPRINT}),
        forged({"v": 1, "at": "2026-03-01T09:00:00Z", "id": POSITION.session_id, "f": FINGERPRINT}),
        forged({"v": 1, "at": "2026-03-01T09:00:00.000000Z", "id": "S#x", "f": FINGERPRINT}),
        forged({"v": 1, "at": "2026-03-01T09:00:00.000000Z", "id": POSITION.session_id.upper(), "f": FINGERPRINT}),
        forged({"v": 1, "at": 0, "id": POSITION.session_id, "f": FINGERPRINT}),
        forged({"v": 1, "at": "2026-03-01T09:00:00.000000Z", "id": POSITION.session_id, "f": FINGERPRINT, "x": 1}),
        forged({"pk": {"S": "S#x"}, "sk": {"S": "HEAD"}}),  # a storage key is never accepted
        "A" * 300,
    ],
)
def test_a_token_not_written_by_the_service_is_refused(token: str) -> None:
    with pytest.raises(ApiError) as raised:
        decode_token(token, FINGERPRINT)
    assert (raised.value.code, raised.value.details["errors"][0]["field"]) == ("VALIDATION_ERROR", "next_token")


def test_a_token_used_with_other_filters_is_refused(store: InMemoryChainStore) -> None:
    record_sessions(store, ["a", "a", "b"])
    token = list_sessions(store, {"agent_id": "a", "limit": "1"})["next_token"]
    assert token is not None
    with pytest.raises(ApiError) as raised:
        list_sessions(store, {"agent_id": "b", "limit": "1", "next_token": token})
    assert "other filters" in raised.value.message
    assert len(list_sessions(store, {"agent_id": "a", "limit": "5", "next_token": token})["sessions"]) == 1


def test_a_row_whose_chain_has_moved_past_the_asked_status_is_left_out(store: InMemoryChainStore) -> None:
    """A crash between the SESSION_END batch and the head update leaves the head OPEN; the row shows ENDED."""
    (session_id,) = record_sessions(store, ["a"])
    end = IngestService(store, SteppingClock(), "agentops-replay-test")
    head_before = store.get_head(session_id)
    end.append(session_id, OWNER, json.dumps({"events": [event(2, "SESSION_END", {"status": "success"})]}))
    assert head_before is not None
    store._heads[session_id] = head_before  # the crash: the head never learnt of the end
    assert list_sessions(store, {"status": "OPEN"})["sessions"] == []
    assert [row["status"] for row in list_sessions(store, {})["sessions"]] == ["ENDED"]


def test_the_listing_never_shows_a_class_from_the_table(store: InMemoryChainStore) -> None:
    # Anyone who can write the table can write "AUTHORITATIVE_EVIDENCE" into a head; the listing verifies no archive,
    # so it must not repeat what the head says (ELS section 8, rev 2).
    (session_id,) = record_sessions(store, ["support-agent"], ended=frozenset({0}))
    forged_archive = ArchiveRef("archive", f"sessions/{session_id}.jsonl", "v1", "0" * 64)
    store.mark_sealed(session_id, forged_archive, datetime(2026, 3, 1, 10, tzinfo=UTC), "AUTHORITATIVE_EVIDENCE", ())

    (row,) = list_sessions(store, {})["sessions"]

    assert row["status"] == "SEALED"
    assert row["evidence_class"] is None
