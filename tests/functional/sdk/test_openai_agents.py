"""OpenAI Agents SDK: real ``Runner`` runs with the SDK's own chat completions and responses models, answered by a
scripted OpenAI API (an httpx mock transport, no network), recorded through AgentOpsTracingProcessor into the fake
ingestion service (which validates like the real one)."""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.openai_agents import AgentOpsTracingProcessor
from agentops_verify import payload_hash
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    RunContextWrapper,
    Runner,
    TResponseInputItem,
    function_tool,
    input_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tracing import set_trace_processors
from openai import AsyncOpenAI

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest

Ingest = tuple[FakeIngest, str]
# A turn of the script: a text answer, or (function name, call id, arguments) for a tool call.
Turn = str | tuple[str, str, dict[str, Any]]


class GatewayDownError(RuntimeError):
    pass


@function_tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order."""
    return {"order_id": order_id, "status": "delivered"}


@function_tool
def refund(order_id: str) -> str:
    """Refund an order."""
    raise GatewayDownError("payment gateway timed out")


@pytest.fixture
def recorded(ingest: Ingest) -> Iterator[tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor]]:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    processor = AgentOpsTracingProcessor(client)
    set_trace_processors([processor])  # also keeps the SDK's default exporter (to OpenAI) off the network
    yield fake, client, processor
    set_trace_processors([])
    client.close(timeout=1)


def _chat_completion(turn: Turn) -> dict[str, Any]:
    if isinstance(turn, str):
        message: dict[str, Any] = {"role": "assistant", "content": turn}
        finish_reason = "stop"
    else:
        name, call_id, arguments = turn
        function = {"name": name, "arguments": json.dumps(arguments)}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": function}],
        }
        finish_reason = "tool_calls"
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _response(turn: Turn) -> dict[str, Any]:
    if isinstance(turn, str):
        content = [{"type": "output_text", "text": turn, "annotations": []}]
        output: list[dict[str, Any]] = [
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": content}
        ]
    else:
        name, call_id, arguments = turn
        output = [
            {
                "type": "function_call",
                "id": f"fc_{call_id}",
                "call_id": call_id,
                "name": name,
                "arguments": json.dumps(arguments),
                "status": "completed",
            }
        ]
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    return {
        "id": "resp_scripted",
        "object": "response",
        "created_at": 1,
        "model": "gpt-scripted",
        "output": output,
        "status": "completed",
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def _scripted_openai(*turns: Turn, responses_api: bool = False) -> AsyncOpenAI:
    """An OpenAI client whose API answers each request with the next turn of the script."""
    script = list(turns)

    def answer(request: httpx2.Request) -> httpx2.Response:
        turn = script.pop(0)
        return httpx2.Response(200, json=_response(turn) if responses_api else _chat_completion(turn))

    transport = httpx2.MockTransport(answer)
    return AsyncOpenAI(
        api_key="sk-scripted", base_url="http://openai.invalid/v1", http_client=httpx2.AsyncClient(transport=transport)
    )


TWO_TOOLS_ONE_FAILING: tuple[Turn, ...] = (
    ("lookup_order", "call_1", {"order_id": "A1"}),
    ("refund", "call_2", {"order_id": "A1"}),
    "The refund failed; I escalated it.",
)


def _payloads(chain: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event["payload"] for event in chain if event["event_type"] == event_type]


@pytest.mark.parametrize("responses_api", [False, True], ids=["chat-completions", "responses"])
def test_a_run_with_a_failing_tool_becomes_one_verifying_session(
    recorded: tuple[FakeIngest, AgentOpsClient, AgentOpsTracingProcessor], responses_api: bool
) -> None:
    fake, client, processor = recorded
    openai = _scripted_openai(*TWO_TOOLS_ONE_FAILING, responses_api=responses_api)
    model_class = OpenAIResponsesModel if responses_api else OpenAIChatCompletionsModel
    agent = Agent(
        name="support",
        instructions="Help with orders.",
        model=model_class(model="gpt-scripted", openai_client=openai),
        tools=[lookup_order, refund],
    )

    trace_id = f"trace_{uuid.uuid4().hex}"
    run_config = RunConfig(group_id="conv-7", trace_id=trace_id)
    result = Runner.run_sync(agent, "Refund A1, my email is dana@example.com", run_config=run_config)
    assert client.flush(timeout=10)

    assert result.final_output == "The refund failed; I escalated it."
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
