"""Values agents and frameworks really pass, at their worst: objects whose own methods raise, mappings that change
while they are read, huge strings. Recording never raises into the agent, and a value that cannot be recorded costs
only its own event, which a LOG_DROP states in its place (counted in stats())."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from agentops_replay import AgentOpsClient

from tests.support.local_chains import local_chain


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

    chain = local_chain(client, session)
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


class _UnprintableObject:
    """A framework object whose __str__ and __repr__ fail (they read a connection that is closed)."""

    def __str__(self) -> str:
        raise RuntimeError("connection closed")

    def __repr__(self) -> str:
        raise RuntimeError("connection closed")


class _StrNotText:
    """An object whose __str__ returns something other than a string: str() of it raises TypeError."""

    def __str__(self) -> Any:
        return 42  # noqa: PLE0307 (the point of the test)


@pytest.mark.parametrize(
    ("value", "recorded"),
    [
        pytest.param(_UnprintableObject(), "<unprintable _UnprintableObject>", id="str-raises"),
        pytest.param(_StrNotText(), "<unprintable _StrNotText>", id="str-not-a-string"),
        pytest.param(_UnreadableMapping(), None, id="mapping-unreadable"),
    ],
)
def test_a_tool_argument_the_integration_cannot_read_is_recorded_as_text_not_lost(
    client: AgentOpsClient, value: Any, recorded: str | None
) -> None:
    # The callback converted the value on LangChain's thread (privacy.snapshot -> jsonable) and str() of it raised:
    # the callback gave up, and the TOOL_CALL and TOOL_RESULT were lost with no LOG_DROP (only internal_errors).
    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

    session = client.start_session("support")
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    handler.on_tool_start({"name": "lookup"}, "", run_id=run_id, inputs={"order": "A1", "context": value})
    handler.on_tool_end({"found": True, "context": value}, run_id=run_id, name="lookup")
    session.end()
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert [event["event_type"] for event in chain[1:3]] == ["TOOL_CALL", "TOOL_RESULT"]
    args, result = chain[1]["payload"]["args"], chain[2]["payload"]["result"]
    assert (args["order"], result["found"]) == ("A1", True)
    assert (type(args["context"]), type(result["context"])) == (str, str)
    if recorded is not None:
        assert args["context"] == result["context"] == recorded
    assert client.stats()["internal_errors"] == 0


class _MessageNeedsDetailError(Exception):
    """A library's exception whose message reads an attribute that is set only on some paths."""

    detail: str

    def __str__(self) -> str:
        return f"request failed: {self.detail}"


def test_a_tool_error_whose_message_cannot_be_read_is_still_recorded_as_an_error(client: AgentOpsClient) -> None:
    # str(error) raised AttributeError in the callback: the ERROR was lost with no LOG_DROP.
    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

    session = client.start_session("support")
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    handler.on_tool_start({"name": "lookup"}, "", run_id=run_id, inputs={"order": "A1"})
    handler.on_tool_error(_MessageNeedsDetailError(), run_id=run_id, name="lookup")
    session.end()
    assert client.flush(timeout=5)

    error = local_chain(client, session)[2]
    assert error["event_type"] == "ERROR"
    assert error["payload"]["error_type"] == "_MessageNeedsDetailError"
    assert error["payload"]["message"] == "<unprintable _MessageNeedsDetailError>"
    assert client.stats()["internal_errors"] == 0


def test_a_string_too_large_to_record_is_refused_before_the_sender_writes_it_out(
    client: AgentOpsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tool that read a file of tens of megabytes: the sender wrote the whole event out (a third of a second under
    # the interpreter lock for 50 MB, every agent thread waiting) only to find it over the size limit and refuse it.
    from agentops_replay import _batch
    from agentops_verify import canonicalize

    written: list[int] = []

    def measured(value: Any) -> bytes:
        line = canonicalize(value)
        written.append(len(line))
        return line

    monkeypatch.setattr(_batch, "canonicalize", measured)
    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

    document = "x" * (2 * _batch.MAX_EVENT_BYTES)
    session = client.start_session("support")
    session.record("TOOL_RESULT", {"tool_name": "read_file", "result": {"text": document}})
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    handler.on_tool_start({"name": "read_file"}, "", run_id=run_id, inputs={"path": "/data/dump.txt"})
    handler.on_tool_end([{"text": document}], run_id=run_id, name="read_file")
    session.end()
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert [event["event_type"] for event in chain] == [
        "SESSION_START",
        "LOG_DROP",
        "TOOL_CALL",
        "LOG_DROP",
        "SESSION_END",
        "CHAIN_SEAL",
    ]
    for drop in (chain[1]["payload"], chain[3]["payload"]):
        assert drop["problem"].startswith(f"the event is over {_batch.MAX_EVENT_BYTES} bytes")
    assert max(written) < _batch.MAX_EVENT_BYTES  # neither event was written out
    assert client.stats()["invalid"] == 2


def test_content_nested_deeper_than_the_format_allows_is_recorded_with_its_depths_as_text(
    client: AgentOpsClient,
) -> None:
    # A parse tree 100 levels deep, and a list that holds itself: jsonable kept four levels of room for the envelope,
    # one too few for content under payload.args, two for payload.inputs.tool_input, so with content capture every
    # such event was refused as nesting deeper than 64 instead of recorded with its deepest levels as text.
    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

    tree: dict[str, Any] = {"leaf": "Zürich"}
    for _ in range(100):
        tree = {"node": tree}
    holds_itself: list[Any] = []
    holds_itself.append(holds_itself)
    session = client.start_session("support")
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    handler.on_tool_start({"name": "parse"}, "", run_id=run_id, inputs={"tree": tree})
    handler.on_tool_end([holds_itself], run_id=run_id, name="parse")
    handler.on_agent_action(SimpleNamespace(tool="parse", tool_input={"tree": tree}, log="parse it"), run_id=run_id)
    session.end()
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert [event["event_type"] for event in chain[1:4]] == ["TOOL_CALL", "TOOL_RESULT", "DECISION_TRACE"]
    deepest: Any = chain[1]["payload"]["args"]["tree"]
    while isinstance(deepest, dict):
        deepest = deepest["node"]
    assert type(deepest) is str
    assert "Zürich" in deepest
    assert client.stats()["invalid"] == 0


_LARGE_TEXT = "x" * (300 * 1024)  # over the 256 KiB an event may hold


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_UnreadableMapping(), id="mapping-unreadable"),
        pytest.param(_LARGE_TEXT, id="text-over-the-event-limit"),
        pytest.param(_LARGE_TEXT.encode(), id="bytes-over-the-event-limit"),
    ],
)
def test_a_session_start_or_end_value_that_cannot_be_recorded_is_left_out_not_the_session(
    client: AgentOpsClient, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Reading an unreadable mapping raised in start_session(): the agent got a session that records nothing (no
    # chain at all), and end() lost its SESSION_END (no end, no seal). Text over the event limit was checked by
    # writing it out on the agent's thread (over a second for 50 MB), then the sender refused the SESSION_START or
    # SESSION_END that a session cannot do without: a LOG_DROP took its place.
    with caplog.at_level(logging.WARNING, logger="agentops_replay"):
        session = client.start_session("support", framework="custom", context=value)
        session.tool_call("lookup", args={"order": "A1"})
        session.end("success", reason="done", context=value)
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert [event["event_type"] for event in chain] == ["SESSION_START", "TOOL_CALL", "SESSION_END", "CHAIN_SEAL"]
    assert "context" not in chain[0]["payload"]
    assert chain[0]["payload"]["framework"] == "custom"
    assert "context" not in chain[2]["payload"]
    assert chain[2]["payload"]["reason"] == "done"
    assert "SESSION_START 'context'" in caplog.text
    assert "SESSION_END 'context'" in caplog.text
    assert "xxxx" not in caplog.text


def test_an_agent_id_that_cannot_be_printed_or_is_too_large_still_gives_a_named_session(
    client: AgentOpsClient,
) -> None:
    # str() of the agent id raised: start_session() returned a session that records nothing. An id over the event
    # limit was written out on the agent's thread, then the sender refused the SESSION_START.
    unprintable = client.start_session(_UnprintableObject())  # type: ignore[arg-type]
    too_large = client.start_session(_LARGE_TEXT)
    for session in (unprintable, too_large):
        session.end()
    assert client.flush(timeout=5)

    names = []
    for session in (unprintable, too_large):
        chain = local_chain(client, session)
        assert [event["event_type"] for event in chain] == ["SESSION_START", "SESSION_END", "CHAIN_SEAL"]
        names.append(chain[0]["payload"]["agent_id"])
    assert names == ["<unprintable _UnprintableObject>", "unnamed-agent"]


def test_a_tool_result_changed_by_another_thread_while_the_callback_copies_it_is_still_recorded(
    client: AgentOpsClient,
) -> None:
    # The callback copies the result on the framework's thread (privacy.snapshot) while the agent's other threads
    # may be adding to it: "dictionary changed size during iteration" escaped, and the TOOL_RESULT was lost with no
    # LOG_DROP. Made deterministic here by a member whose conversion adds to the dict being copied.
    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

    result: dict[str, Any] = {"status": "ok"}

    class _Progress:
        def model_dump(self) -> dict[str, Any]:
            result["progress-updated"] = True  # what another thread does at that moment
            return {"done": 3}

    result["progress"] = _Progress()
    session = client.start_session("support")
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    handler.on_tool_start({"name": "batch"}, "", run_id=run_id, inputs={"size": 3})
    handler.on_tool_end(result, run_id=run_id, name="batch")
    session.end()
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert [event["event_type"] for event in chain[1:3]] == ["TOOL_CALL", "TOOL_RESULT"]
    assert chain[2]["payload"]["result"] == {"status": "ok", "progress": {"done": 3}, "progress-updated": True}
    assert client.stats()["internal_errors"] == 0


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_a_binary_buffer_is_copied_on_the_framework_thread_and_encoded_on_the_sender(
    client: AgentOpsClient, monkeypatch: pytest.MonkeyPatch, kind: type[Any]
) -> None:
    # A bytearray or memoryview (an image, a downloaded file) was base64-encoded on the framework's thread by the
    # callback: a third of a second for 50 MB, inside the agent's call. Copying it is all the call needs to do.
    import base64

    from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

    encoded_on: list[str] = []
    b64encode = base64.b64encode

    def watched(data: Any, altchars: Any = None) -> bytes:
        encoded_on.append(threading.current_thread().name)
        return b64encode(data, altchars)

    monkeypatch.setattr(base64, "b64encode", watched)
    image = bytearray(b"\x89PNG\r\n")
    session = client.start_session("support")
    handler = AgentOpsCallbackHandler(session)
    run_id = uuid.uuid4()
    handler.on_tool_start({"name": "thumbnail"}, "", run_id=run_id, inputs={"image": kind(image)})
    image[0:4] = b"GIF8"  # the tool reuses its buffer
    session.end()
    assert client.flush(timeout=5)

    assert local_chain(client, session)[1]["payload"]["args"] == {"image": b64encode(b"\x89PNG\r\n").decode()}
    assert encoded_on == ["agentops-replay-sender"]
