"""Tenancy: a session belongs to the principal that opened it (API.md). Another principal cannot append to it in any
state, a request without identity gets 403 on every route but health, and an agent's IAM policy lets it read no
session at all (reads are granted by the auditor policy only).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.hardening.client_events import client_event, opening
from tests.hardening.iam.test_least_privilege import invokable_routes
from tests.support.paths import TEMPLATE

ROUTES_NEEDING_IDENTITY = [
    ("POST", "/v1/sessions/{id}/events", {"events": [client_event(0, "SESSION_START")]}),
    ("GET", "/v1/sessions/{id}", None),
    ("GET", "/v1/sessions/{id}/replay", None),
    ("GET", "/v1/sessions/{id}/chain", None),
    ("POST", "/v1/sessions/{id}/exports", {"format": "json"}),
    ("GET", "/v1/keys", None),
    ("GET", "/v1/sessions", None),
]


def principal(local_stack: LocalStackHandle, name: str) -> ApiClient:
    return ApiClient(local_stack.base_url, access_key_id=f"AKID{name.upper()}{uuid.uuid4().hex[:10].upper()}")


def open_session(owner: ApiClient, local_stack: LocalStackHandle, state: str) -> str:
    session_id = str(uuid.uuid4())
    events = opening(extra=1)
    if state != "open":
        events.append(client_event(2, "SESSION_END"))
    assert owner.post(f"/v1/sessions/{session_id}/events", {"events": events}).status == 200
    if state == "sealed":
        assert session_id in local_stack.seal_now()
    return session_id


def state_of(owner: ApiClient, session_id: str) -> dict[str, Any]:
    view: dict[str, Any] = owner.get(f"/v1/sessions/{session_id}").json()
    return view


@pytest.mark.parametrize("state", ["open", "ended", "sealed"])
def test_another_principal_cannot_append_to_a_session_in_any_state(state: str, local_stack: LocalStackHandle) -> None:
    owner, intruder = principal(local_stack, "owner"), principal(local_stack, "intruder")
    session_id = open_session(owner, local_stack, state)
    before = state_of(owner, session_id)
    next_sequence = before["next_sequence_number"]
    attempts = [
        [client_event(next_sequence)],  # the next event
        [client_event(next_sequence, "SESSION_END")],  # ending someone else's session
        [client_event(0, "SESSION_START")],  # re-opening it under a new owner
        [client_event(1)],  # overwriting a stored event
    ]
    for events in attempts:
        response = intruder.post(f"/v1/sessions/{session_id}/events", {"events": events})
        assert (response.status, response.error_code) == (403, "FORBIDDEN"), response.body
    assert state_of(owner, session_id) == before


def test_an_identical_replay_of_the_owners_batch_by_another_principal_is_forbidden(
    local_stack: LocalStackHandle,
) -> None:
    """Idempotent retries are the owner's: a captured body re-sent by someone else gets 403, not the stored 200."""
    owner, intruder = principal(local_stack, "owner"), principal(local_stack, "intruder")
    session_id = str(uuid.uuid4())
    batch = {"events": opening(extra=2)}
    assert owner.post(f"/v1/sessions/{session_id}/events", batch).status == 200
    before = state_of(owner, session_id)
    replayed = intruder.post(f"/v1/sessions/{session_id}/events", batch)
    assert (replayed.status, replayed.error_code) == (403, "FORBIDDEN")
    assert state_of(owner, session_id) == before


@pytest.mark.parametrize(
    ("method", "path", "document"), ROUTES_NEEDING_IDENTITY, ids=[f"{m} {p}" for m, p, _ in ROUTES_NEEDING_IDENTITY]
)
def test_request_without_identity_is_forbidden_and_writes_nothing(
    method: str, path: str, document: Any, local_stack: LocalStackHandle
) -> None:
    owner = principal(local_stack, "owner")
    session_id = open_session(owner, local_stack, "sealed")
    before = state_of(owner, session_id)
    anonymous = owner.as_principal(None)
    response = (
        anonymous.post(path.format(id=session_id), document)
        if method == "POST"
        else anonymous.get(path.format(id=session_id))
    )
    assert (response.status, response.error_code) == (403, "FORBIDDEN"), response.body
    assert state_of(owner, session_id) == before


def test_health_is_the_only_route_answering_without_identity(local_stack: LocalStackHandle) -> None:
    response = ApiClient(local_stack.base_url, access_key_id=None).get("/v1/health")
    assert (response.status, response.json()) == (200, {"status": "ok"})


def test_an_agent_policy_reaches_no_read_route_of_any_session() -> None:
    """Per-session reads are not owner-checked by the service: they are granted by IAM, to auditors only. An agent
    holding ``AgentPolicy`` can therefore read neither another agent's session nor its own, nor list sessions."""
    template = cfn_yaml.load(str(TEMPLATE))
    agent_routes = invokable_routes(template, "AgentPolicy")
    assert agent_routes == {"POST /v1/sessions/{session_id}/events"}
    reads = {
        "GET /v1/sessions",
        "GET /v1/sessions/{session_id}",
        "GET /v1/sessions/{session_id}/replay",
        "GET /v1/sessions/{session_id}/chain",
        "POST /v1/sessions/{session_id}/exports",
    }
    assert reads & agent_routes == set()
    assert reads <= invokable_routes(template, "AuditorPolicy")
