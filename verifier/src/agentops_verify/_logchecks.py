"""The evidence-log checks of one session (LOG.md sections 6 and 7), made after the chain's checks and an export
document's claims, before the auditor's policy (ELS section 7), which ``--require-log-inclusion`` is part of.

In order: the export document's own ``log_proof`` (only when log keys are pinned), then a log proof the auditor
gives, then the receipts. The first failure is the session's violation (``LOG_PROOF_INVALID``,
``RECEIPT_MISMATCH``); a chain that failed is not checked further and its report's ``log`` is null. Pure: parsed
values and keys in, a report out. The events compared with the receipts come from the caller as an iterable it may
read lazily (a file read a second time), and it is read to its end, so such a source can check its bytes there.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._codes import LOG_PROOF_INVALID
from ._ecdsa import PublicKey
from ._errors import MalformedJSONError
from ._json import loads
from ._leaf import LeafError, SealedChainFacts
from ._logproof import verify_log_proof
from ._policy import Policy, build_report
from ._receipts import check_receipts
from ._report import Report, Violation
from ._state import ChainOutcome


@dataclass(frozen=True)
class LogChecks:
    """What the auditor gives for the evidence-log checks of an input.

    ``keys``: the pinned checkpoint keys (``--log-key``); an export document's own ``log_proof`` is checked only when
    some are given. ``proof``: a parsed log proof the auditor fetched (``--log-proof``: the object of
    ``GET /v1/sessions/{id}/log-proof``), checked for any input shape. ``receipts``: the lines of a receipts file
    (``--receipts``), which may hold other sessions' receipts too."""

    keys: tuple[PublicKey, ...] = ()
    proof: object | None = None
    receipts: tuple[bytes, ...] | None = None


def report_with_log_checks(
    outcome: ChainOutcome,
    policy: Policy,
    checks: LogChecks,
    *,
    seal_payload: object,
    events: Callable[[], Iterable[Any]],
    archive_sha256: str | None,
    document_proof: object | None = None,
    claim_violation: Violation | None = None,
    source: str | None = None,
    unverified_metadata: Mapping[str, Any] | None = None,
) -> Report:
    """The report of a chain whose checks gave ``outcome``, after the log checks ``checks`` asks for.

    ``seal_payload`` is the payload of the chain's last event (its seal, when the chain passed sealed); ``events``
    gives the chain's parsed events again, for the receipts; ``archive_sha256`` is the SHA-256 of a chain file's
    bytes (None for an export document, whose bytes are not the archive's); ``document_proof`` an export document's
    ``log_proof`` member; ``claim_violation`` what an export document states wrongly (ELS section 9)."""
    checked = build_report(
        outcome, Policy(accept_unsigned_seals=policy.accept_unsigned_seals), later_violation=claim_violation
    )
    proofs = [proof for proof in (document_proof if checks.keys else None, checks.proof) if proof is not None]
    violation: Violation | None = None
    log: dict[str, Any] | None = None
    if checked.passed and checked.session_id is not None:
        if proofs:
            violation, log = _check_proofs(checked, proofs, checks.keys, seal_payload, archive_sha256)
        if violation is None and checks.receipts is not None:
            remaining = iter(events())
            violation = check_receipts(checks.receipts, remaining, session_id=checked.session_id)
            collections.deque(remaining, maxlen=0)
    return build_report(
        outcome,
        policy,
        later_violation=claim_violation or violation,
        log=log,
        log_missing=_what_is_missing(checks, document_proof),
        source=source,
        unverified_metadata=unverified_metadata,
    )


def seal_payload_of_line(line: bytes) -> object:
    """The payload of the event on a JSON Lines line (the seal's, for the last line of a verified sealed chain)."""
    try:
        event = loads(line)
    except MalformedJSONError:
        return None
    return event.get("payload") if type(event) is dict else None


def _check_proofs(
    checked: Report,
    proofs: list[object],
    keys: tuple[PublicKey, ...],
    seal_payload: object,
    archive_sha256: str | None,
) -> tuple[Violation | None, dict[str, Any] | None]:
    """LOG.md section 6 for each proof in turn: the first failure, or the inclusion the last one proves."""
    try:
        facts = SealedChainFacts.from_report(checked, seal_payload if isinstance(seal_payload, Mapping) else {})
    except LeafError as error:
        # An unsealed, unsigned or local-authority session has no leaf, so no proof can be about it.
        return Violation(LOG_PROOF_INVALID, f"log proof: {error}", context={"check": "session"}), None
    log = None
    for proof in proofs:
        result = verify_log_proof(proof, facts, archive_sha256=archive_sha256, log_keys=keys)
        if result.violation is not None:
            return result.violation, None
        log = result.report_log()
    return None, log


def _what_is_missing(checks: LogChecks, document_proof: object | None) -> str:
    """Why inclusion was not verified for a session that passed, as ``--require-log-inclusion`` reports it."""
    has_proof = checks.proof is not None or document_proof is not None
    if checks.keys:
        return "no log proof was given: pass --log-proof FILE, or an export document with a log_proof"
    if has_proof:
        return "the log proof was not checked: no log key was given (--log-key)"
    return "no log proof and no log key were given (--log-proof, --log-key)"
