"""From what the checks established to the report: the evidence class (ELS section 6), the auditor's policy (section
7, policies) and the report itself. The policy object and the code that applies it live together here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._report import VERIFIER_VERSION, Report, Violation
from ._state import ChainOutcome, ChainState

# What ``--require-log-inclusion`` reports missing when the caller does not say more.
NO_LOG_PROOF_CHECKED = "no log proof was checked"


@dataclass(frozen=True)
class Policy:
    """What the auditor demands beyond the chain being intact.

    ``reject_local_authority``: FAIL sessions whose authority is ``sdk``.
    ``require_authoritative``: FAIL anything that is not ``AUTHORITATIVE_EVIDENCE``.
    ``accept_unsigned_seals``: count a legacy unsigned server seal as a seal (ELS section 6, legacy option).
    ``require_log_inclusion``: FAIL a session whose inclusion in the evidence log was not verified (LOG.md
    section 6)."""

    reject_local_authority: bool = False
    require_authoritative: bool = False
    accept_unsigned_seals: bool = False
    require_log_inclusion: bool = False

    def violation(
        self,
        authority: str | None,
        evidence_class: str,
        reasons: tuple[str, ...],
        *,
        log_included: bool = False,
        log_missing: str = NO_LOG_PROOF_CHECKED,
    ) -> Violation | None:
        """The POLICY_VIOLATION of a session that passed every check but not this policy, or None.

        ``log_included`` says whether the session's log inclusion was verified; ``log_missing`` says what was
        missing when it was not, for the message."""
        if self.reject_local_authority and authority == rules.SDK:
            return Violation(
                codes.POLICY_VIOLATION,
                "local-authority (sdk) session rejected by --reject-local-authority",
                context={"policy": "reject_local_authority"},
            )
        if self.require_authoritative and evidence_class != codes.AUTHORITATIVE_EVIDENCE:
            detail = f" ({', '.join(reasons)})" if reasons else ""
            return Violation(
                codes.POLICY_VIOLATION,
                f"evidence class {evidence_class}{detail} does not meet --require-authoritative",
                context={
                    "policy": "require_authoritative",
                    "evidence_class": evidence_class,
                    "partial_reasons": list(reasons),
                },
            )
        if self.require_log_inclusion and not log_included:
            return Violation(
                codes.POLICY_VIOLATION,
                f"--require-log-inclusion: inclusion in the evidence log was not verified; {log_missing}",
                context={"policy": "require_log_inclusion"},
            )
        return None


def classify(
    outcome: ChainOutcome, *, accept_unsigned_seals: bool, assume_key_trusted: bool = False
) -> tuple[str, tuple[str, ...]]:
    """ELS section 6 for a chain that passed every check: the class and its partial reasons.

    ``assume_key_trusted`` recomputes the class as an export document may claim it (ELS section 9)."""
    if outcome.authority != rules.SERVER:
        return codes.NON_AUTHORITATIVE_EVIDENCE, ()
    seal = outcome.seal
    reasons = []
    if not seal.sealed:
        reasons.append(codes.UNSEALED_SESSION)
    elif not seal.signed:
        if not accept_unsigned_seals:
            reasons.append(codes.UNSIGNED_SEAL)
    elif assume_key_trusted:
        if not seal.valid_if_trusted:
            return codes.NON_AUTHORITATIVE_EVIDENCE, ()
    elif not seal.key_trusted:
        reasons.append(codes.UNTRUSTED_SEAL_KEY)
    if not outcome.complete:
        reasons.append(codes.MISSING_SESSION_END)
    if outcome.has_log_drop:
        reasons.append(codes.LOG_DROP_PRESENT)
    if reasons:
        return codes.PARTIAL_AUTHORITATIVE_EVIDENCE, tuple(reasons)
    return codes.AUTHORITATIVE_EVIDENCE, ()


def build_report(
    outcome: ChainOutcome,
    policy: Policy,
    *,
    later_violation: Violation | None = None,
    source: str | None = None,
    log: Mapping[str, Any] | None = None,
    log_missing: str = NO_LOG_PROOF_CHECKED,
    unverified_metadata: Mapping[str, Any] | None = None,
) -> Report:
    """Classify (ELS section 6), apply the policy (section 7) and assemble the report.

    ``later_violation`` is the first failure of a check made after the chain's: what an export document states
    wrongly (section 9), a log proof or receipts that do not match (LOG.md sections 6 and 7). ``log`` is the
    evidence-log inclusion when it was verified, and ``log_missing`` what was missing when it was not (for
    ``--require-log-inclusion``); ``unverified_metadata`` an export document's members that nothing covers."""
    violation = outcome.violation or later_violation
    reasons: tuple[str, ...] = ()
    if violation is not None:
        evidence_class = codes.NON_AUTHORITATIVE_EVIDENCE
    else:
        evidence_class, reasons = classify(outcome, accept_unsigned_seals=policy.accept_unsigned_seals)
        violation = policy.violation(
            outcome.authority, evidence_class, reasons, log_included=log is not None, log_missing=log_missing
        )
        if violation is not None:
            evidence_class, reasons = codes.NON_AUTHORITATIVE_EVIDENCE, ()
    passed = violation is None
    seal = outcome.seal
    return Report(
        session_id=outcome.session_id,
        status=codes.PASS if passed else codes.FAIL,
        evidence_class=evidence_class,
        partial_reasons=reasons,
        authority=outcome.authority,
        sealed=seal.sealed,
        seal_signed=seal.signed,
        seal_key_id=seal.key_id,
        seal_key_trusted=seal.key_trusted,
        complete=outcome.complete,
        event_count=outcome.event_count,
        total_drops=outcome.total_drops,
        first_event_hash=outcome.first_event_hash,
        final_event_hash=outcome.final_event_hash,
        replay_fingerprint=outcome.final_event_hash if passed else None,
        violations=(violation,) if violation is not None else (),
        warnings=outcome.warnings,
        verifier_version=VERIFIER_VERSION,
        spec_version=rules.SPEC_VERSION,
        log=log,
        unverified_metadata=unverified_metadata,
        source=source,
    )


def input_failure(
    violation: Violation,
    policy: Policy,
    *,
    source: str | None = None,
    unverified_metadata: Mapping[str, Any] | None = None,
) -> Report:
    """The report of an input that is not a session, or not one the verifier can read: no events, one violation."""
    outcome = dataclasses.replace(ChainState().outcome(), violation=violation)
    return build_report(outcome, policy, source=source, unverified_metadata=unverified_metadata)
