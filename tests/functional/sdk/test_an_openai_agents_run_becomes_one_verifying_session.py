"""OpenAI Agents SDK: real ``Runner`` runs with the SDK's own chat completions and responses models, answered by a
scripted OpenAI API (an httpx mock transport, no network), recorded through AgentOpsTracingProcessor into the fake
ingestion service (which validates like the real one)."""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.openai_agents import AgentOpsTracingProcessor
from agentops_verify import payload_hash
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    RunConfig,
    RunContextWrapper,
    Runner,
    TResponseInputItem,
    input_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tracing import set_trace_processors

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest
from tests.functional.sdk.scripted_agents import FINAL_ANSWER, PROMPT, openai_agent

Ingest = tuple[FakeIngest, str]


@pytest.fixture
def recorded(ingest: Ingest) -> Iterator[tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor]]:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    processor = AgentOpsTracingProcessor(client)
    set_trace_processors([processor])  # also keeps the SDK's default exporter (to OpenAI) off the network
    yield fake, client, processor
    set_trace_processors([])
    client.close(timeout=1)


def _payloads(chain: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event["payload"] for event in chain if event["event_type"] == event_type]


@pytest.mark.parametrize("responses_api", [False, True], ids=["chat-completions", "responses"])
def test_a_run_with_a_failing_tool_becomes_one_verifying_session(
    recorded: tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor], responses_api: bool
) -> None:
    fake, client, processor = recorded
    trace_id = f"trace_{uuid.uuid4().hex}"
    run_config = RunConfig(group_id="conv-7", trace_id=trace_id)
    result = Runner.run_sync(openai_agent(responses_api=responses_api), PROMPT, run_config=run_config)
    assert client.flush(timeout=10)

    assert result.final_output == FINAL_ANSWER
    (session_id,) = fake.chains
    assert processor.session_id_of_trace(trace_id) == session_id
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
        "AGENT_STATE_SNAPSHOT",
        "SESSION_END",
    ]
    start = chain[0]["payload"]
    assert start["agent_id"] == "support"
    assert (start["framework"], start["framework_version"]) == (
        "openai-agents",
        importlib.metadata.version("openai-agents"),
    )
    assert "openai_agents.group_id:conv-7" in start["tags"]
    assert _payloads(chain, "MODEL_REQUEST")[0]["model"] == "gpt-scripted"
    # paired by the model's own call ids
    calls, results = _payloads(chain, "TOOL_CALL"), _payloads(chain, "TOOL_RESULT")
    assert [(c["tool_name"], c["tool_id"]) for c in calls] == [("lookup_order", "call_1"), ("refund", "call_2")]
    assert calls[0]["args_hash"] == payload_hash(json.dumps({"order_id": "A1"}))
    assert [(r["tool_id"], r["status"]) for r in results] == [("call_1", "success"), ("call_2", "error")]
    (error,) = _payloads(chain, "ERROR")
    assert (error["tool_id"], error["tool_name"], error["fatal"]) == ("call_2", "refund", False)
    snapshot = _payloads(chain, "AGENT_STATE_SNAPSHOT")[0]["state"]
    assert (snapshot["agent"], snapshot["tools"]) == ("support", ["lookup_order", "refund"])
    assert chain[-1]["payload"]["status"] == "success"
    assert b"dana@example.com" not in fake.chain_bytes(session_id)


def test_a_handoff_is_recorded_as_a_decision_between_the_two_agents(
    recorded: tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor],
) -> None:
    fake, client, _ = recorded
    billing = Agent(name="billing", model=ScriptedModel([[assistant_message("Billing: refunded.")]]))
    triage = Agent(
        name="triage",
        model=ScriptedModel([[function_call("transfer_to_billing", {}, call_id="call_h")]]),
        handoffs=[billing],
    )

    assert Runner.run_sync(triage, "I need a refund").final_output == "Billing: refunded."
    assert client.flush(timeout=10)

    (session_id,) = fake.chains
    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    (handoff,) = _payloads(chain, "DECISION_TRACE")
    assert (handoff["inputs"], handoff["outputs"]) == ({"from_agent": "triage"}, {"to_agent": "billing"})
    agents = [p["state"]["agent"] for p in _payloads(chain, "AGENT_STATE_SNAPSHOT")]
    assert agents == ["triage", "billing"]
    assert chain[0]["payload"]["agent_id"] == "triage"


@input_guardrail
async def no_account_numbers(
    context: RunContextWrapper[Any], agent: Agent[Any], user_input: str | list[TResponseInputItem]
) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="account" in str(user_input))


def test_a_guardrail_tripwire_is_a_decision_and_fails_the_session(
    recorded: tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor],
) -> None:
    fake, client, _ = recorded
    agent = Agent(
        name="support", model=ScriptedModel([[assistant_message("never said")]]), input_guardrails=[no_account_numbers]
    )

    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(agent, "my account number is 12345678")
    assert client.flush(timeout=10)

    (session_id,) = fake.chains
    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    (guardrail,) = _payloads(chain, "DECISION_TRACE")
    assert (guardrail["inputs"], guardrail["outputs"]) == ({"guardrail": "no_account_numbers"}, {"triggered": True})
    assert [e["fatal"] for e in _payloads(chain, "ERROR")] == [True]
    end = chain[-1]["payload"]
    assert (end["status"], end["reason"]) == ("failure", "Guardrail tripwire triggered")


def test_a_model_that_fails_fails_the_session_with_an_error(
    recorded: tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor],
) -> None:
    fake, client, _ = recorded
    agent = Agent(name="support", model=ScriptedModel([ConnectionError("model endpoint unreachable")]))

    with pytest.raises(ConnectionError):
        Runner.run_sync(agent, "hi")
    assert client.flush(timeout=10)

    (session_id,) = fake.chains
    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    (error,) = _payloads(chain, "ERROR")
    assert (error["message"], error["fatal"]) == ("model endpoint unreachable", True)
    assert chain[-1]["payload"]["status"] == "failure"
