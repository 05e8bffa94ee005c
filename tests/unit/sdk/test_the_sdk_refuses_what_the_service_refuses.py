"""I-JSON edge values (ELS section 2): the SDK refuses exactly what the service refuses, and records common Python
values (datetimes, bytes, sets, dataclasses, pydantic models, ...) as the JSON they stand for."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import logging
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay._values import plain_json
from agentops_replay.events import value_problem
from agentops_server.errors import ApiError
from agentops_server.validation import validate_batch
from agentops_verify import canonicalize, payload_hash
from pydantic import BaseModel

from tests.support.local_chains import local_chain

SESSION_ID = "6f1d9a57-2d0e-4f0a-9c39-1f7f3d1e8b10"


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# Payload values at the edges of ELS section 2, and whether the service takes them.
EDGES = [
    pytest.param(2.0**53 - 1, True, id="float-max-safe-integer"),
    pytest.param(2.0**53, False, id="float-2**53"),
    pytest.param(1e20, False, id="float-1e20"),
    pytest.param(-1e20, False, id="float-minus-1e20"),
    pytest.param(9.99e20, False, id="float-just-below-1e21"),
    pytest.param(1e21, True, id="float-1e21"),
    pytest.param(1.5e300, True, id="float-1.5e300"),
    pytest.param(12345678.5, True, id="float-with-fraction"),
    pytest.param(5e-324, True, id="float-smallest-subnormal"),
    pytest.param(math.nan, False, id="nan"),
    pytest.param(math.inf, False, id="infinity"),
    pytest.param(-math.inf, False, id="minus-infinity"),
    pytest.param(2**53 - 1, True, id="int-max-safe"),
    pytest.param(2**53, False, id="int-2**53"),
    pytest.param(-(2**53), False, id="int-minus-2**53"),
    pytest.param(10**30, False, id="int-huge"),
    pytest.param("\ud800", False, id="lone-high-surrogate"),
    pytest.param("a\udfffb", False, id="lone-low-surrogate"),
    pytest.param("\U0001f600", True, id="astral-character"),
    pytest.param({"\ud800": 1}, False, id="key-with-lone-surrogate"),
    pytest.param({1: "a"}, False, id="int-key"),
    pytest.param({("a", "b"): 1}, False, id="tuple-key"),
    pytest.param(_nested(60), True, id="nesting-as-deep-as-a-body-allows"),
    pytest.param(_nested(61), False, id="nesting-one-level-deeper"),
    pytest.param(object(), False, id="unknown-type"),
]


def _service_refusal(value: Any) -> str | None:
    """What the service says about a batch holding ``value`` in a payload (if it can be written as JSON at all): the
    error code, or None when it takes it."""
    event = {
        "event_id": "0a6f3d4e-9a55-4d1b-8d0b-7c4a4f0f2a61",
        "sequence_number": 0,
        "timestamp_wall": "2026-05-01T12:00:00.000000Z",
        "event_type": "SESSION_START",
        "payload": {"agent_id": "a", "v": "@VALUE@"},
    }
    try:
        value_text = canonicalize(value)
    except ValueError:
        return "NO_JSON_TEXT"  # nothing the service could be sent
    body = canonicalize({"events": [event]}).replace(b'"@VALUE@"', value_text)
    try:
        validate_batch(body, SESSION_ID)
    except ApiError as exc:
        return exc.code
    return None


@pytest.mark.parametrize(("value", "accepted"), EDGES)
def test_the_sdk_refuses_exactly_the_payload_values_the_service_refuses(value: Any, accepted: bool) -> None:
    assert _service_refusal(value) in ((None,) if accepted else ("INVALID_JSON", "NO_JSON_TEXT"))
    assert (value_problem(value) is None) is accepted


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Order:
    order_id: str
    placed: datetime.date
    lines: tuple[str, ...]


class Refund(BaseModel):
    order_id: str
    amount: float
    at: datetime.datetime


AWARE = datetime.datetime(2026, 5, 1, 12, 30, 0, 250000, tzinfo=datetime.UTC)
CONVERSIONS = [
    pytest.param(AWARE, "2026-05-01T12:30:00.250000+00:00", id="aware-datetime-rfc3339"),
    pytest.param(datetime.datetime(2026, 5, 1, 12, 30), "2026-05-01T12:30:00", id="naive-datetime-no-offset"),
    pytest.param(datetime.date(2026, 5, 1), "2026-05-01", id="date"),
    pytest.param(datetime.time(12, 30), "12:30:00", id="time"),
    pytest.param(b"\x00\xffagent", "AP9hZ2VudA==", id="bytes-base64"),
    pytest.param(bytearray(b"ab"), "YWI=", id="bytearray-base64"),
    pytest.param(memoryview(b"ab"), "YWI=", id="memoryview-base64"),
    pytest.param({"b", "a", "c"}, ["a", "b", "c"], id="set-sorted"),
    pytest.param(frozenset({2, "x", 1}), ["x", 1, 2], id="mixed-frozenset-sorted-by-canonical-form"),
    pytest.param(("a", 1), ["a", 1], id="tuple"),
    pytest.param(
        Order("A1", datetime.date(2026, 5, 1), ("sku-1",)),
        {"order_id": "A1", "placed": "2026-05-01", "lines": ["sku-1"]},
        id="dataclass",
    ),
    pytest.param(
        Refund(order_id="A1", amount=12.5, at=AWARE),
        {"order_id": "A1", "amount": 12.5, "at": "2026-05-01T12:30:00.250000+00:00"},
        id="pydantic-model",
    ),
    pytest.param(Colour.RED, "red", id="enum"),
    pytest.param(uuid.UUID("0a6f3d4e-9a55-4d1b-8d0b-7c4a4f0f2a61"), "0a6f3d4e-9a55-4d1b-8d0b-7c4a4f0f2a61", id="uuid"),
    pytest.param(decimal.Decimal("19.990"), "19.990", id="decimal-keeps-its-digits"),
    pytest.param({"at": [AWARE]}, {"at": ["2026-05-01T12:30:00.250000+00:00"]}, id="nested"),
]


@pytest.mark.parametrize(("value", "recorded"), CONVERSIONS)
def test_common_python_values_have_one_json_form(value: Any, recorded: Any) -> None:
    assert plain_json(value) == recorded
    assert value_problem(plain_json(value)) is None


def test_conversion_leaves_values_it_cannot_convert_for_the_verifier_to_refuse() -> None:
    odd = object()
    assert plain_json({"x": [math.nan, odd, 1e20]})["x"][1] is odd
    assert math.isnan(plain_json(math.nan))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AgentOpsClient]:
    recorder = AgentOpsClient(local_path=tmp_path, flush_interval=0.05)
    yield recorder
    recorder.close(timeout=2)


def test_recorded_and_digested_values_are_converted_the_same_way(client: AgentOpsClient) -> None:
    session = client.start_session("agent")
    session.record("TOOL_CALL", {"tool_name": "refund", "args": {"order": Order("A1", AWARE.date(), ())}})
    session.tool_call("refund", args={"order": Order("A1", AWARE.date(), ())})
    session.end()
    assert client.flush(timeout=5)

    recorded, digested = (event["payload"] for event in local_chain(client, session)[1:3])
    plain = {"order": {"order_id": "A1", "placed": "2026-05-01", "lines": []}}
    assert recorded["args"] == plain
    assert digested["args_hash"] == payload_hash(plain)


def test_a_refusal_is_said_once_per_kind_and_counted_every_time(
    client: AgentOpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    session = client.start_session("agent")
    with caplog.at_level(logging.DEBUG, logger="agentops_replay"):
        for _ in range(3):
            session.record("TOOL_CALL", {"tool_name": "t", "x": math.nan})
            session.record("TOOL_CALL", {"tool_name": "t", "args": {"x": math.nan}})  # found by the sender
        session.record("TOOL_CALL", {"tool_name": ""})
        session.end()
        assert client.flush(timeout=5)

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings
    assert any("the value of 'x' is not I-JSON (ELS section 2): nan is not a JSON number" in w for w in warnings)
    assert any("not I-JSON (ELS section 2): nan is not a JSON number" in w and "'x'" not in w for w in warnings)
    assert any(
        "TOOL_CALL tool_name must be a non-empty string (ELS section 3), not an empty string" in w for w in warnings
    )
    assert client.stats()["invalid"] == 7


def test_a_refusal_never_quotes_the_refused_value(client: AgentOpsClient, caplog: pytest.LogCaptureFixture) -> None:
    session = client.start_session("agent")
    with caplog.at_level(logging.DEBUG, logger="agentops_replay"):
        session.record("TOOL_CALL", {"tool_name": "t", "args": {"account": 987654321987654321}})
        session.record("TOOL_CALL", {"tool_name": "t", "args": {"balance": 4.2e20}})
        session.end()
        assert client.flush(timeout=5)

    said = " ".join(record.getMessage() for record in caplog.records) + str(local_chain(client, session))
    assert "987654321987654321" not in said
    assert "420000000000000000000" not in said
    assert "4.2e" not in said
    assert [e["payload"].get("problem") for e in local_chain(client, session) if e["event_type"] == "LOG_DROP"] == [
        "not I-JSON (ELS section 2): integer ... is outside +-(2**53 - 1)",
        "not I-JSON (ELS section 2): integer ... is outside +-(2**53 - 1)",
    ]
