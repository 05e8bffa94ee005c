"""The SDK against the local stack over real HTTP: record, end, seal, download, verify as an auditor would."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from agentops_replay import AgentOpsClient, Session
from agentops_verify import AUTHORITATIVE_EVIDENCE, PASS, Report, TrustStore, parse_key_file, verify_bytes

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle

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


def _sealed_report(api: ApiClient, local_stack: LocalStackHandle, session_id: str) -> Report:
    """Seal now, download the archived chain through /chain, verify it offline with the keys from /v1/keys."""
    assert session_id in local_stack.seal_now()
    chain = api.get(f"/v1/sessions/{session_id}/chain")
    assert chain.status == 200, chain.body
    with urllib.request.urlopen(chain.json()["url"], timeout=30) as response:  # presigned: no credentials
        archive = response.read()
    assert hashlib.sha256(archive).hexdigest() == chain.json()["sha256"]
    keys = api.get("/v1/keys")
    assert keys.status == 200
    return verify_bytes(archive, trust=TrustStore(parse_key_file(keys.body)))


def test_a_200_event_session_recorded_by_the_sdk_seals_as_authoritative_evidence(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient
) -> None:
    with client.session("integration-agent", environment="dev", tags=["integration"]) as session:
        for turn in range(50):
            session.model_request("gpt-test", messages=[{"role": "user", "content": f"turn {turn}"}])
            session.model_response("gpt-test", content=f"answer {turn}", finish_reason="stop")
            session.tool_call("lookup", args={"turn": turn}, tool_id=f"call-{turn}")
            session.tool_result("lookup", result={"ok": True}, tool_id=f"call-{turn}", status="success")
    assert client.flush(timeout=60)
    assert client.stats()["sent"] == 202

    report = _sealed_report(api, local_stack, session.session_id)

    assert (report.status, report.evidence_class) == (PASS, AUTHORITATIVE_EVIDENCE), report.violations
    assert report.event_count == 203
    assert report.session_id == session.session_id
    assert report.total_drops == 0


def test_a_langchain_run_is_accepted_and_seals_as_authoritative_evidence(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient
) -> None:
    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import tool

    @tool
    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order."""
        return {"order_id": order_id, "status": "delivered"}

    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A1"}, "id": "c1"}]),
                AIMessage(content="Order A1 was delivered."),
            ]
        )
    )
    with client.session("langchain-agent", framework="langchain") as session:
        config = RunnableConfig(callbacks=[AgentOpsCallbackHandler(session)])
        reply = model.invoke([HumanMessage(content="Where is A1?")], config=config)
        assert isinstance(reply, AIMessage)
        lookup_order.invoke(reply.tool_calls[0]["args"], config=config)
        model.invoke([HumanMessage(content="Where is A1?")], config=config)
    assert client.flush(timeout=60)
    assert client.stats()["rejected"] == 0

    report = _sealed_report(api, local_stack, session.session_id)

    assert (report.status, report.evidence_class) == (PASS, AUTHORITATIVE_EVIDENCE), report.violations
    assert report.event_count == 9  # start, 2 x (request, response), tool call and result, end, seal


def test_an_opentelemetry_run_is_accepted_and_seals_as_authoritative_evidence(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops_replay.integrations.otel import AgentOpsSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    started: list[Session] = []
    start_session = client.start_session

    def recording_start_session(*args: Any, **kwargs: Any) -> Session:
        started.append(start_session(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(client, "start_session", recording_start_session)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(AgentOpsSpanExporter(client)))
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("invoke_agent") as agent_span:
        agent_span.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat m") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "m",
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.usage.input_tokens": 3,
                }
            )
        with tracer.start_as_current_span("execute_tool lookup") as tool_span:
            tool_span.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"})
    assert client.flush(timeout=60)
    assert client.stats()["rejected"] == 0
    assert len(started) == 1

    report = _sealed_report(api, local_stack, started[0].session_id)

    assert (report.status, report.evidence_class) == (PASS, AUTHORITATIVE_EVIDENCE), report.violations
    assert report.event_count == 7  # start, request, response, tool call, tool result, end, seal
