"""Checks on what the fake ingestion service stored, made with the verifier library (as an auditor would)."""

from __future__ import annotations

from typing import Any

from agentops_verify import PARTIAL_AUTHORITATIVE_EVIDENCE, PASS, loads, verify_bytes

from tests.functional.sdk.fake_ingest import FakeIngest


def stored_chain(fake: FakeIngest, session_id: str) -> list[dict[str, Any]]:
    return [loads(line) for line in fake.chain_bytes(session_id).splitlines()]


def assert_verifies(fake: FakeIngest, session_id: str, *, drops: int = 0) -> None:
    """The stored chain passes the verifier (contiguous, linked, no duplicate ids, order rules); it is unsealed, so
    it is partial evidence at best, and every dropped event is accounted for by its LOG_DROP events."""
    report = verify_bytes(fake.chain_bytes(session_id))
    assert report.status == PASS, report.violations
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert "UNSEALED_SESSION" in report.partial_reasons
    assert report.total_drops == drops
    assert ("LOG_DROP_PRESENT" in report.partial_reasons) == (drops > 0)
