"""Recording through AgentOpsClient/Session in local authority mode: never raises, privacy by default, kill switch."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import REDACTED, AgentOpsClient, Session, content_hash, redact
from agentops_verify import NON_AUTHORITATIVE_EVIDENCE, PASS, Policy, payload_hash, verify_bytes

from tests.support.local_chains import local_chain


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AgentOpsClient]:
    recorder = AgentOpsClient(local_path=tmp_path, flush_interval=0.05)
    yield recorder
    recorder.close(timeout=2)


class _ExplodingMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        raise RuntimeError("boom")


BAD_RECORDS = [
    pytest.param("TOOL_CALL", None, id="payload-none"),
    pytest.param("TOOL_CALL", ["tool_name"], id="payload-list"),
    pytest.param("TOOL_CALL", _ExplodingMapping(), id="payload-raises"),
    pytest.param("TOOL_CALL", {"args": {}}, id="missing-required-key"),
    pytest.param("NOT_A_TYPE", {"tool_name": "t"}, id="unknown-type"),
    pytest.param("CHAIN_SEAL", {"event_count": 1}, id="server-only-type"),
    pytest.param("LOG_DROP", {"dropped_count": 1}, id="sdk-internal-type"),
    pytest.param("SESSION_START", {"agent_id": "again"}, id="second-start"),
    pytest.param("TOOL_CALL", {"tool_name": "t", "x": math.nan}, id="nan"),
    pytest.param("TOOL_CALL", {"tool_name": "t", "x": math.inf}, id="infinity"),
    pytest.param("TOOL_CALL", {"tool_name": "t", "x": 2**53}, id="unsafe-integer"),
    pytest.param("TOOL_CALL", {"tool_name": "t", 7: "x"}, id="non-string-key"),
    pytest.param("TOOL_CALL", {"tool_name": "t", "x": 1e20}, id="integral-float-beyond-2**53"),
    pytest.param(None, {"tool_name": "t"}, id="type-none"),
    pytest.param("TOOL_CALL", {"tool_name": ""}, id="empty-name"),
    pytest.param("TOOL_CALL", {"tool_name": 7}, id="name-not-a-string"),
    pytest.param("TOOL_CALL", {"tool_name": "t", "tool_id": None}, id="optional-key-null"),
    pytest.param("TOOL_RESULT", {"tool_name": "t", "duration_ms": 1.5}, id="fractional-duration"),
    pytest.param("TOOL_RESULT", {"tool_name": "t", "duration_ms": True}, id="boolean-duration"),
    pytest.param("ERROR", {"error_type": "E", "message": "m", "fatal": "yes"}, id="fatal-not-boolean"),
    pytest.param("ANNOTATION", {"annotator_id": "a", "annotation_type": "vote", "content": 1}, id="annotation-type"),
    pytest.param(
        "ANNOTATION",
        {"annotator_id": "a", "annotation_type": "flag", "content": 1, "target_event_id": "not-a-uuid"},
        id="target-not-a-uuid",
    ),
]


@pytest.mark.parametrize(("event_type", "payload"), BAD_RECORDS)
def test_bad_records_never_raise_are_counted_and_never_reach_the_chain(
    client: AgentOpsClient, event_type: Any, payload: Any
) -> None:
    session = client.start_session("agent")
    assert session.record(event_type, payload) is None
    session.end()

    assert client.flush(timeout=5)
    assert client.stats()["invalid"] == 1
    types = [event["event_type"] for event in local_chain(client, session)]
    assert types == ["SESSION_START", "SESSION_END", "CHAIN_SEAL"]
    assert [event["sequence_number"] for event in local_chain(client, session)] == [0, 1, 2]


def test_start_and_end_leave_out_mistyped_metadata_instead_of_failing_the_session(client: AgentOpsClient) -> None:
    session = client.start_session("agent", environment="laptop", framework="custom", system_prompt_hash=5)
    session.end("success", total_cost_usd="free", reason="done")
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert chain[0]["payload"] == {
        "agent_id": "agent",
        "sdk_version": chain[0]["payload"]["sdk_version"],
        "framework": "custom",
    }
    assert {key: chain[1]["payload"][key] for key in ("status", "reason")} == {"status": "success", "reason": "done"}
    assert "total_cost_usd" not in chain[1]["payload"]


def test_any_mapping_is_recorded_as_a_plain_dict(client: AgentOpsClient) -> None:
    from collections import OrderedDict
    from types import MappingProxyType

    session = client.start_session("agent")
    session.record("TOOL_CALL", OrderedDict(tool_name="ordered"))
    session.record("TOOL_CALL", MappingProxyType({"tool_name": "read-only"}))
    session.end()
    assert client.flush(timeout=5)

    assert [e["payload"]["tool_name"] for e in local_chain(client, session)[1:3]] == ["ordered", "read-only"]


def test_helpers_round_tool_durations_to_whole_milliseconds(client: AgentOpsClient) -> None:
    session = client.start_session("agent")
    session.tool_result("t", duration_ms=12.6)
    session.end()
    assert client.flush(timeout=5)

    assert local_chain(client, session)[1]["payload"]["duration_ms"] == 13


def test_helpers_given_nonsense_never_raise(client: AgentOpsClient) -> None:
    session = client.start_session("agent")

    assert session.model_request("m", parameters=42) is None  # type: ignore[arg-type]
    assert session.model_response("m", usage=["not", "a", "mapping"]) is None  # type: ignore[arg-type]
    assert session.tool_result("", duration_ms=float("nan")) is None
    assert session.annotate("a", "vote", "x") is None
    assert session.error(None, None) is None  # type: ignore[arg-type]

    stats = client.stats()
    assert stats["internal_errors"] + stats["invalid"] == 5


def test_helpers_record_hashes_not_content_by_default(client: AgentOpsClient) -> None:
    messages = [{"role": "user", "content": "my card is 4111 1111 1111 1111"}]
    session = client.start_session("agent")
    session.model_request("gpt-x", messages=messages, provider="openai", parameters={"temperature": 0.2})
    session.model_response("gpt-x", content="sure", finish_reason="stop", usage={"output_tokens": 1})
    session.tool_call("lookup", args={"card": "4111"}, tool_id="call-1")
    session.tool_result("lookup", result={"ok": True}, tool_id="call-1", status="success", duration_ms=3)
    session.decision("d-1", inputs={"n": 1}, outputs={"pick": "a"}, justification="because the card is valid")
    session.end()
    assert client.flush(timeout=5)

    payloads = {event["event_type"]: event["payload"] for event in local_chain(client, session)}
    assert payloads["MODEL_REQUEST"] == {
        "model": "gpt-x",
        "provider": "openai",
        "parameters": {"temperature": 0.2},
        "prompt_hash": payload_hash(messages),
    }
    assert payloads["MODEL_RESPONSE"]["content_hash"] == payload_hash("sure")
    assert "content" not in payloads["MODEL_RESPONSE"]
    assert payloads["TOOL_CALL"] == {
        "tool_name": "lookup",
        "tool_id": "call-1",
        "args_hash": payload_hash({"card": "4111"}),
    }
    assert payloads["TOOL_RESULT"]["result_hash"] == payload_hash({"ok": True})
    assert "result" not in payloads["TOOL_RESULT"]
    assert payloads["DECISION_TRACE"]["justification"] == REDACTED
    assert payloads["DECISION_TRACE"]["justification_hash"] == payload_hash("because the card is valid")
    assert client.local_writer is not None
    recorded = client.local_writer.path_of(session.session_id).read_bytes()
    assert b"4111 1111" not in recorded
    assert b'"card"' not in recorded
    assert b"the card is valid" not in recorded


def test_capture_content_records_the_text(tmp_path: Path) -> None:
    client = AgentOpsClient(local_path=tmp_path, capture_content=True, flush_interval=0.05)
    session = client.start_session("agent")
    session.model_request("gpt-x", messages=[{"role": "user", "content": "hello"}])
    session.tool_result("lookup", result={"ok": True})
    session.end()
    client.close(timeout=5)

    payloads = {event["event_type"]: event["payload"] for event in local_chain(client, session)}
    assert payloads["MODEL_REQUEST"]["messages"] == [{"role": "user", "content": "hello"}]
    assert payloads["TOOL_RESULT"]["result"] == {"ok": True}


def test_redact_replaces_values_with_a_marker_and_their_hash() -> None:
    payload = {"tool_name": "email", "args": {"to": "dana@example.com"}, "tool_id": "7"}

    redacted = redact(payload, "args", "absent")

    assert redacted == {
        "tool_name": "email",
        "args": REDACTED,
        "args_hash": content_hash({"to": "dana@example.com"}),
        "tool_id": "7",
    }
    assert payload["args"] == {"to": "dana@example.com"}  # the caller's dict is left alone


def test_kill_switch_makes_every_call_a_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTOPS_DISABLED", "1")
    threads_before = threading.active_count()

    client = AgentOpsClient(local_path=tmp_path)
    with client.session("agent") as session:
        assert session.record("TOOL_CALL", {"tool_name": "t"}) is None
        assert session.tool_call("t", args={"a": 1}) is None
        session.end()

    assert client.flush(timeout=0) is True
    assert client.close(timeout=0) is True
    assert set(client.stats().values()) == {0}
    assert threading.active_count() == threads_before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("endpoint", ["ftp://ingest.example", "not a url", "http://"])
def test_a_malformed_endpoint_disables_recording_instead_of_raising(endpoint: str) -> None:
    client = AgentOpsClient(endpoint)

    with client.session("agent") as session:
        assert session.tool_call("t") is None

    assert client.disabled
    assert client.flush(timeout=0)


def test_session_block_that_raises_ends_with_failure_and_reraises(client: AgentOpsClient) -> None:
    sessions: list[Session] = []

    def run_agent() -> None:
        with client.session("agent", tags=["t1"], environment="dev") as session:
            sessions.append(session)
            session.tool_call("lookup")
            raise KeyError("order")

    with pytest.raises(KeyError):
        run_agent()
    session = sessions[0]
    assert client.flush(timeout=5)

    chain = local_chain(client, session)
    assert chain[0]["payload"]["tags"] == ["t1"]
    assert chain[0]["payload"]["environment"] == "dev"
    end = next(event for event in chain if event["event_type"] == "SESSION_END")
    assert end["payload"]["status"] == "failure"
    assert end["payload"]["reason"] == "KeyError"


def test_a_session_ended_inside_its_block_keeps_its_own_status(client: AgentOpsClient) -> None:
    with client.session("agent") as session:
        session.end("timeout", reason="budget exhausted")

    assert client.flush(timeout=5)
    ends = [e["payload"] for e in local_chain(client, session) if e["event_type"] == "SESSION_END"]
    assert [(end["status"], end["reason"]) for end in ends] == [("timeout", "budget exhausted")]
    assert client.stats()["invalid"] == 0


def test_flush_waits_for_what_was_recorded_before_it_not_for_other_threads_still_recording(
    client: AgentOpsClient,
) -> None:
    busy = client.start_session("busy-worker")
    quiet = client.start_session("agent")
    for index in range(20):
        quiet.tool_call("t", tool_id=str(index))
    stop = threading.Event()

    def keep_recording() -> None:
        while not stop.is_set():
            busy.tool_call("background")

    worker = threading.Thread(target=keep_recording)
    worker.start()
    try:
        flushed = client.flush(timeout=30)
        still_recording = worker.is_alive() and not stop.is_set()
    finally:
        stop.set()
        worker.join()

    assert flushed
    assert still_recording
    assert len([e for e in local_chain(client, quiet) if e["event_type"] == "TOOL_CALL"]) == 20


def test_flush_settles_events_found_invalid_by_the_sender(client: AgentOpsClient) -> None:
    session = client.start_session("agent")
    assert client.flush(timeout=5)
    session.record("TOOL_CALL", {"tool_name": "t", "args": [math.nan]})  # caught off-thread, never sent

    assert client.flush(timeout=5)
    assert client.stats()["invalid"] == 1


def test_records_after_end_are_ignored_and_counted(client: AgentOpsClient) -> None:
    session = client.start_session("agent")
    session.end()
    assert session.record("TOOL_CALL", {"tool_name": "late"}) is None
    assert session.end() is None
    assert client.flush(timeout=5)

    assert [e["event_type"] for e in local_chain(client, session)] == ["SESSION_START", "SESSION_END", "CHAIN_SEAL"]
    assert client.stats()["invalid"] == 2


def test_local_mode_writes_an_sdk_authority_chain_that_verifies_as_non_authoritative(client: AgentOpsClient) -> None:
    session = client.start_session("agent")
    for index in range(5):
        session.tool_call("t", tool_id=str(index))
    session.end()
    assert client.flush(timeout=5)
    assert client.local_writer is not None

    report = verify_bytes(client.local_writer.path_of(session.session_id).read_bytes())

    assert (report.status, report.evidence_class, report.authority) == (PASS, NON_AUTHORITATIVE_EVIDENCE, "sdk")
    assert report.event_count == 8
    assert report.sealed
    assert not report.seal_signed
    chain = local_chain(client, session)
    assert {e["chain_authority"] for e in chain} == {"sdk"}
    assert chain[-1]["event_type"] == "CHAIN_SEAL"
    assert "signature" not in chain[-1]["payload"]


def test_local_mode_chain_refused_under_the_reject_local_authority_policy(client: AgentOpsClient) -> None:
    with client.session("agent"):
        pass
    assert client.flush(timeout=5)
    assert client.local_writer is not None
    path = next(client.local_writer.directory.iterdir())

    report = verify_bytes(path.read_bytes(), policy=Policy(reject_local_authority=True))

    assert report.status == "FAIL"
    assert [violation.type for violation in report.violations] == ["POLICY_VIOLATION"]


def test_forked_child_starts_empty_and_leaves_the_parents_session_alone(client: AgentOpsClient) -> None:
    parent_session = client.start_session("parent")
    parent_session.tool_call("before-fork")
    assert client.flush(timeout=5)

    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never through pytest
        status = 1
        try:
            inherited = parent_session.record("TOOL_CALL", {"tool_name": "from-child"})
            child_session = client.start_session("child")
            child_session.tool_call("in-child")
            child_session.end()
            delivered = client.flush(timeout=5)
            stats = client.stats()
            chain = local_chain(client, child_session)
            if (
                inherited is None
                and delivered
                and stats["invalid"] == 1
                and stats["recorded"] == 3
                and [e["event_type"] for e in chain] == ["SESSION_START", "TOOL_CALL", "SESSION_END", "CHAIN_SEAL"]
            ):
                status = 0
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(wait_status) == 0
    parent_session.tool_call("after-fork")
    parent_session.end()
    assert client.flush(timeout=5)
    tools = [e["payload"]["tool_name"] for e in local_chain(client, parent_session) if e["event_type"] == "TOOL_CALL"]
    assert tools == ["before-fork", "after-fork"]


def test_a_refused_session_start_value_says_which_values_are_allowed(
    client: AgentOpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentops_replay"):
        session = client.start_session("agent", environment="production", tags="not-a-list")  # type: ignore[arg-type]
        session.end()
    assert client.flush(timeout=5)

    assert "SESSION_START environment must be one of 'prod', 'staging', 'dev' (ELS section 3)" in caplog.text
    assert "SESSION_START tags must be a list of strings (ELS section 3)" in caplog.text
    assert "production" not in caplog.text  # the value itself is not quoted: it may be content
    assert set(local_chain(client, session)[0]["payload"]) == {"agent_id", "sdk_version"}


def test_session_id_names_the_session_in_the_evidence(client: AgentOpsClient) -> None:
    session = client.start_session("agent")
    session.end()
    assert client.flush(timeout=5)

    assert {event["session_id"] for event in local_chain(client, session)} == {session.session_id}


# Importing the SDK must not import a framework it does not use: the integrations import theirs themselves.
_FRAMEWORKS = ("strands", "agents", "langgraph", "langchain_core", "opentelemetry", "openai", "pydantic")
_IMPORT_THE_SDK = """
import sys, tempfile
import agentops_replay
from agentops_replay import AgentOpsClient
import agentops_replay.integrations
client = AgentOpsClient(local_path=tempfile.mkdtemp())
with client.session("agent") as session:
    session.tool_call("t", args={"a": 1})
client.close()
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[1].split(","))))
"""


def test_the_sdk_imports_no_framework_until_an_integration_is_used() -> None:
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", _IMPORT_THE_SDK, ",".join(_FRAMEWORKS)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
