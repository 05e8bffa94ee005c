"""One bad event never costs more than itself, against a fake service that validates like the real one.

The reported incident: one event holding the float 1e20 was accepted by the SDK, the service refused its batch with
400 INVALID_JSON, the SDK gave up on the whole session and nothing was ever sealed. Now such an event is refused by
the SDK (the service's own I-JSON reader decides), and an event the service still refuses is taken out of its batch:
a LOG_DROP takes its place and every other event is delivered.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay._sender import Sender
from agentops_verify import verify_bytes

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest

Ingest = tuple[FakeIngest, str]


def _client(endpoint: str, **options: Any) -> AgentOpsClient:
    settings: dict[str, Any] = {"flush_interval": 0.02, "backoff_base": 0.01, "backoff_max": 0.05, "batch_size": 50}
    settings.update(options)
    return AgentOpsClient(endpoint, **settings)


@dataclasses.dataclass
class Order:
    order_id: str
    placed: datetime.datetime


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# One event per edge of ELS section 2, each nested where record() does not look (the sender checks it).
REFUSED_VALUES = {
    "float-2**53": 2.0**53,
    "float-1e20": 1e20,
    "nan": math.nan,
    "infinity": math.inf,
    "huge-integer": 10**30,
    "lone-surrogate": "\udc00",
    "non-string-key": {7: "x"},
    "deep-nesting": _nested(62),
    "not-json": object(),
}
RECORDED_VALUES = {
    "bytes": b"\x01\x02",
    "set": {"b", "a"},
    "datetime": datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC),
    "dataclass": Order("A1", datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)),
    "float-1e21": 1e21,
}


def test_a_session_with_one_of_each_edge_is_delivered_whole_and_states_each_loss(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = _client(endpoint)
    session = client.start_session("edge-agent")
    edges = {**REFUSED_VALUES, **RECORDED_VALUES}
    for name, value in edges.items():
        session.tool_call("normal", args={"before": name})
        session.record("TOOL_CALL", {"tool_name": name, "args": {"value": value}})
    session.tool_call("normal", args={"last": True})
    session.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert fake.refused == []  # the SDK sent nothing the service refuses
    assert_verifies(fake, session.session_id, drops=len(REFUSED_VALUES))
    chain = stored_chain(fake, session.session_id)
    drops = [event for event in chain if event["event_type"] == "LOG_DROP"]
    assert [event["payload"]["refused_by"] for event in drops] == ["sdk"] * len(REFUSED_VALUES)
    assert [event["payload"]["drop_reason"] for event in drops] == ["SDK_CRASH"] * len(REFUSED_VALUES)
    delivered = [event["payload"]["tool_name"] for event in chain if event["event_type"] == "TOOL_CALL"]
    assert delivered == [name for edge in edges for name in ("normal", edge) if name not in REFUSED_VALUES] + ["normal"]
    # every refused event is stated at its own recording position (0 is SESSION_START)
    positions = [2 * index + 2 for index, name in enumerate(edges) if name in REFUSED_VALUES]
    assert [event["payload"]["sequence_range"] for event in drops] == [[p, p] for p in positions]
    stats = client.stats()
    assert (stats["invalid"], stats["rejected"], stats["pending"]) == (len(REFUSED_VALUES), 0, 0)


def test_a_1e20_the_sdk_let_through_costs_only_its_event_not_the_session(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK of the incident: no read-back check, and a canonical writer that still wrote 1e20 as the integer literal
    # 100000000000000000000 (canonicalize refuses it now; the service's reader still does), so the service is the
    # first to refuse it (INVALID_JSON, which cannot say which event): the batch is sent in halves until the event is
    # alone, and only it is lost.
    fake, endpoint = ingest
    monkeypatch.setattr("agentops_replay._batch.event_problem", lambda line: None)
    monkeypatch.setattr("agentops_replay._sender.event_problem", lambda line: None)
    monkeypatch.setattr("agentops_verify._jcs.is_unsafe_integral", lambda value: False)
    client = _client(endpoint)
    session = client.start_session("incident-agent")
    for index in range(12):
        session.record("TOOL_CALL", {"tool_name": "lookup", "args": {"amount": 1e20 if index == 7 else index}})
    session.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert [status for status, _ in fake.refused][:1] == [400]
    assert {answer["error"]["code"] for _, answer in fake.refused} == {"INVALID_JSON"}
    assert_verifies(fake, session.session_id, drops=1)
    chain = stored_chain(fake, session.session_id)
    assert [event["event_type"] for event in chain].count("TOOL_CALL") == 11
    (drop,) = [event["payload"] for event in chain if event["event_type"] == "LOG_DROP"]
    assert drop["refused_by"] == "service"
    assert drop["sequence_range"] == [8, 8]
    assert drop["problem"].startswith("INVALID_JSON")
    assert chain[-1]["event_type"] == "SESSION_END"
    assert client.stats()["rejected"] == 1


def test_an_event_the_service_names_in_a_validation_error_is_replaced_and_the_rest_delivered(
    ingest: Ingest,
) -> None:
    fake, endpoint = ingest
    client = _client(endpoint)
    session = client.start_session("agent")
    for index in range(5):
        session.tool_call("t", tool_id=str(index))
    # "[REDACTED]" without its <key>_hash sibling: the service refuses it (ELS section 3), the SDK does not check it
    session.record("TOOL_CALL", {"tool_name": "leaky", "args": "[REDACTED]"})
    for index in range(5, 10):
        session.tool_call("t", tool_id=str(index))
    session.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    ((status, answer),) = fake.refused
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert_verifies(fake, session.session_id, drops=1)
    chain = stored_chain(fake, session.session_id)
    assert [e["payload"].get("tool_id") for e in chain if e["event_type"] == "TOOL_CALL"] == [str(i) for i in range(10)]
    assert chain[6]["event_type"] == "LOG_DROP"
    assert chain[6]["payload"]["refused_by"] == "service"
    assert chain[6]["payload"]["problem"].startswith("VALIDATION_ERROR payload.args: is [REDACTED] without")


def test_later_log_drops_in_the_same_batch_count_the_refused_event(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The buffer overflows after the bad event: its BUFFER_FULL LOG_DROP was formed before the service refused the
    # bad one, so its cumulative_drops is brought up to date before the batch is sent again.
    fake, endpoint = ingest
    client = _client(endpoint, max_buffer=4, batch_size=100)
    with monkeypatch.context() as paused:  # everything is recorded before the first batch is formed
        paused.setattr(Sender, "ensure_running", lambda self: None)
        session = client.start_session("agent")
        session.record("TOOL_CALL", {"tool_name": "leaky", "args": "[REDACTED]"})
        for index in range(6):
            session.tool_call("t", tool_id=str(index))  # two fit, four are dropped
        session.end()
    client.start_session("starts-the-sender").end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    report = verify_bytes(fake.chain_bytes(session.session_id))
    assert report.warnings == (), report.warnings
    assert_verifies(fake, session.session_id, drops=5)
    chain = stored_chain(fake, session.session_id)
    assert [e["event_type"] for e in chain] == [
        "SESSION_START",
        "LOG_DROP",
        "TOOL_CALL",
        "TOOL_CALL",
        "LOG_DROP",
        "SESSION_END",
    ]
    drops = [e["payload"] for e in chain if e["event_type"] == "LOG_DROP"]
    assert [(d["drop_reason"], d["dropped_count"], d["cumulative_drops"]) for d in drops] == [
        ("SDK_CRASH", 1, 1),
        ("BUFFER_FULL", 4, 5),
    ]


def test_a_refused_session_start_is_trimmed_to_its_required_keys_instead_of_losing_the_session(
    ingest: Ingest,
) -> None:
    fake, endpoint = ingest

    def refuse_framework(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
        for index, event in enumerate(events):
            if event["event_type"] == "SESSION_START" and "framework" in event["payload"]:
                problem = "a stricter service refuses this framework"
                error = {"event_index": index, "field": "payload.framework", "problem": problem}
                return 400, {"error": {"code": "VALIDATION_ERROR", "message": problem, "details": {"errors": [error]}}}
        return None

    fake.refusal = refuse_framework
    client = _client(endpoint)
    with client.session("agent", framework="something-odd") as session:
        session.tool_call("t")
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert_verifies(fake, session.session_id)
    start = stored_chain(fake, session.session_id)[0]["payload"]
    assert set(start) == {"agent_id", "sdk_version"}
    assert fake.event_types(session.session_id) == ["SESSION_START", "TOOL_CALL", "SESSION_END"]


def test_one_event_over_the_services_size_limit_costs_only_itself(ingest: Ingest) -> None:
    fake, endpoint = ingest

    def refuse_big(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
        for index, event in enumerate(events):
            if event["payload"].get("tool_name") == "big":
                details = {"event_index": index, "limit_bytes": 1000, "event_bytes": 5000}
                return 413, {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "too big", "details": details}}
        return None

    fake.refusal = refuse_big
    client = _client(endpoint)
    with client.session("agent") as session:
        session.tool_call("small")
        session.tool_call("big", args="x" * 5000)
        session.tool_call("small")
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert_verifies(fake, session.session_id, drops=1)
    assert fake.event_types(session.session_id) == [
        "SESSION_START",
        "TOOL_CALL",
        "LOG_DROP",
        "TOOL_CALL",
        "SESSION_END",
    ]


def test_a_refusal_that_is_not_about_single_events_still_ends_the_session(ingest: Ingest) -> None:
    fake, endpoint = ingest
    fake.refusal = lambda events: (409, {"error": {"code": "SESSION_SEALED", "message": "sealed", "details": {}}})
    client = _client(endpoint)
    with client.session("agent") as session:
        session.tool_call("t")
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert fake.event_types(session.session_id) == []
    stats = client.stats()
    assert (stats["sent"], stats["pending"]) == (0, 0)
    assert stats["rejected"] >= 2
