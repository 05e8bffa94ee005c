"""Shared helpers of the tamper suite: verify a list of events the way an auditor's file would be verified."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from agentops_verify import (
    Policy,
    Report,
    TrustStore,
    canonicalize,
    load_pem_public_key,
    verify_bytes,
    verify_lines,
)

from tests.support.chains import Event, to_jsonl
from tests.support.keys import TestSigner, default_signer


def trust_for(*signers: TestSigner) -> TrustStore:
    return TrustStore(load_pem_public_key(signer.public_key_pem) for signer in signers)


def verify_chain(events: Sequence[Event], *, trust: TrustStore | None = None, policy: Policy | None = None) -> Report:
    """Verify ``events`` as the archive writes them (JCS lines), through the streaming line entry; asserts that
    verifying left the events untouched."""
    before = copy.deepcopy(list(events))
    lines = to_jsonl(events).splitlines(keepends=True)
    report = verify_lines(lines, trust=trust, policy=policy if policy is not None else Policy())
    assert list(events) == before
    return report


def verify_raw_lines(lines: Sequence[bytes], *, trust: TrustStore | None = None) -> Report:
    return verify_bytes(b"\n".join(lines) + b"\n", trust=trust)


def jsonl_lines(events: Sequence[Event]) -> list[bytes]:
    return [canonicalize(event) for event in events]


def first_violation(report: Report) -> tuple[str, int | None]:
    assert report.violations, f"expected a violation, got {report.to_dict()}"
    violation = report.violations[0]
    return violation.type, violation.event_sequence


def default_trust() -> TrustStore:
    return trust_for(default_signer())


def with_changes(events: Sequence[Event], index: int, **changes: Any) -> list[Event]:
    """A deep copy of ``events`` with top-level fields of one event replaced (no re-hashing)."""
    copied = copy.deepcopy(list(events))
    copied[index].update(changes)
    return copied
