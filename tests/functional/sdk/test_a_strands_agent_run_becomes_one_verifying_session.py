"""Strands Agents: a real ``strands.Agent`` with a scripted model (no network), recorded through AgentOpsHooks into the
fake ingestion service (which validates like the real one)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.strands import AgentOpsHooks
from agentops_verify import NON_AUTHORITATIVE_EVIDENCE, PASS, loads, payload_hash, verify_bytes
from strands import Agent
from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry
from strands.types.interrupt import InterruptResponseContent

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest
from tests.functional.sdk.scripted_agents import run_strands, strands_model, strands_tools
from tests.support.paths import REPO_ROOT

Ingest = tuple[FakeIngest, str]


def _payloads(chain: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event["payload"] for event in chain if event["event_type"] == event_type]


def test_a_strands_agent_with_a_failing_tool_becomes_one_verifying_session(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)

    session_id = run_strands(client)
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert list(fake.chains) == [session_id]
    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "TOOL_CALL",
        "TOOL_RESULT",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "TOOL_CALL",
        "TOOL_RESULT",
        "ERROR",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "SESSION_END",
    ]
    start = chain[0]["payload"]
    assert start["agent_id"] == "support"
    assert (start["framework"], start["framework_version"]) == (
        "strands-agents",
        importlib.metadata.version("strands-agents"),
    )
    assert start["tags"] == ["strands.agent_id:default"]
    assert _payloads(chain, "MODEL_REQUEST")[0]["model"] == "scripted-model"
    response = _payloads(chain, "MODEL_RESPONSE")[0]
    assert response["finish_reason"] == "tool_use"
    assert response["usage"] == {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}
    calls, results = _payloads(chain, "TOOL_CALL"), _payloads(chain, "TOOL_RESULT")
    assert [(c["tool_name"], c["tool_id"]) for c in calls] == [("lookup_order", "call_1"), ("refund", "call_2")]
    assert calls[0]["args_hash"] == payload_hash({"order_id": "A1"})
    assert [(r["tool_id"], r["status"]) for r in results] == [("call_1", "success"), ("call_2", "error")]
    assert _payloads(chain, "ERROR") == [
        {
            "error_type": "GatewayDownError",
            "message": "payment gateway timed out",
            "fatal": False,
            "tool_id": "call_2",
            "tool_name": "refund",
        }
    ]
    assert chain[-1]["payload"]["status"] == "success"
    assert b"dana@example.com" not in fake.chain_bytes(session_id)


def test_each_invocation_is_its_own_session_and_a_failed_model_call_fails_it(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    hooks = AgentOpsHooks(client, agent_id="billing-agent", environment="dev")
    model = strands_model("Hello.", ConnectionError("model endpoint unreachable"))
    agent = Agent(model=model, hooks=[hooks], callback_handler=None)

    agent("hi")
    with pytest.raises(ConnectionError):
        agent("again")
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert len(fake.chains) == 2
    ends = {}
    for session_id in fake.chains:
        assert_verifies(fake, session_id)
        chain = stored_chain(fake, session_id)
        assert chain[0]["payload"]["agent_id"] == "billing-agent"
        assert chain[0]["payload"]["environment"] == "dev"
        ends[chain[-1]["payload"]["status"]] = chain
    assert sorted(ends) == ["failure", "success"]
    failed = ends["failure"]
    assert failed[-1]["payload"]["reason"] == "ConnectionError"
    assert _payloads(failed, "ERROR")[0]["error_type"] == "ConnectionError"


class ApprovalGate(HookProvider):
    """Asks a person before any refund: a Strands interrupt."""

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.approve)

    def approve(self, event: BeforeToolCallEvent) -> None:
        if event.tool_use["name"] == "refund":
            answer = event.interrupt("refund-approval", reason="refunds need a person")
            if answer != "approved":
                event.cancel_tool = "not approved"


def test_an_interrupted_invocation_ends_cancelled_and_its_resumption_is_a_new_session(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    model = strands_model([("refund", "tooluse-7", {"order_id": "A1"})], "Not refunded.")
    agent = Agent(
        model=model,
        tools=strands_tools(),
        hooks=[AgentOpsHooks(client), ApprovalGate()],
        name="support",
        callback_handler=None,
    )

    paused = agent("Refund A1")
    assert paused.stop_reason == "interrupt"
    assert paused.interrupts is not None
    responses: list[InterruptResponseContent] = [
        {"interruptResponse": {"interruptId": paused.interrupts[0].id, "response": "denied"}}
    ]
    agent(responses)
    assert client.flush(timeout=10)
    client.close(timeout=1)

    by_end = {}
    for session_id in fake.chains:
        assert_verifies(fake, session_id)
        by_end[stored_chain(fake, session_id)[-1]["payload"]["status"]] = stored_chain(fake, session_id)
    interrupted = by_end["cancelled"]
    assert interrupted[-1]["payload"]["reason"] == "interrupted"
    assert _payloads(interrupted, "ERROR") == []
    # the call the interrupt stopped is answered in its own session
    assert [(c["tool_id"]) for c in _payloads(interrupted, "TOOL_CALL")] == ["tooluse-7"]
    assert [(r["tool_id"], r["status"]) for r in _payloads(interrupted, "TOOL_RESULT")] == [
        ("tooluse-7", "interrupted")
    ]
    resumed = by_end["success"]
    assert [(r["tool_id"], r["status"]) for r in _payloads(resumed, "TOOL_RESULT")] == [("tooluse-7", "error")]


# Strands reads the global OpenTelemetry tracer provider once per process, so this runs in a process of its own.
_STRANDS_WITH_OTEL = """
import sys
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from strands import Agent
from strands.telemetry import StrandsTelemetry
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.otel import AgentOpsSpanExporter
from tests.functional.sdk.scripted_agents import TWO_TOOLS_ONE_FAILING, strands_model, strands_tools

client = AgentOpsClient(local_path=sys.argv[1], flush_interval=0.05)
telemetry = StrandsTelemetry()  # creates the global tracer provider Strands records its spans with
telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(AgentOpsSpanExporter(client, agent_id="support")))
model = strands_model(*TWO_TOOLS_ONE_FAILING)
Agent(model=model, tools=strands_tools(), name="support", callback_handler=None)("Refund A1")
assert client.close(timeout=5)
"""


def test_strands_opentelemetry_spans_recorded_by_the_otel_exporter_make_a_verifying_session(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", _STRANDS_WITH_OTEL, str(tmp_path)], cwd=REPO_ROOT, check=True, timeout=120)

    (chain_file,) = tmp_path.iterdir()
    report = verify_bytes(chain_file.read_bytes())
    assert (report.status, report.evidence_class) == (PASS, NON_AUTHORITATIVE_EVIDENCE), report.violations
    chain = [loads(line) for line in chain_file.read_bytes().splitlines()]
    assert [(c["tool_name"], c["tool_id"]) for c in _payloads(chain, "TOOL_CALL")] == [
        ("lookup_order", "call_1"),
        ("refund", "call_2"),
    ]
    assert [(r["tool_id"], r["status"]) for r in _payloads(chain, "TOOL_RESULT")] == [
        ("call_1", "success"),
        ("call_2", "error"),
    ]
    (error,) = _payloads(chain, "ERROR")
    assert error["tool_id"] == "call_2"
    assert _payloads(chain, "MODEL_REQUEST")[0]["model"] == "scripted-model"
    assert chain[-2]["event_type"] == "SESSION_END"
