"""Integrations record through ``Session._record_later`` (issue 16): on the framework's thread they capture what an
event is made of, as it is at that moment, and queue it in its place; the sender thread makes the payload, converts
and digests its content and checks it. What was recorded never changes with what the framework does afterwards, and
a payload that cannot be recorded costs only its own event, stated as a LOG_DROP."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay.events import TOOL_CALL
from agentops_replay.integrations import _later
from agentops_replay.integrations.langchain import AgentOpsCallbackHandler
from agentops_replay.privacy import jsonable, snapshot
from agentops_verify import payload_hash
from pydantic import BaseModel

from tests.support.local_chains import local_chain


def _recorder(path: Path, *, capture_content: bool) -> AgentOpsClient:
    # A flush interval far longer than any test: the sender forms a batch only at flush(), after the test has changed
    # the framework's values, so a value captured by reference would show the change.
    return AgentOpsClient(local_path=path, flush_interval=60, capture_content=capture_content)


@pytest.fixture
def capturing(tmp_path: Path) -> Iterator[AgentOpsClient]:
    recorder = _recorder(tmp_path, capture_content=True)
    yield recorder
    recorder.close(timeout=2)


@pytest.fixture
def digesting(tmp_path: Path) -> Iterator[AgentOpsClient]:
    recorder = _recorder(tmp_path, capture_content=False)
    yield recorder
    recorder.close(timeout=2)


def _strands_hooks(client: AgentOpsClient) -> tuple[Any, Any]:
    from agentops_replay.integrations.strands import AgentOpsHooks
    from strands import Agent
    from strands.hooks import BeforeInvocationEvent
    from strands.models.model import Model

    class UncalledModel(Model):
        def update_config(self, **model_config: Any) -> None: ...

        def get_config(self) -> dict[str, Any]:
            return {"model_id": "scripted-model"}

        def structured_output(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the hooks are called directly, never the model")

        def stream(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the hooks are called directly, never the model")

    hooks = AgentOpsHooks(client)
    agent = Agent(model=UncalledModel(), name="support", callback_handler=None)
    hooks._before_invocation(BeforeInvocationEvent(agent=agent))
    return hooks, agent


def test_a_tool_that_changes_its_arguments_after_the_call_does_not_change_what_was_recorded(
    capturing: AgentOpsClient,
) -> None:
    from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
    from strands.types.tools import ToolResult, ToolUse

    hooks, agent = _strands_hooks(capturing)
    order_ids = ["A1"]
    note = {"text": "Lieferung nach Zürich"}
    arguments = {"order_ids": order_ids, "note": note, "amount": 19.99}
    tool_use: ToolUse = {"toolUseId": "call_1", "name": "refund", "input": arguments}
    hooks._before_tool_call(
        BeforeToolCallEvent(agent=agent, selected_tool=None, tool_use=tool_use, invocation_state={})
    )
    # The tool receives its input as arguments, and changes them while it runs.
    order_ids.append("B2")
    note["text"] = "changed"
    block = {"text": "refunded 19.99 EUR"}
    result: ToolResult = {"toolUseId": "call_1", "status": "success", "content": [block]}  # type: ignore[list-item]
    hooks._after_tool_call(
        AfterToolCallEvent(
            agent=agent, selected_tool=None, tool_use=tool_use, invocation_state={}, result=result, duration=0.002
        )
    )
    block["text"] = "changed afterwards"
    session = hooks.session_of(agent)
    assert capturing.flush(timeout=5)

    call, answer = (event["payload"] for event in local_chain(capturing, session)[1:3])
    assert call["args"] == {"order_ids": ["A1"], "note": {"text": "Lieferung nach Zürich"}, "amount": 19.99}
    assert answer["result"] == [{"text": "refunded 19.99 EUR"}]


def test_content_is_digested_on_the_sender_thread_never_on_the_agents(digesting: AgentOpsClient) -> None:
    digested_on: list[threading.Thread] = []
    digest = digesting._buffer.digest

    def watched(value: Any) -> str:
        digested_on.append(threading.current_thread())
        return digest(value)

    digesting._buffer.digest = watched  # type: ignore[assignment]
    session = digesting.start_session("support")
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    arguments = {"order_id": "A1", "city": "São Paulo", "weight_kg": 2.75}
    handler.on_tool_start({"name": "lookup"}, "A1", run_id=run_id, inputs=arguments, tool_call_id="call_1")
    handler.on_tool_end("delivered to 東京", run_id=run_id)
    assert digested_on == []
    assert digesting.flush(timeout=5)

    assert len(digested_on) == 2
    assert threading.current_thread() not in digested_on
    call, answer = (event["payload"] for event in local_chain(digesting, session)[1:3])
    assert call["args_hash"] == payload_hash(arguments)
    assert answer["result_hash"] == payload_hash("delivered to 東京")


def _explodes() -> dict[str, Any]:
    raise RuntimeError("a bug in an integration")


def test_a_payload_an_integration_fails_to_make_costs_only_its_event(
    capturing: AgentOpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    session = capturing.start_session("support")
    session._record_later(TOOL_CALL, _later.tool_call, "lookup", {"order_id": "A1"}, "call_1")
    session._record_later(TOOL_CALL, _explodes)
    session._record_later(TOOL_CALL, _later.tool_call, "lookup", {"order_id": "A2"}, "call_2")
    session.end()
    with caplog.at_level(logging.ERROR, logger="agentops_replay"):
        assert capturing.flush(timeout=5)

    chain = local_chain(capturing, session)
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "TOOL_CALL",
        "LOG_DROP",
        "TOOL_CALL",
        "SESSION_END",
        "CHAIN_SEAL",
    ]
    assert [event["sequence_number"] for event in chain] == list(range(6))
    drop = chain[2]["payload"]
    assert (drop["refused_by"], drop["problem"]) == ("sdk", "the SDK failed to make the event (RuntimeError)")
    assert drop["sequence_range"] == [2, 2]
    assert [event["payload"]["args"] for event in chain if event["event_type"] == "TOOL_CALL"] == [
        {"order_id": "A1"},
        {"order_id": "A2"},
    ]
    stats = capturing.stats()
    assert (stats["internal_errors"], stats["invalid"], stats["pending"]) == (1, 1, 0)
    assert any("internal error while making an event" in record.getMessage() for record in caplog.records)


def test_an_unrecordable_payload_made_later_is_said_once_counted_and_stated_as_a_loss(
    capturing: AgentOpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    session = capturing.start_session("support")
    with caplog.at_level(logging.DEBUG, logger="agentops_replay"):
        for index in range(2):
            session._record_later(TOOL_CALL, _later.tool_call, "", {"order_id": f"A{index}"}, f"call_{index}")
        session.end()
        assert capturing.flush(timeout=5)

    chain = local_chain(capturing, session)
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "LOG_DROP",
        "LOG_DROP",
        "SESSION_END",
        "CHAIN_SEAL",
    ]
    problem = "TOOL_CALL tool_name must be a non-empty string (ELS section 3), not an empty string"
    assert {event["payload"]["problem"] for event in chain[1:3]} == {problem}
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len([warning for warning in warnings if problem in warning]) == 1
    assert capturing.stats()["invalid"] == 2


def test_events_recorded_later_keep_their_place_and_time_among_direct_records(capturing: AgentOpsClient) -> None:
    session = capturing.start_session("support")
    expected = []
    for index in range(30):
        if index % 3:
            session._record_later(TOOL_CALL, _later.tool_call, "later", {"n": index}, f"call_{index}")
        else:
            session.record(TOOL_CALL, {"tool_name": "direct", "tool_id": f"call_{index}", "args": {"n": index}})
        expected.append(f"call_{index}")
    session.end()
    assert capturing.flush(timeout=5)

    chain = local_chain(capturing, session)
    calls = [event for event in chain if event["event_type"] == TOOL_CALL]
    assert [event["payload"]["tool_id"] for event in calls] == expected
    assert [event["sequence_number"] for event in chain] == list(range(len(chain)))
    monotonic = [event["timestamp_monotonic"] for event in chain[:-1]]
    assert monotonic == sorted(monotonic)
    assert len({event["event_id"] for event in chain}) == len(chain)


@dataclasses.dataclass
class _Order:
    order_id: str
    placed: datetime.date


class _Refund(BaseModel):
    amount: float
    currency: str


SNAPSHOTS = [
    pytest.param({"text": "Grüße aus Kraków", "scores": [0.25, 1e-7, 3.5e300]}, id="nested-json"),
    pytest.param(("a", ["b", {"c": ("d",)}]), id="tuples-and-lists"),
    pytest.param({"big": 1e20, "nan": float("nan"), "huge": 2**60}, id="numbers-the-service-refuses"),
    pytest.param({"order": _Order("A1", datetime.date(2026, 5, 1))}, id="dataclass"),
    pytest.param([_Refund(amount=12.5, currency="EUR")], id="pydantic-model"),
    pytest.param({"raw": b"\x00\xff", "when": datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)}, id="bytes-datetime"),
    pytest.param({7: {"ids": {3, 1, 2}}}, id="int-key-and-set"),
    pytest.param("東京 \U0001f600", id="text"),
]


@pytest.mark.parametrize("value", SNAPSHOTS)
def test_a_snapshot_converts_later_as_the_value_converts_now(value: Any) -> None:
    assert repr(jsonable(snapshot(value))) == repr(jsonable(value))


def test_a_snapshot_does_not_change_with_the_value() -> None:
    value: dict[str, Any] = {"items": [{"sku": "X1", "qty": 2}], "tags": ("eu", ["vip"])}
    taken = snapshot(value)
    value["items"][0]["qty"] = 3
    value["items"].append({"sku": "X2"})
    value["tags"][1].append("new")
    value["added"] = True
    assert jsonable(taken) == {"items": [{"sku": "X1", "qty": 2}], "tags": ["eu", ["vip"]]}


def test_a_tool_result_too_long_to_print_in_decimal_is_recorded_as_hex_text_not_lost(
    capturing: AgentOpsClient,
) -> None:
    # A tool that computes a factorial returns an integer of 5,736 digits: Python refuses to write it in decimal
    # (more than 4,300 digits), so its repr() raised and the integration lost the event.
    from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
    from strands.types.tools import ToolResult, ToolUse

    hooks, agent = _strands_hooks(capturing)
    tool_use: ToolUse = {"toolUseId": "call_1", "name": "factorial", "input": {"n": 2000}}
    hooks._before_tool_call(
        BeforeToolCallEvent(agent=agent, selected_tool=None, tool_use=tool_use, invocation_state={})
    )
    huge = math.factorial(2000)
    result: ToolResult = {"toolUseId": "call_1", "status": "success", "content": [{"json": {"value": huge}}]}
    hooks._after_tool_call(
        AfterToolCallEvent(
            agent=agent, selected_tool=None, tool_use=tool_use, invocation_state={}, result=result, duration=0.002
        )
    )
    session = hooks.session_of(agent)
    assert capturing.flush(timeout=5)

    events = local_chain(capturing, session)
    assert [event["event_type"] for event in events[1:3]] == ["TOOL_CALL", "TOOL_RESULT"]
    assert events[2]["payload"]["result"] == [{"json": {"value": hex(huge)}}]
