"""Export documents (ELS sections 7 and 9): every member checked (rev 2), then the events, then what the document
claims against what its events prove.

Order: the document's members (names, types, each ``public_keys`` entry), then the chain, then the claims. The
members ``generated_at``, ``generator`` and ``pii_findings`` are covered by no hash or signature: they are checked
for form only and repeated in the report as ``unverified_metadata``. ``log_proof`` must be an object or null; when
the auditor pins log keys it is checked after the claims (LOG.md section 6, ``_logchecks``), with the leaf's
``archive_sha256`` left unchecked: an export's bytes are not the archive's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._chain import ChainVerifier
from ._describe import json_kind
from ._ecdsa import KeyFormatError, PublicKey
from ._errors import MalformedJSONError
from ._hashing import payload_hash
from ._json import check_tree
from ._keys import TrustStore, parse_key_entry
from ._logchecks import LogChecks, report_with_log_checks
from ._policy import Policy, build_report, classify, input_failure
from ._report import Report, Violation
from ._state import ChainOutcome

_MEMBERS = frozenset(rules.EXPORT_REQUIRED_MEMBERS) | frozenset(rules.EXPORT_OPTIONAL_MEMBERS)
_VERIFICATION_KEYS = frozenset(rules.EXPORT_VERIFICATION_KEYS)


class _MemberProblem(Exception):  # noqa: N818 - a finding, turned into the report's violation
    def __init__(self, code: str, message: str, member: str) -> None:
        super().__init__(message)
        self.violation = Violation(code, message, context={"field": member})


def verify_export(
    document: Mapping[str, Any],
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
    log: LogChecks | None = None,
) -> Report:
    """ELS section 9: check the members, verify the events, then check what the document claims against the
    recomputation (made as if the seal's key were trusted; whether it is, the report says separately); then the
    evidence-log checks ``log`` asks for (LOG.md sections 6 and 7)."""
    try:
        # A document parsed by the caller may hold what json.loads reads and I-JSON refuses (ELS section 2), also in
        # members no hash covers; the events are checked one by one as they are verified.
        check_tree({name: member for name, member in document.items() if name != "events"})
    except MalformedJSONError as exc:
        return input_failure(Violation(codes.MALFORMED_JSON, str(exc)), policy, source=source)
    metadata = {name: document[name] for name in rules.EXPORT_METADATA_MEMBERS if name in document}
    try:
        _check_members(document)
        listed = _listed_keys(document["public_keys"])
    except _MemberProblem as problem:
        return input_failure(problem.violation, policy, source=source, unverified_metadata=metadata)
    store = trust if trust is not None else TrustStore()
    verifier = ChainVerifier(store.with_document_keys(listed.values()), policy, allow_withheld_payloads=True)
    verifier.use_document_keys(listed)
    seal = document["seal"]
    for event in document["events"]:
        verifier.add_event(_with_seal_payload(event, seal))
    outcome = verifier.outcome()
    claim = None if outcome.violation is not None else _claim_violation(document, outcome)
    if log is None:
        return build_report(outcome, policy, later_violation=claim, source=source, unverified_metadata=metadata)
    return report_with_log_checks(
        outcome,
        policy,
        log,
        seal_payload=seal,
        events=lambda: document["events"],
        archive_sha256=None,
        document_proof=document.get("log_proof"),
        claim_violation=claim,
        source=source,
        unverified_metadata=metadata,
    )


def _check_members(document: Mapping[str, Any]) -> None:
    # Without its events a document holds no session to verify at all: that is a load error, as for other input.
    if type(document.get("events")) is not list:
        raise _MemberProblem(codes.LOAD_ERROR, 'the export document has no "events" array', "events")
    for name in document:
        if name not in _MEMBERS:
            raise _MemberProblem(codes.UNKNOWN_FIELD, f"{name!r} is not a member of an export document", name)
    for name in rules.EXPORT_REQUIRED_MEMBERS:
        if name not in document:
            raise _MemberProblem(codes.MISSING_FIELD, f"the export document has no {name!r}", name)
    for name in ("export_version", "generated_at", "generator"):
        if name in document and type(document[name]) is not str:
            raise _invalid(name, "a string", document[name])
    verification = document["verification"]
    if type(verification) is dict:
        for key in verification:
            if key not in _VERIFICATION_KEYS:
                raise _MemberProblem(
                    codes.UNKNOWN_FIELD,
                    f"verification holds {key!r}, which an export does not state (it depends on who verifies)",
                    f"verification.{key}",
                )
    if "pii_findings" in document:
        _check_findings(document["pii_findings"])
    log_proof = document.get("log_proof")
    if log_proof is not None and type(log_proof) is not dict:
        raise _invalid("log_proof", "an object or null", log_proof)


def _check_findings(findings: Any) -> None:
    # ELS section 9: a list of finding objects. They are not evidence, so what they say is only repeated, never
    # checked: the form is all a verifier can hold them to.
    if type(findings) is not list:
        raise _invalid("pii_findings", "an array", findings)
    for position, finding in enumerate(findings):
        if type(finding) is not dict:
            raise _invalid(f"pii_findings.{position}", "an object", finding)


def _listed_keys(entries: Any) -> dict[str, PublicKey]:
    """An export's ``public_keys`` by id: each entry an object with ``signer_key_id``, ``algorithm`` and
    ``public_key_pem``, an uncompressed P-256 key whose fingerprint is its ``signer_key_id`` (ELS sections 5 and 9).
    Other members of an entry (``first_used_at`` of a ``GET /v1/keys`` entry) are ignored, as in a key set."""
    if type(entries) is not list:
        raise _invalid("public_keys", "an array", entries)
    keys: dict[str, PublicKey] = {}
    for position, entry in enumerate(entries):
        where = f"public_keys.{position}"
        if type(entry) is not dict:
            raise _invalid(where, "an object", entry)
        for name in rules.PUBLISHED_KEY_MEMBERS:
            if name not in entry:
                raise _MemberProblem(codes.MISSING_FIELD, f"{where} has no {name!r}", f"{where}.{name}")
        try:
            key = parse_key_entry(entry)
        except KeyFormatError as error:
            raise _MemberProblem(codes.INVALID_FIELD, f"{where}: {error}", where) from None
        keys[key.key_id] = key
    return keys


def _invalid(member: str, expected: str, found: Any) -> _MemberProblem:
    return _MemberProblem(codes.INVALID_FIELD, f"{member} must be {expected}, found {json_kind(found)}", member)


def _with_seal_payload(event: Any, seal: Any) -> Any:
    # A withheld CHAIN_SEAL payload is taken from the document's "seal"; the payload-hash check then proves it is
    # the sealed payload. A copy, so the caller's document is never changed.
    if (
        type(event) is dict
        and event.get(rules.WITHHELD_MARK) is True
        and event.get("event_type") == rules.CHAIN_SEAL
        and type(seal) is dict
    ):
        restored = {key: value for key, value in event.items() if key != rules.WITHHELD_MARK}
        restored["payload"] = seal
        return restored
    return event


def _claim_violation(document: Mapping[str, Any], outcome: ChainOutcome) -> Violation | None:
    claimable, reasons = classify(outcome, accept_unsigned_seals=False, assume_key_trusted=True)
    seal_state = outcome.seal
    problems: dict[str, dict[str, Any]] = {}

    def compare(name: str, stated: Any, recomputed: Any) -> None:
        if stated != recomputed or type(stated) is not type(recomputed):
            problems[name] = {"stated": stated, "recomputed": recomputed}

    compare("evidence_class", document["evidence_class"], claimable)
    compare("session_id", document["session_id"], outcome.session_id)
    compare("chain_authority", document["chain_authority"], outcome.authority)
    seal = document["seal"]
    if seal is None:
        compare("seal", seal_state.payload_hash, None)
    elif type(seal) is not dict:
        problems["seal"] = {"stated": "not an object", "recomputed": seal_state.payload_hash}
    else:
        try:
            stated_seal_hash: str | None = payload_hash(seal)
        except ValueError:
            stated_seal_hash = None
        compare("seal", stated_seal_hash, seal_state.payload_hash)
    stated_report = document["verification"]
    if type(stated_report) is not dict:
        problems["verification"] = {"stated": "not an object", "recomputed": "a report"}
    else:
        # A seal whose signature fails under the document's own key would have made the export-time check FAIL.
        passed = seal_state.valid_if_trusted or not seal_state.signed
        recomputed = {
            "session_id": outcome.session_id,
            "status": codes.PASS if passed else codes.FAIL,
            "evidence_class": claimable,
            "partial_reasons": list(reasons),
            "authority": outcome.authority,
            "sealed": seal_state.sealed,
            "seal_signed": seal_state.signed,
            "seal_key_id": seal_state.key_id,
            "complete": outcome.complete,
            "event_count": outcome.event_count,
            "total_drops": outcome.total_drops,
            "first_event_hash": outcome.first_event_hash,
            "final_event_hash": outcome.final_event_hash,
            "replay_fingerprint": outcome.final_event_hash if passed else None,
        }
        for key in rules.EXPORT_VERIFICATION_KEYS:
            compare(f"verification.{key}", stated_report.get(key), recomputed[key])
    if not problems:
        return None
    return Violation(
        codes.EXPORT_CLAIM_MISMATCH,
        f"the export document states {', '.join(problems)} differently from what its events prove",
        context={"mismatches": problems},
    )
