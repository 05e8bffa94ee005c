"""GET /v1/sessions over real HTTP against the local stack: sessions agents recorded, listed newest first, filtered,
paged with next_token, and every bad parameter refused with 400 VALIDATION_ERROR.

The local stack is shared by the whole integration run, so each test lists its own agent id (or a time window that
starts with the test) to see only its own sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.integration.ingest.builders import event

pytestmark = pytest.mark.integration


def record(api: ApiClient, agent_id: str, *, end: bool = False) -> str:
    session_id = str(uuid.uuid4())
    events = [event(0, "SESSION_START", {"agent_id": agent_id}), event(1)]
    if end:
        events.append(event(2, "SESSION_END"))
    response = api.post(f"/v1/sessions/{session_id}/events", {"events": events})
    assert response.status == 200, response.body
    return session_id


def listing(auditor: ApiClient, **parameters: str) -> dict[str, Any]:
    response = auditor.get("/v1/sessions?" + urlencode(parameters))
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [row["session_id"] for row in body["sessions"]]


@pytest.fixture
def auditor(local_stack: LocalStackHandle) -> ApiClient:
    return ApiClient(local_stack.base_url, access_key_id=f"AKIDAUDITOR{uuid.uuid4().hex[:9].upper()}")


def test_sessions_are_listed_newest_first_with_their_agent_and_state(
    api: ApiClient, auditor: ApiClient, local_stack: LocalStackHandle
) -> None:
    agent_id = f"support-agent-{uuid.uuid4()}"
    older = record(api, agent_id, end=True)
    newer = record(api, agent_id)
    assert older in local_stack.seal_now()
    body = listing(auditor, agent_id=agent_id)
    assert ids(body) == [newer, older]
    assert body["next_token"] is None
    open_row, sealed_row = body["sessions"]
    assert set(open_row) == {
        "session_id",
        "owner",
        "agent_id",
        "status",
        "event_count",
        "started_at",
        "ended_at",
        "sealed_at",
        "evidence_class",
    }
    assert (open_row["agent_id"], open_row["status"], open_row["event_count"]) == (agent_id, "OPEN", 2)
    assert open_row["owner"].endswith(f":user/{api.access_key_id}")
    # The listing verifies no archive, so it shows no class; the session view does.
    assert (sealed_row["status"], sealed_row["event_count"], sealed_row["evidence_class"]) == (
        "SEALED",
        4,  # three events and the seal
        None,
    )
    assert sealed_row["ended_at"] is not None
    assert sealed_row["sealed_at"] is not None
    assert sealed_row["started_at"] < open_row["started_at"]


def test_filters_by_status_and_start_time(api: ApiClient, auditor: ApiClient) -> None:
    agent_id = f"refund-agent-{uuid.uuid4()}"
    first = record(api, agent_id, end=True)
    second = record(api, agent_id)
    third = record(api, agent_id, end=True)
    assert ids(listing(auditor, agent_id=agent_id, status="ENDED")) == [third, first]
    assert ids(listing(auditor, agent_id=agent_id, status="OPEN")) == [second]
    rows = {row["session_id"]: row for row in listing(auditor, agent_id=agent_id)["sessions"]}
    between = listing(
        auditor,
        agent_id=agent_id,
        started_after=rows[first]["started_at"],
        started_before=rows[third]["started_at"],
    )
    assert ids(between) == [second]


def test_pages_cover_every_session_once_without_an_agent_filter(api: ApiClient, auditor: ApiClient) -> None:
    since = (datetime.now(UTC) - timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    recorded = [record(api, f"agent-{n}-{uuid.uuid4()}") for n in range(5)]
    seen: list[str] = []
    pages = 0
    parameters = {"started_after": since, "limit": "2"}
    while True:
        body = listing(auditor, **parameters)
        pages += 1
        assert len(body["sessions"]) <= 2
        seen.extend(session_id for session_id in ids(body) if session_id in recorded)
        if body["next_token"] is None:
            break
        parameters["next_token"] = body["next_token"]
    assert seen == recorded[::-1]
    assert pages >= 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("status=DONE", "status"),
        ("started_after=2026-01-01", "started_after"),
        ("started_before=2026-01-01T00:00:00%2B01:00", "started_before"),
        ("next_token=AAAA", "next_token"),
        ("owner=me", "owner"),
    ],
)
def test_bad_parameters_are_refused_and_change_nothing(
    api: ApiClient, auditor: ApiClient, query: str, field: str
) -> None:
    agent_id = f"agent-{uuid.uuid4()}"
    record(api, agent_id)
    before = listing(auditor, agent_id=agent_id)
    response = auditor.get(f"/v1/sessions?agent_id={agent_id}&{query}")
    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), response.body
    assert response.json()["error"]["details"]["errors"][0]["field"] == field
    assert listing(auditor, agent_id=agent_id) == before


def test_a_token_is_refused_with_other_filters(api: ApiClient, auditor: ApiClient) -> None:
    agent_id = f"agent-{uuid.uuid4()}"
    record(api, agent_id)
    record(api, agent_id)
    token = listing(auditor, agent_id=agent_id, limit="1")["next_token"]
    assert token is not None
    response = auditor.get("/v1/sessions?" + urlencode({"agent_id": "someone-else", "next_token": token}))
    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
