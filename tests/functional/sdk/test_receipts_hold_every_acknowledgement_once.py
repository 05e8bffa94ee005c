"""Receipts against a fake ingestion service: every acknowledgement the SDK received is in the receipts file once,
matches the chain the service built, and a receipts file that cannot be written never reaches the agent."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay._receipts import ReceiptsFile
from agentops_verify import RECEIPT_MISMATCH, check_receipts

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest

Ingest = tuple[FakeIngest, str]


def _fast_client(endpoint: str, **options: Any) -> AgentOpsClient:
    settings: dict[str, Any] = {"flush_interval": 0.02, "backoff_base": 0.01, "backoff_max": 0.05, "batch_size": 10}
    settings.update(options)
    return AgentOpsClient(endpoint, **settings)


def _run_session(client: AgentOpsClient, tool_calls: int) -> str:
    session = client.start_session("agent")
    for index in range(tool_calls):
        session.tool_call("t", tool_id=str(index))
    session.end()
    assert client.flush(timeout=30)
    return session.session_id


def _receipts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_receipts_hold_every_acknowledged_event_once_through_retries_and_lost_answers(
    ingest: Ingest, tmp_path: Path
) -> None:
    fake, endpoint = ingest
    fake.stall_seconds = 0.5
    # Lost and late answers: the retry's idempotent 200 is the acknowledgement, and it is kept once.
    fake.faults.extend(["500", "store_then_reset", "429", "store_then_stall", "reset"] * 3)
    path = tmp_path / "receipts.jsonl"
    client = _fast_client(endpoint, request_timeout=0.2, receipts_path=path)

    session_id = _run_session(client, tool_calls=100)
    client.close(timeout=1)

    assert_verifies(fake, session_id)
    chain = stored_chain(fake, session_id)
    assert _receipts(path) == [
        {
            "session_id": session_id,
            "sequence_number": event["sequence_number"],
            "event_id": event["event_id"],
            "event_hash": event["event_hash"],
        }
        for event in chain
    ]
    assert check_receipts(path.read_bytes().splitlines(), chain, session_id=session_id) is None


def test_a_batch_acknowledged_only_by_a_later_head_leaves_no_invented_receipts(ingest: Ingest, tmp_path: Path) -> None:
    fake, endpoint = ingest
    fake.faults.append("store_then_conflict")  # the first batch is stored, and its answer names no hashes
    path = tmp_path / "receipts.jsonl"
    client = _fast_client(endpoint, receipts_path=path)

    session_id = _run_session(client, tool_calls=28)
    client.close(timeout=1)

    chain = stored_chain(fake, session_id)
    receipted = [r["sequence_number"] for r in _receipts(path)]
    assert receipted == list(range(receipted[0], len(chain)))
    assert receipted[0] > 0
    assert check_receipts(path.read_bytes().splitlines(), chain, session_id=session_id) is None


def test_the_receipts_file_comes_from_the_environment_and_serves_several_sessions(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = ingest
    path = tmp_path / "receipts.jsonl"
    monkeypatch.setenv("AGENTOPS_RECEIPTS_FILE", str(path))
    client = _fast_client(endpoint)

    first = _run_session(client, tool_calls=5)
    second = _run_session(client, tool_calls=15)
    client.close(timeout=1)

    lines = path.read_bytes().splitlines()
    assert len(lines) == 7 + 17
    for session_id in (first, second):
        assert check_receipts(lines, stored_chain(fake, session_id), session_id=session_id) is None


def test_receipts_are_written_on_the_sender_thread_never_the_agents(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake, endpoint = ingest
    writers: set[str] = set()
    write = ReceiptsFile.write

    def noting_the_thread(self: ReceiptsFile, *args: Any) -> None:
        writers.add(threading.current_thread().name)
        write(self, *args)

    monkeypatch.setattr(ReceiptsFile, "write", noting_the_thread)
    path = tmp_path / "receipts.jsonl"
    client = _fast_client(endpoint, receipts_path=path)
    assert not path.exists()  # not even opened on the agent's thread

    _run_session(client, tool_calls=30)
    client.close(timeout=1)

    assert writers == {"agentops-replay-sender"}
    assert len(_receipts(path)) == 32


def test_an_unwritable_receipts_file_is_logged_once_and_delivery_goes_on(
    ingest: Ingest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, endpoint = ingest
    client = _fast_client(endpoint, receipts_path=tmp_path)  # a directory: every open fails

    with caplog.at_level(logging.WARNING, logger="agentops_replay"):
        session_id = _run_session(client, tool_calls=50)
        assert client.close(timeout=1)

    assert_verifies(fake, session_id)
    stats = client.stats()
    assert stats["sent"] == stats["recorded"] == 52
    assert stats["internal_errors"] == 0
    assert [record.getMessage() for record in caplog.records if "receipts" in record.getMessage()] == [
        f"agentops: cannot write receipts to {tmp_path} (IsADirectoryError: [Errno 21] Is a directory: "
        f"'{tmp_path}'); delivery goes on without them (said once)"
    ]


def test_receipts_show_the_service_changed_what_it_acknowledged(ingest: Ingest, tmp_path: Path) -> None:
    fake, endpoint = ingest
    path = tmp_path / "receipts.jsonl"
    client = _fast_client(endpoint, receipts_path=path)
    session_id = _run_session(client, tool_calls=5)
    client.close(timeout=1)

    chain = stored_chain(fake, session_id)
    chain[3] = {**chain[3], "event_hash": "0" * 64}  # what the service keeps is no longer what it acknowledged

    violation = check_receipts(path.read_bytes().splitlines(), chain, session_id=session_id)
    assert violation is not None
    assert violation.type == RECEIPT_MISMATCH
    assert violation.event_sequence == 3
