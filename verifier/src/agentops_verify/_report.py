"""The verification report of ELS section 7: what the verifier found, in a form people and programs read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._codes import PASS
from ._rules import EXPORT_VERIFICATION_KEYS

VERIFIER_VERSION = "0.1.0"


@dataclass(frozen=True)
class Finding:
    """One observation about one event (or the whole input when ``event_sequence`` is None).

    ``event_sequence`` is the event's position in the session, which is its sequence number for every event up to
    the first violation."""

    type: str
    message: str
    event_sequence: int | None = None
    event_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "event_sequence": self.event_sequence,
            "event_id": self.event_id,
            "context": dict(self.context),
        }

    def location(self) -> str:
        """``at sequence N (event <id>)``, as much of it as is known."""
        parts = []
        if self.event_sequence is not None:
            parts.append(f"at sequence {self.event_sequence}")
        if self.event_id is not None:
            parts.append(f"(event {self.event_id})")
        return " ".join(parts)


@dataclass(frozen=True)
class Violation(Finding):
    """A finding that makes the session FAIL."""


@dataclass(frozen=True)
class Report:
    """The outcome of verifying one input. ``to_dict()`` gives exactly the keys of ELS section 7; ``source`` (the
    file name, when there is one) is for display only.

    ``log`` is the evidence-log inclusion that was checked, or None. ``unverified_metadata`` is None unless the input
    was an export document; then it repeats the document's ``generated_at``, ``generator`` and ``pii_findings``
    (those it has), which no hash or signature covers: shown, never vouched for."""

    session_id: str | None
    status: str
    evidence_class: str
    partial_reasons: tuple[str, ...]
    authority: str | None
    sealed: bool
    seal_signed: bool
    seal_key_id: str | None
    seal_key_trusted: bool
    complete: bool
    event_count: int
    total_drops: int
    first_event_hash: str | None
    final_event_hash: str | None
    replay_fingerprint: str | None
    violations: tuple[Violation, ...]
    warnings: tuple[Finding, ...]
    verifier_version: str
    spec_version: str
    log: Mapping[str, Any] | None = None
    unverified_metadata: Mapping[str, Any] | None = None
    source: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def first_violation(self) -> Violation | None:
        return self.violations[0] if self.violations else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report; ``unverified_metadata`` is present only for an export document."""
        report = {
            "session_id": self.session_id,
            "status": self.status,
            "evidence_class": self.evidence_class,
            "partial_reasons": list(self.partial_reasons),
            "authority": self.authority,
            "sealed": self.sealed,
            "seal_signed": self.seal_signed,
            "seal_key_id": self.seal_key_id,
            "seal_key_trusted": self.seal_key_trusted,
            "complete": self.complete,
            "event_count": self.event_count,
            "total_drops": self.total_drops,
            "first_event_hash": self.first_event_hash,
            "final_event_hash": self.final_event_hash,
            "replay_fingerprint": self.replay_fingerprint,
            "violations": [violation.to_dict() for violation in self.violations],
            "warnings": [warning.to_dict() for warning in self.warnings],
            "verifier_version": self.verifier_version,
            "spec_version": self.spec_version,
            "log": dict(self.log) if self.log is not None else None,
        }
        if self.unverified_metadata is not None:
            report["unverified_metadata"] = dict(self.unverified_metadata)
        return report

    def export_verification(self) -> dict[str, Any]:
        """The ``verification`` member an export document carries (ELS sections 7 and 9): exactly the report keys
        that a verifier of the document recomputes, whoever it trusts."""
        report = self.to_dict()
        return {key: report[key] for key in EXPORT_VERIFICATION_KEYS}
