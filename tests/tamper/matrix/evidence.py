"""What an auditor holds (the evidence bytes, the keys they trust, their policy) and the verdict the verifier gives.

Every matrix case builds an ``Evidence`` and compares ``verdict_of`` with its expected ``Verdict``. The verifier is
called exactly as an auditor's tooling would call the library; the CLI sample runs the same evidence through
``python -m agentops_verify``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentops_verify import LogChecks, Policy, Report, TrustStore, canonicalize, load_pem_public_key, verify_bytes

from tests.support.chains import Event, to_jsonl
from tests.support.keys import TestSigner

AUTHORITATIVE = "AUTHORITATIVE_EVIDENCE"
PARTIAL = "PARTIAL_AUTHORITATIVE_EVIDENCE"
NON_AUTHORITATIVE = "NON_AUTHORITATIVE_EVIDENCE"


@dataclass(frozen=True)
class Verdict:
    """The parts of the report an auditor acts on (ELS section 7)."""

    status: str
    first_violation: str | None = None
    violation_sequence: int | None = None
    evidence_class: str = NON_AUTHORITATIVE
    partial_reasons: tuple[str, ...] = ()


def passes(evidence_class: str, *reasons: str) -> Verdict:
    return Verdict("PASS", None, None, evidence_class, reasons)


def fails(code: str, sequence: int | None) -> Verdict:
    return Verdict("FAIL", code, sequence, NON_AUTHORITATIVE, ())


@dataclass(frozen=True)
class Evidence:
    """The evidence file's bytes and what the auditor adds: trusted seal keys, pinned key ids, policy options and,
    for the evidence log (LOG.md sections 6 and 7), pinned log keys, a log proof and a receipts file's lines."""

    data: bytes
    trusted: tuple[TestSigner, ...] = ()
    pinned_ids: tuple[str, ...] = ()
    reject_local_authority: bool = False
    require_authoritative: bool = False
    accept_unsigned_seals: bool = False
    expected_warnings: frozenset[str] = field(default_factory=frozenset)
    log_keys: tuple[TestSigner, ...] = ()
    log_proof: Any = None
    receipts: tuple[bytes, ...] | None = None
    require_log_inclusion: bool = False

    def trust_store(self) -> TrustStore:
        return TrustStore([load_pem_public_key(s.public_key_pem) for s in self.trusted], self.pinned_ids)

    def policy(self) -> Policy:
        return Policy(
            reject_local_authority=self.reject_local_authority,
            require_authoritative=self.require_authoritative,
            accept_unsigned_seals=self.accept_unsigned_seals,
            require_log_inclusion=self.require_log_inclusion,
        )

    def log_checks(self) -> LogChecks | None:
        if not (self.log_keys or self.log_proof is not None or self.receipts is not None or self.require_log_inclusion):
            return None
        keys = tuple(load_pem_public_key(s.public_key_pem) for s in self.log_keys)
        return LogChecks(keys=keys, proof=self.log_proof, receipts=self.receipts)


def verify(evidence: Evidence) -> Report:
    return verify_bytes(
        evidence.data, trust=evidence.trust_store(), policy=evidence.policy(), log=evidence.log_checks()
    )


def verdict_of(report: Report) -> Verdict:
    violation = report.first_violation
    return Verdict(
        report.status,
        violation.type if violation else None,
        violation.event_sequence if violation else None,
        report.evidence_class,
        tuple(report.partial_reasons),
    )


def jsonl(events: Sequence[Event]) -> bytes:
    return to_jsonl(events)


def lines_of(events: Sequence[Event]) -> list[bytes]:
    return [canonicalize(event) for event in events]


def join_lines(lines: Sequence[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def edited(events: Sequence[Event], index: int, **changes: Any) -> list[Event]:
    """A copy with top-level fields of one event replaced (no hashes redone)."""
    copied = copy.deepcopy(list(events))
    copied[index].update(changes)
    return copied


def export_document(
    events: Sequence[Event],
    report: Report,
    *,
    public_keys: Sequence[dict[str, str]] = (),
    withheld: Sequence[int] = (),
    log_proof: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An export document of ELS section 9 whose stated class and report are the verifier's own."""
    shown = copy.deepcopy(list(events))
    for sequence in withheld:
        del shown[sequence]["payload"]
        shown[sequence]["payload_withheld"] = True
    last = events[-1]
    verification = report.export_verification()
    return {
        "export_version": "1",
        "session_id": report.session_id,
        "evidence_class": report.evidence_class,
        "chain_authority": report.authority,
        "verification": verification,
        "seal": copy.deepcopy(last["payload"]) if last["event_type"] == "CHAIN_SEAL" else None,
        "events": shown,
        "public_keys": list(public_keys),
        "generated_at": "2026-01-02T00:00:00Z",
        "generator": "tamper-matrix/1",
        "log_proof": copy.deepcopy(log_proof),
    }


def document_bytes(document: dict[str, Any]) -> bytes:
    return canonicalize(document)


def pretty(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")
