"""OpenTelemetry: GenAI semantic-convention spans on a local TracerProvider become recorded sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.otel import AgentOpsSpanExporter
from agentops_verify import payload_hash
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest

Ingest = tuple[FakeIngest, str]


@pytest.fixture
def recorded(ingest: Ingest) -> Iterator[tuple[FakeIngest, AgentOpsClient, TracerProvider]]:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(AgentOpsSpanExporter(client, agent_id="otel-agent")))
    yield fake, client, provider
    client.close(timeout=1)


def _only_session(fake: FakeIngest) -> str:
    assert len(fake.chains) == 1
    return next(iter(fake.chains))


def test_an_instrumented_agent_run_becomes_one_verifying_session(
    recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider],
) -> None:
    fake, client, provider = recorded
    tracer = provider.get_tracer("agent")
    messages = [{"role": "user", "parts": [{"type": "text", "content": "weather in Paris?"}]}]

    with tracer.start_as_current_span("invoke_agent planner") as agent_span:
        trace_id = agent_span.get_span_context().trace_id
        agent_span.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent_span.set_attribute("gen_ai.agent.name", "planner")
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.request.temperature": 0.1,
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.response.finish_reasons": ["tool_calls"],
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 5,
                    "gen_ai.input.messages": json.dumps(messages),
                }
            )
        with tracer.start_as_current_span("execute_tool get_weather") as tool_span:
            tool_span.set_attributes(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.call.id": "call-9",
                    "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                }
            )
        with tracer.start_as_current_span("an unrelated http span"):
            pass
    assert client.flush(timeout=10)

    session_id = _only_session(fake)
    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "TOOL_CALL",
        "TOOL_RESULT",
        "SESSION_END",
    ]
    start, request, response, call, result, end = (event["payload"] for event in chain)
    # Spans end children first: the session starts with the first GenAI span to end, before the agent span.
    assert start["agent_id"] == "otel-agent"
    assert start["tags"] == [f"otel.trace_id:{trace_id:032x}"]
    assert request == {
        "model": "gpt-4o",
        "provider": "openai",
        "parameters": {"temperature": 0.1},
        "prompt_hash": payload_hash(messages),
    }
    assert response == {
        "model": "gpt-4o-2024-08-06",
        "finish_reason": "tool_calls",
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }
    assert call == {"tool_name": "get_weather", "tool_id": "call-9", "args_hash": payload_hash({"city": "Paris"})}
    assert result["status"] == "success"
    assert end["status"] == "success"


def test_spans_of_one_conversation_share_a_session_that_ends_at_shutdown(
    recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider],
) -> None:
    fake, client, provider = recorded
    tracer = provider.get_tracer("agent")

    for turn in range(2):  # two separate traces
        with tracer.start_as_current_span(f"chat turn {turn}") as chat:
            chat.set_attributes(
                {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.conversation.id": "conv-1"}
            )
    assert client.flush(timeout=10)
    assert fake.event_types(_only_session(fake))[-1] == "MODEL_RESPONSE"  # still open between turns
    provider.shutdown()
    assert client.flush(timeout=10)

    assert_verifies(fake, _only_session(fake))
    chain = stored_chain(fake, _only_session(fake))
    assert [event["event_type"] for event in chain].count("MODEL_REQUEST") == 2
    assert chain[0]["payload"]["conversation_id"] == "conv-1"
    assert chain[0]["payload"]["tags"][1:] == ["gen_ai.conversation.id:conv-1"]
    assert chain[-1]["event_type"] == "SESSION_END"


def test_a_failed_tool_span_records_an_error_and_fails_the_trace_session(
    recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider],
) -> None:
    fake, client, provider = recorded
    tracer = provider.get_tracer("agent")

    with tracer.start_as_current_span("invoke_agent") as agent_span:
        agent_span.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("execute_tool refund") as tool_span:
            tool_span.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"})
            tool_span.set_attribute("error.type", "TimeoutError")
            tool_span.set_status(Status(StatusCode.ERROR, "gateway timed out"))
        agent_span.set_attribute("error.type", "TimeoutError")
        agent_span.set_status(Status(StatusCode.ERROR, "tool failed"))
    assert client.flush(timeout=10)

    assert_verifies(fake, _only_session(fake))
    chain = stored_chain(fake, _only_session(fake))
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "TOOL_CALL",
        "TOOL_RESULT",
        "ERROR",
        "ERROR",
        "SESSION_END",
    ]
    assert chain[2]["payload"]["status"] == "error"
    assert chain[3]["payload"] == {
        "error_type": "TimeoutError",
        "message": "gateway timed out",
        "fatal": False,
        "tool_id": chain[1]["payload"]["tool_id"],  # the failing tool's call
    }
    assert chain[-1]["payload"]["status"] == "failure"


def test_the_exporter_never_installs_itself_globally(
    recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider],
) -> None:
    _, _, provider = recorded

    assert trace.get_tracer_provider() is not provider


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idle_recorded(ingest: Ingest) -> Iterator[tuple[FakeIngest, AgentOpsClient, TracerProvider, _Clock]]:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    clock = _Clock()
    provider = TracerProvider()
    exporter = AgentOpsSpanExporter(client, agent_id="otel-agent", idle_seconds=60, clock=clock)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield fake, client, provider, clock
    client.close(timeout=1)


def _chat_turn(provider: TracerProvider, conversation: str) -> None:
    with provider.get_tracer("agent").start_as_current_span("chat") as chat:
        chat.set_attributes(
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.conversation.id": conversation}
        )


def test_an_idle_conversation_ends_with_timeout_and_its_next_span_starts_a_new_session(
    idle_recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider, _Clock],
) -> None:
    fake, client, provider, clock = idle_recorded
    _chat_turn(provider, "conv-1")
    clock.now += 61
    _chat_turn(provider, "conv-1")
    assert client.flush(timeout=10)

    first, second = sorted(fake.chains, key=lambda session_id: fake.event_types(session_id)[-1] != "SESSION_END")
    for session_id in (first, second):
        assert_verifies(fake, session_id)
        assert stored_chain(fake, session_id)[0]["payload"]["conversation_id"] == "conv-1"
    assert fake.event_types(first) == ["SESSION_START", "MODEL_REQUEST", "MODEL_RESPONSE", "SESSION_END"]
    (end,) = fake.payloads(first, "SESSION_END")
    assert (end["status"], end["reason"]) == ("timeout", "no GenAI span for 60 s")
    assert fake.event_types(second)[-1] == "MODEL_RESPONSE"  # the new session is open until shutdown or idle


def test_only_the_conversations_idle_long_enough_end(
    idle_recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider, _Clock],
) -> None:
    fake, client, provider, clock = idle_recorded
    for at, conversation in ((0, "a"), (30, "b"), (50, "a"), (95, "c")):  # at 95: b idle 65 s, a 45 s
        clock.now = 1000.0 + at
        _chat_turn(provider, conversation)
    assert client.flush(timeout=10)

    by_conversation = {
        stored_chain(fake, session_id)[0]["payload"]["conversation_id"]: session_id for session_id in fake.chains
    }
    assert sorted(by_conversation) == ["a", "b", "c"]
    assert fake.event_types(by_conversation["b"])[-1] == "SESSION_END"
    assert fake.event_types(by_conversation["a"]).count("MODEL_REQUEST") == 2
    assert fake.event_types(by_conversation["a"])[-1] == fake.event_types(by_conversation["c"])[-1] == "MODEL_RESPONSE"


def test_a_conversation_with_spans_closer_than_the_idle_time_stays_one_session(
    idle_recorded: tuple[FakeIngest, AgentOpsClient, TracerProvider, _Clock],
) -> None:
    fake, client, provider, clock = idle_recorded
    for _ in range(3):
        _chat_turn(provider, "conv-2")
        clock.now += 59
    provider.shutdown()
    assert client.flush(timeout=10)

    chain = stored_chain(fake, _only_session(fake))
    assert [event["event_type"] for event in chain].count("MODEL_REQUEST") == 3
    assert chain[-1]["payload"]["status"] == "success"


def test_without_an_idle_time_a_conversation_stays_open_until_shutdown(ingest: Ingest) -> None:
    fake, endpoint = ingest
    clock = _Clock()
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    try:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(AgentOpsSpanExporter(client, idle_seconds=None, clock=clock)))
        _chat_turn(provider, "conv-3")
        clock.now += 10**6
        _chat_turn(provider, "conv-3")
        assert client.flush(timeout=10)
        assert fake.event_types(_only_session(fake)).count("MODEL_REQUEST") == 2
        assert fake.event_types(_only_session(fake))[-1] == "MODEL_RESPONSE"
    finally:
        client.close(timeout=1)


def test_the_session_of_a_trace_can_be_found_from_its_trace_id(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05)
    exporter = AgentOpsSpanExporter(client)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agent")
    trace_ids = []
    for conversation in ("conv-a", "conv-a", None):
        with tracer.start_as_current_span("chat") as chat:
            trace_ids.append(chat.get_span_context().trace_id)
            chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})
            if conversation is not None:
                chat.set_attribute("gen_ai.conversation.id", conversation)
    provider.shutdown()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    first, second, third = (exporter.session_id_of_trace(trace_id) for trace_id in trace_ids)
    assert first is not None
    assert third is not None
    assert first == second != third  # both traces of the conversation went to its session
    assert exporter.session_id_of_trace(f"{trace_ids[2]:032X}") == third  # its hex form, either case
    assert exporter.session_id_of_trace(12345) is None
    assert set(fake.chains) == {first, third}
    assert stored_chain(fake, third)[0]["payload"]["tags"] == [f"otel.trace_id:{trace_ids[2]:032x}"]
