"""The receipts file (LOG.md section 7): one JSON line per acknowledged event, read by ``agentops-verify --receipts``.

Receipts are written from the service's 200 answers; here the answers are built the way the service builds them,
from the batch's events chained with ``agentops_verify.chain_event``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from agentops_replay._batch import Batch, form_batch
from agentops_replay._buffer import Buffer
from agentops_replay._receipts import ReceiptsFile
from agentops_verify import PRODUCER_FIELDS, RECEIPT_MISMATCH, chain_event, check_receipts

SESSION_ID = "6f1d9a57-2d0e-4f0a-9c39-1f7f3d1e8b10"
OTHER_SESSION_ID = "0c6f3d4e-9a55-4d1b-8d0b-7c4a4f0f2a61"


def _batches(tool_calls: int, batch_size: int, session_id: str = SESSION_ID) -> list[Batch]:
    buffer = Buffer(max_buffer=1000, batch_size=batch_size)
    state = buffer.open_session(session_id)
    buffer.append(state, "SESSION_START", {"agent_id": "a"})
    for index in range(tool_calls):
        buffer.append(state, "TOOL_CALL", {"tool_name": "t", "tool_id": str(index)})
    buffer.append(state, "SESSION_END", {"status": "success"})
    batches = []
    while (batch := form_batch(buffer, state, batch_size)) is not None:
        batches.append(batch)
        buffer.acknowledge(state, len(batch.events), batch.recorded_events, batch.last_ordinal)
    return batches


def _server_chain(batches: list[Batch]) -> list[dict[str, Any]]:
    return _chained([event for batch in batches for event in batch.events])


def _chained(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    for event in events:
        chain.append(
            chain_event(
                **{key: event[key] for key in PRODUCER_FIELDS},
                prev_event_hash=chain[-1]["event_hash"] if chain else None,
                chain_authority="server",
                authority_id="unit-test",
            )
        )
    return chain


def _answer(batch: Batch, chain: list[dict[str, Any]]) -> bytes:
    stored = chain[batch.first_sequence : batch.next_sequence]
    return json.dumps(
        {
            "session_id": batch.session_id,
            "accepted": len(stored),
            "events": [
                {"sequence_number": e["sequence_number"], "event_id": e["event_id"], "event_hash": e["event_hash"]}
                for e in stored
            ],
            "head": {"next_sequence_number": batch.next_sequence, "last_event_hash": stored[-1]["event_hash"]},
        }
    ).encode()


def _write_all(receipts: ReceiptsFile, batches: list[Batch], chain: list[dict[str, Any]]) -> None:
    for batch in batches:
        receipts.write(batch, _answer(batch, chain))
    receipts.close()


def test_each_acknowledged_event_becomes_one_line_with_exactly_the_four_keys(tmp_path: Path) -> None:
    batches = _batches(tool_calls=7, batch_size=4)
    chain = _server_chain(batches)
    path = tmp_path / "receipts.jsonl"

    _write_all(ReceiptsFile(path), batches, chain)

    lines = path.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "session_id": SESSION_ID,
            "sequence_number": e["sequence_number"],
            "event_id": e["event_id"],
            "event_hash": e["event_hash"],
        }
        for e in chain
    ]
    assert all(list(json.loads(line)) == ["session_id", "sequence_number", "event_id", "event_hash"] for line in lines)
    assert check_receipts(lines, chain, session_id=SESSION_ID) is None


def test_receipts_catch_an_acknowledged_event_changed_before_sealing(tmp_path: Path) -> None:
    batches = _batches(tool_calls=3, batch_size=2)
    chain = _server_chain(batches)
    path = tmp_path / "receipts.jsonl"
    _write_all(ReceiptsFile(path), batches, chain)

    edited = [dict(event) for event in chain]
    edited[2]["payload"] = {"tool_name": "t", "tool_id": "edited"}
    rechained = _chained(edited)  # re-hashed from the edit on, as an insider would: it still verifies

    violation = check_receipts(path.read_bytes().splitlines(), rechained, session_id=SESSION_ID)
    assert violation is not None
    assert violation.type == RECEIPT_MISMATCH
    assert violation.event_sequence == 2


def test_the_file_is_appended_to_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    path.write_bytes(b'{"session_id":"earlier","sequence_number":0,"event_id":"e","event_hash":"' + b"0" * 64 + b'"}\n')
    batches = _batches(tool_calls=1, batch_size=10)

    _write_all(ReceiptsFile(path), batches, _server_chain(batches))

    lines = path.read_bytes().splitlines()
    assert json.loads(lines[0])["session_id"] == "earlier"
    assert len(lines) == 1 + 3


def test_an_idempotent_retry_answer_adds_no_duplicate_lines(tmp_path: Path) -> None:
    batches = _batches(tool_calls=2, batch_size=2)
    chain = _server_chain(batches)
    path = tmp_path / "receipts.jsonl"
    receipts = ReceiptsFile(path)

    receipts.write(batches[0], _answer(batches[0], chain))
    receipts.write(batches[0], _answer(batches[0], chain))  # the same 200 body again
    receipts.write(batches[1], _answer(batches[1], chain))
    receipts.close()

    sequence_numbers = [json.loads(line)["sequence_number"] for line in path.read_bytes().splitlines()]
    assert sequence_numbers == [0, 1, 2, 3]


def test_an_answer_without_events_writes_nothing_and_never_raises(tmp_path: Path) -> None:
    batch = _batches(tool_calls=1, batch_size=10)[0]
    path = tmp_path / "receipts.jsonl"
    receipts = ReceiptsFile(path)

    # The "already stored" 409 (its head past the batch) counts as delivered but lists no hashes.
    receipts.write(batch, b'{"error": {"code": "SEQUENCE_CONFLICT", "details": {"head": {}}}}')
    receipts.write(batch, b"not json")
    receipts.close()

    assert not path.exists()


def test_an_acknowledgement_without_a_valid_hash_or_under_another_id_is_not_taken_at_its_word(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = _batches(tool_calls=1, batch_size=10)[0]
    chain = _server_chain([batch])
    answer = json.loads(_answer(batch, chain))
    answer["events"][0]["event_hash"] = "not-a-hash"
    answer["events"][1]["event_id"] = "another-event"
    answer["events"].append({"sequence_number": 99, "event_id": "beyond", "event_hash": "1" * 64})
    path = tmp_path / "receipts.jsonl"

    with caplog.at_level(logging.WARNING, logger="agentops_replay"):
        receipts = ReceiptsFile(path)
        receipts.write(batch, json.dumps(answer).encode())
        receipts.close()

    written = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["sequence_number"] for r in written] == [1, 2]
    assert written[0]["event_id"] == batch.events[1]["event_id"]  # what the SDK sent, not what it was told
    assert len(caplog.records) == 2


@pytest.mark.parametrize("where", ["missing-directory/receipts.jsonl", "a-directory"])
def test_an_unwritable_path_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    (tmp_path / "a-directory").mkdir()
    batches = _batches(tool_calls=5, batch_size=2)
    chain = _server_chain(batches)
    receipts = ReceiptsFile(tmp_path / where)

    with caplog.at_level(logging.DEBUG, logger="agentops_replay"):
        _write_all(receipts, batches, chain)

    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert "cannot write receipts" in errors[0].getMessage()
    assert not (tmp_path / "missing-directory").exists()
    assert list((tmp_path / "a-directory").iterdir()) == []


def test_receipts_of_several_sessions_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    first = _batches(tool_calls=1, batch_size=10)
    second = _batches(tool_calls=2, batch_size=10, session_id=OTHER_SESSION_ID)
    _write_all(ReceiptsFile(path), first, _server_chain(first))
    _write_all(ReceiptsFile(path), second, _server_chain(second))

    lines = path.read_bytes().splitlines()
    assert len(lines) == 3 + 4
    assert check_receipts(lines, _server_chain(first), session_id=SESSION_ID) is None
    assert check_receipts(lines, _server_chain(second), session_id=OTHER_SESSION_ID) is None
