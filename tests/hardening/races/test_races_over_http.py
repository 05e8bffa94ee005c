"""Races over real HTTP against the local stack: two sealer runs at once, concurrent exports of one sealed session,
and two principals racing to open the same session id."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from agentops_verify import TrustStore, parse_key_file, verify_bytes

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.hardening.client_events import client_event, opening


def s3_of(local_stack: LocalStackHandle) -> Any:
    info = local_stack.info
    return boto3.client(
        "s3",
        endpoint_url=info["aws_endpoint"],
        region_name=info["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def versions(local_stack: LocalStackHandle, prefix: str) -> list[dict[str, Any]]:
    listing = s3_of(local_stack).list_object_versions(Bucket=local_stack.info["archive_bucket"], Prefix=prefix)
    found: list[dict[str, Any]] = listing.get("Versions", [])
    return found


@pytest.fixture(scope="module")
def agent(local_stack: LocalStackHandle) -> ApiClient:
    return ApiClient(local_stack.base_url, access_key_id=f"AKIDRACE{uuid.uuid4().hex[:12].upper()}")


def ended_session(agent: ApiClient, events: int = 4) -> str:
    session_id = str(uuid.uuid4())
    batch = [*opening(extra=events - 2), client_event(events - 1, "SESSION_END")]
    assert agent.post(f"/v1/sessions/{session_id}/events", {"events": batch}).status == 200
    return session_id


def trusted_keys(agent: ApiClient) -> TrustStore:
    keys = agent.get("/v1/keys")
    assert keys.status == 200
    return TrustStore(parse_key_file(keys.body))


def test_two_sealer_runs_at_once_seal_each_session_once(agent: ApiClient, local_stack: LocalStackHandle) -> None:
    sessions = [ended_session(agent) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda _: local_stack.seal_now(), range(3)))
    sealed_by_some_run = {session for run in runs for session in run}
    assert set(sessions) <= sealed_by_some_run
    keys = trusted_keys(agent)
    for session_id in sessions:
        chain = agent.get(f"/v1/sessions/{session_id}/chain").json()
        archived = versions(local_stack, f"sessions/{session_id}.jsonl")
        assert [version["VersionId"] for version in archived] == [chain["version_id"]]
        body = s3_of(local_stack).get_object(Bucket=chain["bucket"], Key=chain["key"])["Body"].read()
        report = verify_bytes(body, trust=keys)
        assert report.evidence_class == "AUTHORITATIVE_EVIDENCE"
        assert body.count(b'"event_type":"CHAIN_SEAL"') == 1


def test_concurrent_exports_each_write_their_own_locked_document_that_verifies(
    agent: ApiClient, local_stack: LocalStackHandle
) -> None:
    session_id = ended_session(agent, events=6)
    assert session_id in local_stack.seal_now()
    archive_before = versions(local_stack, f"sessions/{session_id}.jsonl")
    requests = [{"format": "json"}, {"format": "json", "withhold_payloads": [2, 3]}, {"format": "pdf"}] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda r: agent.post(f"/v1/sessions/{session_id}/exports", r), requests))
    assert [response.status for response in responses] == [201] * len(requests)
    created = [response.json() for response in responses]
    assert len({export["export_id"] for export in created}) == len(requests)
    assert len({export["key"] for export in created}) == len(requests)
    keys = trusted_keys(agent)
    s3 = s3_of(local_stack)
    for export in created:
        assert export["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
        stored = s3.get_object(Bucket=export["bucket"], Key=export["key"], VersionId=export["version_id"])
        assert stored["ObjectLockMode"] == "COMPLIANCE"
        if export["format"] == "json":
            assert verify_bytes(stored["Body"].read(), trust=keys).evidence_class == "AUTHORITATIVE_EVIDENCE"
    assert versions(local_stack, f"sessions/{session_id}.jsonl") == archive_before


def test_two_principals_racing_to_open_one_session_leave_exactly_one_owner(local_stack: LocalStackHandle) -> None:
    for _ in range(5):
        session_id = str(uuid.uuid4())
        principals = [
            ApiClient(local_stack.base_url, access_key_id=f"AKIDRIVAL{n}{uuid.uuid4().hex[:10].upper()}")
            for n in range(2)
        ]
        path = f"/v1/sessions/{session_id}/events"
        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = list(pool.map(lambda principal, p=path: principal.post(p, {"events": opening(1)}), principals))
        statuses = sorted(response.status for response in responses)
        assert statuses == [200, 403], [response.body for response in responses]
        winner = principals[[response.status for response in responses].index(200)]
        view = winner.get(f"/v1/sessions/{session_id}").json()
        assert view["owner"].endswith(winner.access_key_id or "")
        assert view["event_count"] == 2
