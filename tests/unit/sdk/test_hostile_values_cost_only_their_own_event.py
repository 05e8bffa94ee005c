"""Values agents and frameworks really pass, at their worst: objects whose own methods raise, mappings that change
while they are read, huge strings. Recording never raises into the agent, and a value that cannot be recorded costs
only its own event, which a LOG_DROP states in its place (counted in stats())."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import AgentOpsClient, Session
from agentops_verify import loads


def _chain(client: AgentOpsClient, session: Session) -> list[dict[str, Any]]:
    assert client.local_writer is not None
    return [loads(line) for line in client.local_writer.path_of(session.session_id).read_bytes().splitlines()]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AgentOpsClient]:
    # A flush interval far longer than any test: the events recorded before flush() are formed into one batch.
    recorder = AgentOpsClient(local_path=tmp_path, flush_interval=60, capture_content=True)
    yield recorder
    recorder.close(timeout=2)


class _UnreadableMapping(Mapping[str, Any]):
    """A framework's lazy mapping whose backing store is gone: every read raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("backing store closed")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("backing store closed")

    def __len__(self) -> int:
        return 1


class _GrowingMapping(Mapping[str, Any]):
    """A mapping over a dict that another part of the agent adds to while it is read: iterating it raises
    'dictionary changed size during iteration', as a shared dict mutated from another thread does."""

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {"step": 1}

    def __getitem__(self, key: str) -> Any:
        self._entries[f"added-{len(self._entries)}"] = True
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@pytest.mark.parametrize("bad", [_UnreadableMapping, _GrowingMapping])
def test_a_nested_value_that_raises_while_the_sender_reads_it_costs_only_its_own_event(
    client: AgentOpsClient, bad: type[Mapping[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    # The sender read the value in the middle of forming a batch; the exception escaped and took the whole batch
    # with it: the events recorded before it in the batch vanished without a LOG_DROP (the chain looked complete),
    # and they stayed pending for ever, so close() reported undelivered events.
    session = client.start_session("support")
    assert client.flush(timeout=5)
    session.tool_call("before", args={"order": "A1"})
    session.tool_call("lookup", args={"context": bad()})
    session.tool_call("after", args={"order": "A1"})
    session.end()
    with caplog.at_level(logging.WARNING, logger="agentops_replay"):
        assert client.flush(timeout=5)

    chain = _chain(client, session)
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "TOOL_CALL",
        "LOG_DROP",
        "TOOL_CALL",
        "SESSION_END",
        "CHAIN_SEAL",
    ]
    assert [chain[1]["payload"]["tool_name"], chain[3]["payload"]["tool_name"]] == ["before", "after"]
    drop = chain[2]["payload"]
    assert drop["refused_by"] == "sdk"
    assert drop["sequence_range"] == [2, 2]
    assert "RuntimeError" in drop["problem"]
    assert "backing store" not in drop["problem"]  # the value's own words may be content: never recorded
    stats = client.stats()
    assert (stats["invalid"], stats["pending"]) == (1, 0)
    assert client.close(timeout=2)
