"""LangGraph: the prebuilt tool-calling agent graph, with a scripted chat model, recorded through the LangChain
handler into the fake ingestion service (which validates like the real one)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.langchain import recorded_run
from agentops_verify import payload_hash
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest
from tests.functional.sdk.scripted_agents import (
    FINAL_ANSWER,
    PROMPT,
    TWO_TOOLS_ONE_FAILING,
    GatewayDownError,
    langgraph_agent,
    langgraph_model,
    langgraph_tools,
)

Ingest = tuple[FakeIngest, str]


@tool
def approved_refund(order_id: str) -> str:
    """Refund an order once a person approves it."""
    answer = interrupt({"question": f"Approve the refund of {order_id} for dana@example.com?"})
    return f"refund {answer}"


def _call(name: str, call_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, call_id, {"order_id": "A1"})]


def _payloads(chain: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event["payload"] for event in chain if event["event_type"] == event_type]


def _assert_every_tool_call_is_answered(chain: list[dict[str, Any]]) -> None:
    calls = [payload["tool_id"] for payload in _payloads(chain, "TOOL_CALL")]
    answers = [p["tool_id"] for p in _payloads(chain, "TOOL_RESULT") + _payloads(chain, "ERROR") if "tool_id" in p]
    assert sorted(calls) == sorted(answers)


def test_a_prebuilt_agent_with_a_failing_tool_becomes_one_verifying_session(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    model = langgraph_model(*TWO_TOOLS_ONE_FAILING)
    graph = langgraph_agent(model, ToolNode(langgraph_tools(), handle_tool_errors=True))

    with recorded_run(client, "support-agent") as handler:
        result = graph.invoke({"messages": [HumanMessage(content=PROMPT)]}, config={"callbacks": [handler]})
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert result["messages"][-1].content == FINAL_ANSWER
    (session_id,) = fake.chains
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
        "ERROR",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "SESSION_END",
    ]
    start = chain[0]["payload"]
    assert (start["framework"], start["framework_version"]) == ("langgraph", importlib.metadata.version("langgraph"))
    # paired by the model's own tool call ids
    assert [p["tool_id"] for p in _payloads(chain, "TOOL_CALL")] == ["call_1", "call_2"]
    assert _payloads(chain, "TOOL_RESULT")[0]["tool_id"] == "call_1"
    tool_message = result["messages"][2]  # what the tool answered, as the model saw it
    assert _payloads(chain, "TOOL_RESULT")[0]["result_hash"] == payload_hash(tool_message.content)
    assert _payloads(chain, "ERROR") == [
        {
            "error_type": "GatewayDownError",
            "message": "payment gateway timed out",
            "fatal": False,
            "tool_id": "call_2",
            "tool_name": "refund",
        }
    ]
    _assert_every_tool_call_is_answered(chain)
    assert chain[-1]["payload"]["status"] == "success"
    assert b"dana@example.com" not in fake.chain_bytes(session_id)


def test_a_tool_error_the_graph_does_not_handle_fails_the_session_and_names_the_tool(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    graph = langgraph_agent(langgraph_model(_call("refund", "c9")), langgraph_tools())

    with pytest.raises(GatewayDownError), recorded_run(client, "support-agent") as handler:
        graph.invoke({"messages": [HumanMessage(content="Refund A1")]}, config={"callbacks": [handler]})
    assert client.flush(timeout=10)
    client.close(timeout=1)

    (session_id,) = fake.chains
    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    tool_error, graph_error = _payloads(chain, "ERROR")
    assert (tool_error["tool_id"], tool_error["fatal"]) == ("c9", False)
    assert (graph_error["error_type"], graph_error["fatal"]) == ("GatewayDownError", True)
    _assert_every_tool_call_is_answered(chain)
    end = chain[-1]["payload"]
    assert (end["status"], end["reason"]) == ("failure", "GatewayDownError")


def test_an_interrupted_graph_is_a_pause_not_an_error_and_its_question_stays_private(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    model = langgraph_model(_call("approved_refund", "c2"), "Refund done.")
    graph = langgraph_agent(model, [approved_refund], checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "support-thread-1"}}

    with recorded_run(client, "support-agent") as handler:
        paused = graph.invoke(
            {"messages": [HumanMessage(content="Refund A1")]}, config={**thread, "callbacks": [handler]}
        )
    with recorded_run(client, "support-agent") as resumed_handler:
        resumed = graph.invoke(Command(resume="approved"), config={**thread, "callbacks": [resumed_handler]})
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert paused["__interrupt__"]
    assert resumed["messages"][-1].content == "Refund done."
    first, second = sorted(
        fake.chains, key=lambda session_id: "AGENT_STATE_SNAPSHOT" not in fake.event_types(session_id)
    )
    for session_id in (first, second):
        assert_verifies(fake, session_id)
        _assert_every_tool_call_is_answered(stored_chain(fake, session_id))
    chain = stored_chain(fake, first)
    assert _payloads(chain, "ERROR") == []
    (interrupted,) = _payloads(chain, "TOOL_RESULT")
    assert (interrupted["tool_id"], interrupted["status"]) == ("c2", "interrupted")
    (snapshot,) = _payloads(chain, "AGENT_STATE_SNAPSHOT")
    assert snapshot["state"]["interrupted"] is True
    assert snapshot["state"]["interrupt_ids"] == [paused["__interrupt__"][0].id]
    assert "values_hash" in snapshot["state"]
    end = chain[-1]["payload"]
    assert (end["status"], end["reason"]) == ("cancelled", "interrupted")
    assert b"dana@example.com" not in fake.chain_bytes(first)
    resumed_chain = stored_chain(fake, second)
    assert [p["status"] for p in _payloads(resumed_chain, "TOOL_RESULT")] == ["success"]
    assert resumed_chain[-1]["payload"]["status"] == "success"
