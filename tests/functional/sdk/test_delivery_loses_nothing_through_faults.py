"""Delivery against a fake ingestion service that fails, throttles, times out and loses responses.

Whatever the faults, the stored chain holds every recorded event exactly once, in order, with no gap, except the
events the SDK itself reported as dropped, which appear as LOG_DROP events in their place.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay._batch import form_batch

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest
from tests.support.paths import REPO_ROOT

Ingest = tuple[FakeIngest, str]


def _fast_client(endpoint: str, **options: Any) -> AgentOpsClient:
    settings: dict[str, Any] = {"flush_interval": 0.02, "backoff_base": 0.01, "backoff_max": 0.05, "batch_size": 10}
    settings.update(options)
    return AgentOpsClient(endpoint, **settings)


def test_every_fault_is_retried_without_loss_duplicates_or_gaps(ingest: Ingest) -> None:
    fake, endpoint = ingest
    fake.stall_seconds = 0.5
    fake.faults.extend(["500", "429", "reset", "store_then_reset", "store_then_stall", "store_then_conflict"] * 3)
    client = _fast_client(endpoint, request_timeout=0.2)

    session = client.start_session("agent")
    for index in range(300):
        session.tool_call("t", tool_id=str(index))
    session.end()
    assert client.flush(timeout=30)
    client.close(timeout=1)

    assert_verifies(fake, session.session_id)
    chain = stored_chain(fake, session.session_id)
    assert [e["payload"].get("tool_id") for e in chain[1:-1]] == [str(index) for index in range(300)]
    assert [chain[0]["event_type"], chain[-1]["event_type"]] == ["SESSION_START", "SESSION_END"]
    stats = client.stats()
    assert stats["sent"] == stats["recorded"] == 302
    assert stats["dropped"] == stats["invalid"] == stats["rejected"] == stats["pending"] == 0
    assert stats["retries"] >= 15


def test_threads_recording_into_their_own_sessions_each_get_a_complete_chain(ingest: Ingest) -> None:
    import threading

    fake, endpoint = ingest
    fake.faults.extend(["500", "store_then_reset", "429"] * 4)
    client = _fast_client(endpoint, request_timeout=0.5)
    sessions = [client.start_session(f"worker-{worker}") for worker in range(4)]

    def work(index: int) -> None:
        for step in range(200):
            sessions[index].tool_call("t", tool_id=f"{index}-{step}")
        sessions[index].end()

    workers = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert client.flush(timeout=30)
    client.close(timeout=1)

    for index, session in enumerate(sessions):
        assert_verifies(fake, session.session_id)
        tool_ids = [
            e["payload"]["tool_id"] for e in stored_chain(fake, session.session_id) if e["event_type"] == "TOOL_CALL"
        ]
        assert tool_ids == [f"{index}-{step}" for step in range(200)]
    assert client.stats()["sent"] == 4 * 202


def test_a_forked_child_delivers_its_own_sessions_over_its_own_connection(ingest: Ingest) -> None:
    import os

    fake, endpoint = ingest
    client = _fast_client(endpoint)
    parent = client.start_session("parent")
    parent.tool_call("before-fork")
    assert client.flush(timeout=10)  # the parent now holds an open keep-alive connection

    pid = os.fork()
    if pid == 0:  # the child reports through its exit status only
        status = 1
        try:
            child = client.start_session("child")
            child.tool_call("in-child")
            child.end()
            if client.flush(timeout=10) and parent.record("TOOL_CALL", {"tool_name": "from-child"}) is None:
                status = 0
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    parent.tool_call("after-fork")
    parent.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert len(fake.chains) == 2
    for session_id in fake.chains:
        assert_verifies(fake, session_id)
    tools = sorted(e["payload"]["tool_name"] for sid in fake.chains for e in stored_chain(fake, sid)[1:-1])
    assert tools == ["after-fork", "before-fork", "in-child"]


def test_requests_are_signed_with_sigv4_for_execute_api_in_the_chosen_region(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = ingest
    monkeypatch.setenv("AGENTOPS_ENDPOINT", endpoint)
    client = AgentOpsClient(region="eu-west-1", flush_interval=0.02)
    with client.session("agent"):
        pass
    assert client.flush(timeout=5)
    client.close(timeout=1)

    assert fake.authorizations
    credential = fake.authorizations[0].split("Credential=")[1].split(",")[0]
    assert credential.startswith("AKIDSDKFUNCTIONAL/")
    assert credential.endswith("/eu-west-1/execute-api/aws4_request")


def test_the_sender_survives_its_own_errors(ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, endpoint = ingest
    calls = []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the sender")
        return form_batch(*args, **kwargs)

    monkeypatch.setattr("agentops_replay._sender.form_batch", failing_once)
    client = _fast_client(endpoint)
    with client.session("agent") as session:
        session.tool_call("t")
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert client.stats()["internal_errors"] == 1
    assert fake.event_types(session.session_id) == ["SESSION_START", "TOOL_CALL", "SESSION_END"]


def test_a_full_buffer_during_an_outage_shows_up_as_log_drop_when_the_link_returns(ingest: Ingest) -> None:
    fake, endpoint = ingest
    fake.faults.extend(["500"] * 10_000)
    client = _fast_client(endpoint, max_buffer=50)

    session = client.start_session("agent")
    for index in range(200):
        session.tool_call("t", tool_id=str(index))
    session.end()
    time.sleep(0.2)
    fake.faults.clear()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert_verifies(fake, session.session_id, drops=client.stats()["dropped"])
    chain = stored_chain(fake, session.session_id)
    drops = [e["payload"] for e in chain if e["event_type"] == "LOG_DROP"]
    stats = client.stats()
    assert stats["dropped"] > 0
    assert sum(drop["dropped_count"] for drop in drops) == stats["dropped"]
    assert {drop["drop_reason"] for drop in drops} == {"BUFFER_FULL"}
    assert drops[-1]["cumulative_drops"] == stats["dropped"]
    tool_ids = [e["payload"]["tool_id"] for e in chain if e["event_type"] == "TOOL_CALL"]
    assert len(tool_ids) + stats["dropped"] == 200
    assert tool_ids == sorted(tool_ids, key=int)
    assert chain[-1]["event_type"] == "SESSION_END"


def test_events_stuck_in_a_long_outage_become_network_loss(ingest: Ingest) -> None:
    fake, endpoint = ingest
    fake.faults.extend(["500"] * 10_000)
    client = _fast_client(endpoint, network_loss_after=0.2)

    session = client.start_session("agent")
    for index in range(30):
        session.tool_call("t", tool_id=str(index))
    give_up_at = time.monotonic() + 10
    while client.stats()["dropped"] == 0 and time.monotonic() < give_up_at:
        time.sleep(0.05)  # the outage lasts until the SDK has declared events lost to it
    fake.faults.clear()
    session.tool_call("t", tool_id="after")
    session.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert_verifies(fake, session.session_id, drops=client.stats()["dropped"])
    chain = stored_chain(fake, session.session_id)
    drops = [e["payload"] for e in chain if e["event_type"] == "LOG_DROP"]
    assert drops
    assert {drop["drop_reason"] for drop in drops} == {"NETWORK_LOSS"}
    assert sum(drop["dropped_count"] for drop in drops) == client.stats()["dropped"]
    assert [e["payload"]["tool_id"] for e in chain if e["event_type"] == "TOOL_CALL"][-1] == "after"


def test_a_refused_session_is_counted_and_never_raised(ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, endpoint = ingest
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = _fast_client(endpoint)

    session = client.start_session("agent")
    assert client.flush(timeout=5)
    session.tool_call("t")
    session.end()
    assert client.flush(timeout=5)
    client.close(timeout=1)

    assert fake.chains.get(session.session_id, []) == []
    stats = client.stats()
    assert stats["rejected"] == 3
    assert stats["sent"] == 0


def _dead_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_dead_endpoint_leaves_the_agent_unaffected_and_close_is_bounded() -> None:
    client = AgentOpsClient(_dead_endpoint(), max_buffer=1000)

    session = client.start_session("agent")
    accepted = [session.tool_call("t", tool_id=str(index)) for index in range(5000)]
    session.end()
    closing_started = time.perf_counter()
    delivered = client.close(timeout=1)
    closing_seconds = time.perf_counter() - closing_started

    assert delivered is False
    assert closing_seconds < 2
    stats = client.stats()
    assert stats["pending"] <= 1000 + 2  # max_buffer, plus start and end, which are never dropped
    assert stats["dropped"] == 5001 - 1000
    assert sum(event_id is not None for event_id in accepted) == 1000 - 1  # SESSION_START holds one place
    assert session.record("TOOL_CALL", {"tool_name": "after close"}) is None


def test_a_silent_endpoint_cannot_hold_close_past_its_timeout(ingest: Ingest) -> None:
    fake, endpoint = ingest
    fake.stall_seconds = 10
    fake.faults.append("store_then_stall")
    client = AgentOpsClient(endpoint, request_timeout=30)
    session = client.start_session("agent")
    time.sleep(0.3)  # the first request is now stalled in the server
    session.end()

    started = time.perf_counter()
    client.close(timeout=1)

    assert time.perf_counter() - started < 2


_EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from agentops_replay import AgentOpsClient

    client = AgentOpsClient(sys.argv[1], flush_interval=60)
    session = client.start_session("exiting-agent")
    for index in range(50):
        session.tool_call("t", tool_id=str(index))
    session.end()
    print(session.session_id, flush=True)
    """
)


def _run_exit_script(endpoint: str) -> tuple[str, float]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, endpoint],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=True,
    )
    return completed.stdout.strip(), time.perf_counter() - started


def test_exit_without_close_delivers_the_session_within_the_exit_bound(ingest: Ingest) -> None:
    fake, endpoint = ingest

    session_id, _ = _run_exit_script(endpoint)

    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    assert len(chain) == 52
    assert chain[-1]["event_type"] == "SESSION_END"


def test_exit_without_close_against_a_dead_endpoint_is_prompt() -> None:
    _, seconds = _run_exit_script(_dead_endpoint())

    assert seconds < 8  # interpreter start and imports, plus the 2 s exit bound
