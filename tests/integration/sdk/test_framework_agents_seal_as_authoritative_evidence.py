"""Agents of Strands, the OpenAI Agents SDK and LangGraph, and a session full of I-JSON edge values, recorded into the
local stack over HTTP, sealed, downloaded and verified as an auditor would."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_verify import AUTHORITATIVE_EVIDENCE, LOG_DROP_PRESENT, PARTIAL_AUTHORITATIVE_EVIDENCE, PASS, loads

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.functional.sdk.scripted_agents import run_langgraph, run_openai_agents, run_strands
from tests.integration.sdk.test_sdk_sessions_seal_as_authoritative_evidence import _sealed_report

pytestmark = pytest.mark.integration


@pytest.fixture
def client(api: ApiClient, local_stack: LocalStackHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[AgentOpsClient]:
    assert api.access_key_id is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", api.access_key_id)  # the SDK signs as this test's principal
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", api.secret_access_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AGENTOPS_DISABLED", raising=False)
    recorder = AgentOpsClient(local_stack.base_url, batch_size=50, flush_interval=0.1)
    yield recorder
    recorder.close(timeout=5)


def _chain(api: ApiClient, session_id: str) -> list[dict[str, Any]]:
    import urllib.request

    chain = api.get(f"/v1/sessions/{session_id}/chain")
    with urllib.request.urlopen(chain.json()["url"], timeout=30) as response:  # presigned: no credentials
        return [loads(line) for line in response.read().splitlines()]


@pytest.mark.parametrize(
    "run", [run_strands, run_openai_agents, run_langgraph], ids=["strands", "openai-agents", "langgraph"]
)
def test_a_scripted_agent_with_a_failing_tool_seals_as_authoritative_evidence_with_every_call_answered(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient, run: Callable[[AgentOpsClient], str]
) -> None:
    session_id = run(client)
    assert client.flush(timeout=60)
    assert client.stats()["rejected"] == client.stats()["invalid"] == 0

    report = _sealed_report(api, local_stack, session_id)

    assert (report.status, report.evidence_class) == (PASS, AUTHORITATIVE_EVIDENCE), report.violations
    chain = _chain(api, session_id)
    calls = [e["payload"]["tool_id"] for e in chain if e["event_type"] == "TOOL_CALL"]
    results = [e["payload"]["tool_id"] for e in chain if e["event_type"] == "TOOL_RESULT"]
    errors = [e["payload"] for e in chain if e["event_type"] == "ERROR"]
    assert calls == ["call_1", "call_2"]
    assert set(calls) <= set(results) | {error.get("tool_id") for error in errors}
    assert [error["tool_id"] for error in errors] == ["call_2"]  # the failing tool's call


EDGES: dict[str, Any] = {
    "float-1e20": 1e20,
    "float-2**53": 2.0**53,
    "nan": math.nan,
    "infinity": -math.inf,
    "huge-integer": -(10**20),
    "lone-surrogate": "\ud83d",
    "non-string-key": {(1, 2): "x"},
    "not-json": object(),
    "bytes": b"\xff",
    "set": {3, 1, 2},
}


def test_a_session_with_one_1e20_and_every_other_edge_is_sealed_with_every_other_event_and_each_loss_stated(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient
) -> None:
    with client.session("edge-agent") as session:
        for name, value in EDGES.items():
            session.tool_call("normal", tool_id=f"before-{name}")
            session.record("TOOL_CALL", {"tool_name": name, "args": {"value": value}})
        # refused by the service, not by the SDK: "[REDACTED]" without its <key>_hash sibling
        session.record("TOOL_CALL", {"tool_name": "unbacked-redaction", "args": "[REDACTED]"})
        session.tool_call("normal", tool_id="last")
    assert client.flush(timeout=60)

    report = _sealed_report(api, local_stack, session.session_id)

    refused = 8 + 1
    assert report.status == PASS, report.violations
    assert report.sealed
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert LOG_DROP_PRESENT in report.partial_reasons
    assert report.total_drops == refused
    chain = _chain(api, session.session_id)
    delivered = [e["payload"]["tool_name"] for e in chain if e["event_type"] == "TOOL_CALL"]
    recorded_as_json = {"bytes", "set"}  # converted (base64, sorted list), not refused
    expected = [tool for name in EDGES for tool in ("normal", name) if tool == "normal" or tool in recorded_as_json]
    assert delivered == [*expected, "normal"]
    drops = [e["payload"] for e in chain if e["event_type"] == "LOG_DROP"]
    assert sorted(drop["refused_by"] for drop in drops) == ["sdk"] * 8 + ["service"]
    stats = client.stats()
    assert (stats["invalid"], stats["rejected"]) == (8, 1)
