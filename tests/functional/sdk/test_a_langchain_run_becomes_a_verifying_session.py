"""LangChain: a tool-calling run on langchain-core's fake chat models, recorded through AgentOpsCallbackHandler."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.langchain import AgentOpsCallbackHandler
from agentops_verify import payload_hash
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest

Ingest = tuple[FakeIngest, str]


class GatewayDownError(RuntimeError):
    pass


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order."""
    return {"order_id": order_id, "status": "delivered"}


@tool
def refund(order_id: str) -> str:
    """Refund an order."""
    raise GatewayDownError("payment gateway timed out")


def _run_agent(config: RunnableConfig) -> str:
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A1"}, "id": "c1"}]),
                AIMessage(content="", tool_calls=[{"name": "refund", "args": {"order_id": "A1"}, "id": "c2"}]),
                AIMessage(content="The refund could not be issued; I escalated it."),
            ]
        )
    )
    tools = {"lookup_order": lookup_order, "refund": refund}
    messages: list[BaseMessage] = [HumanMessage(content="Refund order A1, my email is dana@example.com")]
    while True:
        reply = model.invoke(messages, config=config)
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            return str(reply.content)
        for call in reply.tool_calls:
            try:
                output = tools[call["name"]].invoke(call["args"], config=config)
            except GatewayDownError as exc:
                output = f"error: {exc}"
            messages.append(ToolMessage(content=str(output), tool_call_id=call["id"] or ""))


def test_a_tool_calling_run_becomes_a_verifying_session_without_its_content(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)

    with client.session("support-agent", framework="langchain") as session:
        answer = _run_agent(RunnableConfig(callbacks=[AgentOpsCallbackHandler(session)]))
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert answer.startswith("The refund could not be issued")
    assert_verifies(fake, session.session_id)
    chain = stored_chain(fake, session.session_id)
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
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in chain:
        by_type.setdefault(event["event_type"], []).append(event["payload"])
    assert all("prompt_hash" in p and "messages" not in p for p in by_type["MODEL_REQUEST"])
    assert all("content_hash" in p and "content" not in p for p in by_type["MODEL_RESPONSE"])
    call, failed_call = by_type["TOOL_CALL"]
    assert call["tool_name"] == "lookup_order"
    assert call["args_hash"] == payload_hash({"order_id": "A1"})
    result = by_type["TOOL_RESULT"][0]
    assert result["tool_id"] == call["tool_id"]
    assert result["status"] == "success"
    assert result["result_hash"] == payload_hash({"order_id": "A1", "status": "delivered"})
    assert failed_call["tool_name"] == "refund"
    assert by_type["ERROR"] == [
        {
            "error_type": "GatewayDownError",
            "message": "payment gateway timed out",
            "fatal": False,
            "tool_id": failed_call["tool_id"],  # the failing tool's call, not just "an error happened"
            "tool_name": "refund",
        }
    ]
    assert b"dana@example.com" not in fake.chain_bytes(session.session_id)


def test_content_capture_records_messages_usage_and_finish_reason(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05, capture_content=True)
    model = FakeListChatModel(responses=["hello there"])

    with client.session("chat-agent") as session:
        model.invoke("hi", config=RunnableConfig(callbacks=[AgentOpsCallbackHandler(session)]))
    assert client.flush(timeout=10)
    client.close(timeout=1)

    request, response = (
        fake.payloads(session.session_id, "MODEL_REQUEST")[0],
        fake.payloads(session.session_id, "MODEL_RESPONSE")[0],
    )
    assert request["messages"] == [[{"role": "human", "content": "hi"}]]
    assert request["model"] != "unknown"
    assert response["content"] == [{"role": "ai", "content": "hello there"}]


def test_agent_decisions_and_a_failing_chain_are_recorded(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    session = client.start_session("agent")
    handler = AgentOpsCallbackHandler(session)

    def explode(_: Any) -> Any:
        raise ValueError("bad plan")

    handler.on_agent_action(
        AgentAction(tool="lookup_order", tool_input={"order_id": "A1"}, log="I should look it up"),
        run_id=uuid.uuid4(),
    )
    handler.on_agent_finish(AgentFinish(return_values={"output": "done"}, log="finished"), run_id=uuid.uuid4())
    with pytest.raises(ValueError, match="bad plan"):
        RunnableLambda(explode).invoke(1, config=RunnableConfig(callbacks=[handler]))
    session.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    decisions = fake.payloads(session.session_id, "DECISION_TRACE")
    assert [d["outputs"] for d in decisions] == [
        {"tool": "lookup_order"},
        {"return_values_hash": payload_hash({"output": "done"})},
    ]
    assert decisions[0]["inputs"] == {"tool_input_hash": payload_hash({"order_id": "A1"})}
    assert decisions[0]["justification"] == "[REDACTED]"
    assert decisions[0]["justification_hash"] == payload_hash("I should look it up")
    assert fake.payloads(session.session_id, "ERROR") == [
        {"error_type": "ValueError", "message": "bad plan", "fatal": True}
    ]


def test_a_callback_that_meets_garbage_does_not_raise_into_langchain(ingest: Ingest) -> None:
    _, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    session = client.start_session("agent")
    handler = AgentOpsCallbackHandler(session)

    handler.on_llm_end(object(), run_id=uuid.uuid4())
    handler.on_chat_model_start(None, [[object()]], run_id=uuid.uuid4())  # type: ignore[arg-type]

    assert client.stats()["internal_errors"] == 2
    client.close(timeout=1)
