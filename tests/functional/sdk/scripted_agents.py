"""Agents of the three frameworks on scripted models (no network), each with two tools of which one fails.

Each ``run_*`` runs the real framework package: a Strands ``Agent`` on a Strands model provider that streams scripted
turns; an OpenAI Agents ``Runner`` on the SDK's own chat completions model, whose OpenAI client is answered by an
httpx mock transport; LangGraph's prebuilt tool-calling agent on a scripted LangChain chat model. The failing tool
raises ``GatewayDownError``; the model's calls carry the ids ``call_1`` (lookup_order) and ``call_2`` (refund).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from agentops_replay import AgentOpsClient
from openai import AsyncOpenAI

# A turn of a script: a text answer, tool calls as (function name, call id, arguments), or an exception to raise.
Call = tuple[str, str, dict[str, Any]]
Turn = str | list[Call] | Exception
TWO_TOOLS_ONE_FAILING: tuple[Turn, ...] = (
    [("lookup_order", "call_1", {"order_id": "A1"})],
    [("refund", "call_2", {"order_id": "A1"})],
    "The refund failed; I escalated it.",
)
FINAL_ANSWER = "The refund failed; I escalated it."
PROMPT = "Refund order A1, my email is dana@example.com"


class GatewayDownError(RuntimeError):
    pass


def lookup_order_impl(order_id: str) -> dict[str, str]:
    """Look up an order."""
    return {"order_id": order_id, "status": "delivered"}


def refund_impl(order_id: str) -> str:
    """Refund an order."""
    raise GatewayDownError("payment gateway timed out")


# -- Strands Agents ----------------------------------------------------------------------------------------------


def strands_model(*turns: Turn) -> Any:
    from strands.models.model import Model

    class ScriptedStrandsModel(Model):
        """A Strands model provider that streams scripted turns in the Bedrock ConverseStream event format."""

        def __init__(self) -> None:
            self.turns = list(turns)
            self.config: dict[str, Any] = {"model_id": "scripted-model"}

        def update_config(self, **model_config: Any) -> None:
            self.config.update(model_config)

        def get_config(self) -> dict[str, Any]:
            return self.config

        def structured_output(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the scripted agents never ask for structured output")

        async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            turn = self.turns.pop(0)
            if isinstance(turn, Exception):
                raise turn
            yield {"messageStart": {"role": "assistant"}}
            if isinstance(turn, str):
                yield {"contentBlockStart": {"start": {}}}
                yield {"contentBlockDelta": {"delta": {"text": turn}}}
                yield {"contentBlockStop": {}}
                yield {"messageStop": {"stopReason": "end_turn"}}
            else:
                for name, tool_use_id, arguments in turn:
                    yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": tool_use_id}}}}
                    yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(arguments)}}}}
                    yield {"contentBlockStop": {}}
                yield {"messageStop": {"stopReason": "tool_use"}}
            yield {"metadata": {"usage": {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}, "metrics": {}}}

    return ScriptedStrandsModel()


def strands_tools() -> list[Any]:
    from strands import tool

    return [tool(name="lookup_order")(lookup_order_impl), tool(name="refund")(refund_impl)]


def run_strands(client: AgentOpsClient) -> str:
    """One invocation of a Strands agent; returns the id of its session."""
    from agentops_replay.integrations.strands import AgentOpsHooks
    from strands import Agent

    hooks = AgentOpsHooks(client)
    agent = Agent(
        model=strands_model(*TWO_TOOLS_ONE_FAILING),
        tools=strands_tools(),
        hooks=[hooks],
        name="support",
        callback_handler=None,
    )
    assert str(agent(PROMPT)).strip() == FINAL_ANSWER
    session_id = hooks.last_session_id(agent)
    assert session_id is not None
    return session_id


# -- OpenAI Agents SDK -------------------------------------------------------------------------------------------


def _chat_completion(turn: Turn) -> dict[str, Any]:
    if isinstance(turn, str):
        message: dict[str, Any] = {"role": "assistant", "content": turn}
        finish_reason = "stop"
    else:
        assert isinstance(turn, list)
        calls = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            for name, call_id, arguments in turn
        ]
        message = {"role": "assistant", "content": None, "tool_calls": calls}
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
        assert isinstance(turn, list)
        output = [
            {
                "type": "function_call",
                "id": f"fc_{call_id}",
                "call_id": call_id,
                "name": name,
                "arguments": json.dumps(arguments),
                "status": "completed",
            }
            for name, call_id, arguments in turn
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


def scripted_openai(*turns: Turn, responses_api: bool = False) -> AsyncOpenAI:
    """An OpenAI client whose API answers each request with the next turn of the script (chat completions, or the
    responses API)."""
    script = list(turns)

    def answer(request: httpx2.Request) -> httpx2.Response:
        turn = script.pop(0)
        return httpx2.Response(200, json=_response(turn) if responses_api else _chat_completion(turn))

    transport = httpx2.MockTransport(answer)
    return AsyncOpenAI(
        api_key="sk-scripted", base_url="http://openai.invalid/v1", http_client=httpx2.AsyncClient(transport=transport)
    )


def openai_agents_tools() -> list[Any]:
    from agents import function_tool

    return [
        function_tool(lookup_order_impl, name_override="lookup_order"),
        function_tool(refund_impl, name_override="refund"),
    ]


def openai_agent(*, responses_api: bool = False) -> Any:
    from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel

    openai = scripted_openai(*TWO_TOOLS_ONE_FAILING, responses_api=responses_api)
    model_class = OpenAIResponsesModel if responses_api else OpenAIChatCompletionsModel
    return Agent(
        name="support",
        instructions="Help with orders.",
        model=model_class(model="gpt-scripted", openai_client=openai),
        tools=openai_agents_tools(),
    )


def run_openai_agents(client: AgentOpsClient) -> str:
    """One run of an OpenAI Agents SDK agent, traced only to AgentOps Replay; returns the id of its session."""
    import uuid

    from agentops_replay.integrations.openai_agents import AgentOpsTracingProcessor
    from agents import RunConfig, Runner
    from agents.tracing import set_trace_processors

    processor = AgentOpsTracingProcessor(client)
    set_trace_processors([processor])  # also keeps the SDK's default exporter (to OpenAI) off the network
    try:
        trace_id = f"trace_{uuid.uuid4().hex}"
        result = Runner.run_sync(openai_agent(), PROMPT, run_config=RunConfig(trace_id=trace_id))
    finally:
        set_trace_processors([])
    assert result.final_output == FINAL_ANSWER
    session_id = processor.session_id_of_trace(trace_id)
    assert session_id is not None
    return session_id


# -- LangGraph ---------------------------------------------------------------------------------------------------


def langgraph_model(*turns: Turn) -> Any:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class ScriptedChatModel(GenericFakeChatModel):
        """A chat model that answers from a script; the prebuilt agent binds tools to it, which it ignores."""

        def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
            return self

    messages = []
    for turn in turns:
        if isinstance(turn, str):
            messages.append(AIMessage(content=turn))
        else:
            assert isinstance(turn, list)
            calls = [{"name": name, "args": arguments, "id": call_id} for name, call_id, arguments in turn]
            messages.append(AIMessage(content="", tool_calls=calls))
    return ScriptedChatModel(messages=iter(messages))


def langgraph_tools() -> list[Any]:
    from langchain_core.tools import StructuredTool

    return [
        StructuredTool.from_function(lookup_order_impl, name="lookup_order"),
        StructuredTool.from_function(refund_impl, name="refund"),
    ]


def langgraph_agent(model: Any, tools: Any, **options: Any) -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():  # create_react_agent is deprecated in favour of langchain's create_agent
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_react_agent(model, tools, **options)


def run_langgraph(client: AgentOpsClient) -> str:
    """One run of LangGraph's prebuilt agent, its failing tool's error handed back to the model; returns the id of
    its session."""
    from agentops_replay.integrations.langchain import recorded_run
    from langchain_core.messages import HumanMessage
    from langgraph.prebuilt import ToolNode

    graph = langgraph_agent(
        langgraph_model(*TWO_TOOLS_ONE_FAILING), ToolNode(langgraph_tools(), handle_tool_errors=True)
    )
    with recorded_run(client, "support") as handler:
        result = graph.invoke({"messages": [HumanMessage(content=PROMPT)]}, config={"callbacks": [handler]})
    assert result["messages"][-1].content == FINAL_ANSWER
    return handler.session.session_id
