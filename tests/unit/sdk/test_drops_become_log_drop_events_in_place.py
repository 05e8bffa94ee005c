"""The buffer and batch formation: drops become LOG_DROP events in place, sequence numbers stay contiguous."""

from __future__ import annotations

import time
from typing import Any

from agentops_replay._batch import MAX_BODY_BYTES, form_batch
from agentops_replay._buffer import Buffer, SessionState
from agentops_verify import loads


def _session(buffer: Buffer) -> SessionState:
    state = buffer.open_session("6f1d9a57-2d0e-4f0a-9c39-1f7f3d1e8b10")
    buffer.append(state, "SESSION_START", {"agent_id": "a"})
    return state


def _tool(buffer: Buffer, state: SessionState, index: int) -> str | None:
    return buffer.append(state, "TOOL_CALL", {"tool_name": "t", "tool_id": str(index)})


def _drain(buffer: Buffer, state: SessionState, batch_size: int = 100) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while (batch := form_batch(buffer, state, batch_size)) is not None:
        assert loads(batch.body)["events"] == batch.events  # the body is exactly the events, as I-JSON
        events.extend(batch.events)
        buffer.acknowledge(state, len(batch.events), batch.recorded_events, batch.last_ordinal)
    return events


def test_a_run_of_drops_becomes_one_log_drop_in_its_place() -> None:
    buffer = Buffer(max_buffer=3, batch_size=100)
    state = _session(buffer)
    _tool(buffer, state, 1)
    _tool(buffer, state, 2)
    dropped = [_tool(buffer, state, index) for index in range(3, 8)]
    buffer.append(state, "SESSION_END", {"status": "success"})

    events = _drain(buffer, state)

    assert dropped == [None] * 5
    assert [e["event_type"] for e in events] == ["SESSION_START", "TOOL_CALL", "TOOL_CALL", "LOG_DROP", "SESSION_END"]
    assert [e["sequence_number"] for e in events] == [0, 1, 2, 3, 4]
    assert events[3]["payload"] == {
        "dropped_count": 5,
        "cumulative_drops": 5,
        "drop_reason": "BUFFER_FULL",
        "sequence_range": [3, 7],
    }
    assert buffer.counters.dropped == 5
    assert buffer.is_idle()
    assert buffer.pending == 0


def test_session_start_and_end_are_never_dropped() -> None:
    buffer = Buffer(max_buffer=1, batch_size=100)
    other = _session(buffer)  # fills the buffer
    state = buffer.open_session("0c6f3d4e-9a55-4d1b-8d0b-7c4a4f0f2a61")

    start_id = buffer.append(state, "SESSION_START", {"agent_id": "b"})
    end_id = buffer.append(state, "SESSION_END", {"status": "success"})

    assert start_id is not None
    assert end_id is not None
    assert [e["event_type"] for e in _drain(buffer, state)] == ["SESSION_START", "SESSION_END"]
    assert [e["event_type"] for e in _drain(buffer, other)] == ["SESSION_START"]


def test_drops_separated_by_a_delivered_event_make_two_log_drops_with_cumulative_counts() -> None:
    buffer = Buffer(max_buffer=2, batch_size=100)
    state = _session(buffer)
    _tool(buffer, state, 1)
    _tool(buffer, state, 2)  # dropped
    _tool(buffer, state, 3)  # dropped
    first = _drain(buffer, state)
    _tool(buffer, state, 4)
    _tool(buffer, state, 5)
    _tool(buffer, state, 6)  # dropped
    second = _drain(buffer, state)

    events = first + second
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    drops = [e["payload"] for e in events if e["event_type"] == "LOG_DROP"]
    assert [(d["dropped_count"], d["cumulative_drops"], d["sequence_range"]) for d in drops] == [
        (2, 2, [2, 3]),
        (1, 3, [6, 6]),
    ]


def test_an_invalid_nested_value_costs_only_its_event_and_a_log_drop_states_the_loss_in_its_place() -> None:
    buffer = Buffer(max_buffer=10, batch_size=100)
    state = _session(buffer)
    buffer.append(state, "MODEL_REQUEST", {"model": "m", "parameters": {"temperature": float("nan")}})
    buffer.append(state, "MODEL_REQUEST", {"model": "m", "messages": ["\ud800"]})
    _tool(buffer, state, 1)

    events = _drain(buffer, state)

    assert [(e["event_type"], e["sequence_number"]) for e in events] == [
        ("SESSION_START", 0),
        ("LOG_DROP", 1),
        ("LOG_DROP", 2),
        ("TOOL_CALL", 3),
    ]
    assert [e["payload"] for e in events[1:3]] == [
        {
            "dropped_count": 1,
            "cumulative_drops": 1,
            "drop_reason": "SDK_CRASH",
            "sequence_range": [1, 1],
            "refused_by": "sdk",
            "problem": "not I-JSON (ELS section 2): nan is not a JSON number",
        },
        {
            "dropped_count": 1,
            "cumulative_drops": 2,
            "drop_reason": "SDK_CRASH",
            "sequence_range": [2, 2],
            "refused_by": "sdk",
            "problem": "not I-JSON (ELS section 2): string contains a lone surrogate",
        },
    ]
    assert buffer.counters.invalid == 2
    assert buffer.is_idle()
    assert buffer.pending == 0


def test_content_hash_is_computed_by_the_sender_not_the_recorder() -> None:
    buffer = Buffer(max_buffer=10, batch_size=100)
    state = _session(buffer)
    messages = [{"role": "user", "content": "hi"}]
    buffer.append(state, "MODEL_REQUEST", {"model": "m"}, "prompt_hash", messages)

    events = _drain(buffer, state)

    from agentops_verify import payload_hash

    assert events[1]["payload"] == {"model": "m", "prompt_hash": payload_hash(messages)}


def test_batches_hold_at_most_batch_size_events_and_continue_the_numbering() -> None:
    buffer = Buffer(max_buffer=100, batch_size=4)
    state = _session(buffer)
    for index in range(9):
        _tool(buffer, state, index)
    batches = []
    while (batch := form_batch(buffer, state, 4)) is not None:
        batches.append(batch)
        buffer.acknowledge(state, len(batch.events), batch.recorded_events, batch.last_ordinal)

    assert [(b.first_sequence, len(b.events)) for b in batches] == [(0, 4), (4, 4), (8, 2)]


def test_a_batch_never_exceeds_the_request_size_limit() -> None:
    buffer = Buffer(max_buffer=100, batch_size=100)
    state = _session(buffer)
    for index in range(10):
        buffer.append(state, "TOOL_CALL", {"tool_name": "t", "args": "x" * 200_000, "tool_id": str(index)})
    sizes: list[int] = []
    sequences: list[int] = []
    while (batch := form_batch(buffer, state, 100)) is not None:
        sizes.append(len(batch.body))
        sequences.extend(e["sequence_number"] for e in batch.events)
        buffer.acknowledge(state, len(batch.events), batch.recorded_events, batch.last_ordinal)

    assert len(sizes) > 1
    assert max(sizes) <= MAX_BODY_BYTES
    assert sequences == list(range(11))


def test_an_event_over_256_kib_is_counted_invalid_and_a_log_drop_is_sent_instead() -> None:
    buffer = Buffer(max_buffer=100, batch_size=100)
    state = _session(buffer)
    buffer.append(state, "TOOL_CALL", {"tool_name": "t", "args": "x" * 300_000})

    events = _drain(buffer, state)

    assert [e["event_type"] for e in events] == ["SESSION_START", "LOG_DROP"]
    assert events[1]["payload"]["problem"].startswith("the event is over 261120 bytes in canonical form")
    assert buffer.counters.invalid == 1


def test_events_waiting_through_an_outage_become_one_network_loss_but_start_and_end_stay() -> None:
    buffer = Buffer(max_buffer=100, batch_size=100)
    state = buffer.open_session("5b0d7f0e-3f65-4a51-9d8e-2a7e0a4f6c11")
    buffer.append(state, "SESSION_START", {"agent_id": "a"})
    for index in range(5):
        _tool(buffer, state, index)
    buffer.append(state, "SESSION_END", {"status": "success"})

    expired = buffer.expire_waiting(state, time.monotonic_ns())
    events = _drain(buffer, state)

    assert expired == 5
    assert [e["event_type"] for e in events] == ["SESSION_START", "LOG_DROP", "SESSION_END"]
    assert events[1]["payload"]["drop_reason"] == "NETWORK_LOSS"
    assert events[1]["payload"]["dropped_count"] == 5
    assert events[1]["payload"]["sequence_range"] == [1, 5]
    assert buffer.counters.dropped == 5
    assert buffer.is_idle()


def test_timestamps_are_rfc3339_utc_and_monotonic_counts_from_session_start() -> None:
    buffer = Buffer(max_buffer=10, batch_size=100)
    state = _session(buffer)
    _tool(buffer, state, 1)

    events = _drain(buffer, state)

    import re

    for event in events:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["timestamp_wall"])
        assert 0 <= event["timestamp_monotonic"] < 60 * 10**9
        assert event["source_sdk_ver"].startswith("agentops-replay-python/")
        assert event["schema_ver"] == "v0.6"
        assert not {"payload_hash", "prev_event_hash", "event_hash", "chain_authority"} & set(event)


def test_event_ids_are_canonical_random_uuids_that_a_forked_child_does_not_repeat() -> None:
    import os
    import re
    import uuid

    from agentops_replay._buffer import new_event_id

    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for event_id in ids[:100]:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", event_id)
        assert str(uuid.UUID(event_id)) == event_id
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, new_event_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child_id != new_event_id()
