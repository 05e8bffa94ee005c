"""Receipts (LOG.md section 7): the acknowledgements an agent kept, checked against the sealed chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentops_verify import RECEIPT_MISMATCH, ReceiptsFormatError, check_receipts

from tests.support.chains import Event, build_chain, rehash_from, reseal

CHAIN = build_chain(5)
SESSION = CHAIN[0]["session_id"]


def receipt(event: Event) -> dict[str, Any]:
    return {key: event[key] for key in ("session_id", "sequence_number", "event_id", "event_hash")}


def receipts_file(events: list[Event], *extra: dict[str, Any]) -> list[bytes]:
    """As the SDK writes it: one JSON line per acknowledged event (the seal is never acknowledged: it is not
    appended by the agent)."""
    return [json.dumps(item).encode() + b"\n" for item in [*(receipt(event) for event in events[:-1]), *extra]]


def test_receipts_of_the_sealed_session_pass() -> None:
    assert check_receipts(receipts_file(CHAIN), CHAIN, session_id=SESSION) is None


def test_repeated_identical_receipts_from_a_retried_batch_pass() -> None:
    lines = receipts_file(CHAIN)
    assert check_receipts([*lines, *lines[1:3], b"\n"], CHAIN, session_id=SESSION) is None


def test_other_sessions_receipts_in_the_same_file_are_not_this_sessions_concern() -> None:
    other = build_chain(3)
    lines = receipts_file(other) + receipts_file(CHAIN)
    assert check_receipts(lines, CHAIN, session_id=SESSION) is None


def test_event_changed_before_sealing_is_a_receipt_mismatch() -> None:
    """The stored session was edited after the service acknowledged it, and then re-chained and sealed."""
    acknowledged = receipts_file(CHAIN)
    changed = [dict(event) for event in CHAIN]
    changed[2] = {**changed[2], "payload": {**changed[2]["payload"], "tampered": True}}
    sealed = reseal(rehash_from(changed, 2), None)
    violation = check_receipts(acknowledged, sealed, session_id=SESSION)
    assert violation is not None
    assert violation.type == RECEIPT_MISMATCH
    assert violation.event_sequence == 2
    assert violation.event_id == CHAIN[2]["event_id"]
    assert violation.context["acknowledged"]["event_hash"] == CHAIN[2]["event_hash"]
    assert violation.context["sealed"]["event_hash"] == sealed[2]["event_hash"]


def test_acknowledged_event_missing_from_the_sealed_chain_is_a_receipt_mismatch() -> None:
    """The session was cut short before sealing: what the agent was told is stored is not in the archive."""
    shorter = build_chain(3, session_id=SESSION)
    acknowledged = receipts_file(CHAIN)
    violation = check_receipts(acknowledged, CHAIN[:3], session_id=SESSION)
    assert violation is not None
    assert violation.type == RECEIPT_MISMATCH
    assert violation.event_sequence == 3
    assert "missing" in violation.message
    violation = check_receipts(acknowledged, shorter, session_id=SESSION)
    assert violation is not None
    assert violation.event_sequence == 0  # another chain under the same id: its first event already differs


def test_two_different_acknowledgements_of_one_position_are_a_mismatch() -> None:
    forged = {**receipt(CHAIN[1]), "event_hash": "0" * 64}
    violation = check_receipts(receipts_file(CHAIN, forged), CHAIN, session_id=SESSION)
    assert violation is not None
    assert violation.event_sequence == 1


def test_receipts_file_that_acknowledges_nothing_of_the_session_fails_rather_than_checking_nothing() -> None:
    violation = check_receipts(receipts_file(build_chain(3)), CHAIN, session_id=SESSION)
    assert violation is not None
    assert violation.type == RECEIPT_MISMATCH
    assert SESSION in violation.message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json\n", "not valid JSON"),
        (b"[]\n", "exactly"),
        (json.dumps({**receipt(CHAIN[0]), "extra": 1}).encode(), "exactly"),
        (json.dumps({**receipt(CHAIN[0]), "sequence_number": "0"}).encode(), "sequence_number"),
        (json.dumps({**receipt(CHAIN[0]), "sequence_number": True}).encode(), "sequence_number"),
        (json.dumps({**receipt(CHAIN[0]), "sequence_number": -1}).encode(), "sequence_number"),
        (json.dumps({**receipt(CHAIN[0]), "event_hash": None}).encode(), "strings"),
    ],
)
def test_malformed_receipts_file_cannot_be_checked(line: bytes, message: str) -> None:
    with pytest.raises(ReceiptsFormatError, match=message):
        check_receipts([*receipts_file(CHAIN), line], CHAIN, session_id=SESSION)
