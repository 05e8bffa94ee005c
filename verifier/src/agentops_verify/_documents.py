"""The three input shapes of ELS section 7 (JSON Lines, a JSON array of events, an export document) and the export
checks of section 9. Bytes and parsed values in, a ``Report`` out; no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._chain import ChainOutcome, ChainVerifier, KeyLookup, build_report, classify
from ._ecdsa import KeyFormatError, PublicKey
from ._errors import MalformedJSONError
from ._eventline import JSON_WHITESPACE
from ._hashing import payload_hash
from ._json import loads
from ._keys import TrustStore, parse_key_entry
from ._policy import Policy
from ._report import Report, Violation

_WHITESPACE = JSON_WHITESPACE.encode("ascii")
# Report keys an export's embedded verification report must agree on with the recomputation (ELS section 9).
# Trust-dependent keys (seal_key_trusted) and warnings are not compared: they depend on who verifies.
_COMPARED_REPORT_KEYS = (
    "session_id",
    "status",
    "authority",
    "sealed",
    "seal_signed",
    "seal_key_id",
    "complete",
    "event_count",
    "total_drops",
    "first_event_hash",
    "final_event_hash",
    "replay_fingerprint",
)


def verify_lines(
    lines: Iterable[bytes],
    *,
    trust: KeyLookup | None = None,
    policy: Policy = Policy(),  # noqa: B008
    allow_withheld_payloads: bool = False,
) -> Report:
    """Verify a session given as JSON Lines, one raw line per item (each with or without its LF).

    ``allow_withheld_payloads`` accepts events marked ``"payload_withheld": true`` (the events of an export
    document, ELS section 9), as the exporter needs when it verifies the events it is about to publish."""
    verifier = ChainVerifier(trust, policy, allow_withheld_payloads=allow_withheld_payloads)
    for line in lines:
        verifier.add_line(line)
    return verifier.finish()


def verify_events(events: Iterable[Any], *, trust: KeyLookup | None = None, policy: Policy = Policy()) -> Report:  # noqa: B008
    """Verify a session given as already-parsed events."""
    verifier = ChainVerifier(trust, policy)
    for event in events:
        verifier.add_event(event)
    return verifier.finish()


def verify_bytes(
    data: bytes,
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
) -> Report:
    """Verify one input of any of the three shapes, detected from its content."""
    shape, document = detect_shape(data[: data.find(b"\n") + 1 or len(data)], data)
    if shape == "jsonl":
        verifier = ChainVerifier(trust, policy)
        for line in data.split(b"\n"):
            verifier.add_line(line)
        return verifier.finish(source=source)
    return verify_document(document, trust=trust, policy=policy, source=source)


def detect_shape(first_line: bytes, whole: bytes | None) -> tuple[str, Any]:
    """``("jsonl", None)`` or ``("document", parsed value)``.

    ``first_line`` is the input up to and including its first LF; ``whole`` is the complete input, or None when
    the caller streams and will supply it only if asked (then the answer may be ``("needs-whole", None)``). A first
    line that is a complete JSON object without ``export_version`` starts JSON Lines; anything else is one JSON
    document (an array, an export document, or a single pretty-printed event). Input that parses as neither is
    read as JSON Lines, so the malformed line is reported with its line number.
    """
    head = first_line.lstrip(_WHITESPACE)
    if head[:1] == b"{":
        try:
            first = loads(head)
        except MalformedJSONError:
            first = None
        if isinstance(first, dict):
            return ("document", first) if "export_version" in first else ("jsonl", None)
    elif head[:1] != b"[":
        return "jsonl", None
    if whole is None:
        return "needs-whole", None
    try:
        return "document", loads(whole)
    except MalformedJSONError:
        return "jsonl", None


def verify_document(
    document: Any,
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
) -> Report:
    """Verify one parsed JSON document: an array of events, an export document, or a single event."""
    if isinstance(document, list):
        verifier = ChainVerifier(trust, policy)
        for event in document:
            verifier.add_event(event)
        return verifier.finish(source=source)
    if isinstance(document, dict) and "export_version" in document:
        return verify_export(document, trust=trust, policy=policy, source=source)
    if isinstance(document, dict):
        verifier = ChainVerifier(trust, policy)
        verifier.add_event(document)
        return verifier.finish(source=source)
    return _load_error(
        "the input is not JSON Lines, a JSON array of events or an export document", policy, source=source
    )


def verify_export(
    document: Mapping[str, Any],
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
) -> Report:
    """ELS section 9: verify the events, then check what the document claims against the recomputation."""
    events = document.get("events")
    if not isinstance(events, list):
        return _load_error('the export document has no "events" array', policy, source=source)
    listed = _document_keys(document.get("public_keys"))
    if listed is None:
        return _load_error('the export document\'s "public_keys" is not a list of key entries', policy, source=source)
    store = trust if trust is not None else TrustStore()
    verifier = ChainVerifier(store.with_document_keys(listed.values()), policy, allow_withheld_payloads=True)
    verifier.use_document_keys(listed)
    seal = document.get("seal")
    for event in events:
        verifier.add_event(_with_seal_payload(event, seal))
    outcome = verifier.outcome()
    claim = None if outcome.violation is not None else _claim_violation(document, outcome)
    return build_report(outcome, policy, claim_violation=claim, source=source)


def _document_keys(entries: Any) -> dict[str, PublicKey] | None:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        return None
    keys: dict[str, PublicKey] = {}
    for entry in entries:
        try:
            key = parse_key_entry(entry)
        except KeyFormatError:
            return None
        keys[key.key_id] = key
    return keys


def _with_seal_payload(event: Any, seal: Any) -> Any:
    # A withheld CHAIN_SEAL payload is taken from the document's "seal"; the payload-hash check then proves it is
    # the sealed payload. A copy, so the caller's document is never changed.
    if (
        isinstance(event, dict)
        and event.get(rules.WITHHELD_MARK) is True
        and event.get("event_type") == rules.CHAIN_SEAL
        and isinstance(seal, dict)
    ):
        restored = {key: value for key, value in event.items() if key != rules.WITHHELD_MARK}
        restored["payload"] = seal
        return restored
    return event


def _claim_violation(document: Mapping[str, Any], outcome: ChainOutcome) -> Violation | None:
    claimable, reasons = classify(outcome, accept_unsigned_seals=False, assume_key_trusted=True)
    problems: dict[str, dict[str, Any]] = {}

    def compare(name: str, stated: Any, recomputed: Any) -> None:
        if stated != recomputed or type(stated) is not type(recomputed):
            problems[name] = {"stated": stated, "recomputed": recomputed}

    compare("evidence_class", document.get("evidence_class"), claimable)
    compare("session_id", document.get("session_id"), outcome.session_id)
    compare("chain_authority", document.get("chain_authority"), outcome.authority)
    seal = document.get("seal")
    if seal is None:
        compare("seal", outcome.seal_payload_hash, None)
    elif not isinstance(seal, dict):
        problems["seal"] = {"stated": "not an object", "recomputed": outcome.seal_payload_hash}
    else:
        try:
            stated_seal_hash: str | None = payload_hash(seal)
        except ValueError:
            stated_seal_hash = None
        compare("seal", stated_seal_hash, outcome.seal_payload_hash)
    stated_report = document.get("verification")
    if not isinstance(stated_report, dict):
        problems["verification"] = {"stated": "missing or not an object", "recomputed": "a report"}
    else:
        # A seal whose signature fails under the document's own key would have made the export-time check FAIL.
        passed = outcome.seal_valid_if_trusted or not outcome.seal_signed
        recomputed = {
            "session_id": outcome.session_id,
            "status": codes.PASS if passed else codes.FAIL,
            "authority": outcome.authority,
            "sealed": outcome.sealed,
            "seal_signed": outcome.seal_signed,
            "seal_key_id": outcome.seal_key_id,
            "complete": outcome.complete,
            "event_count": outcome.event_count,
            "total_drops": outcome.total_drops,
            "first_event_hash": outcome.first_event_hash,
            "final_event_hash": outcome.final_event_hash,
            "replay_fingerprint": outcome.final_event_hash if passed else None,
        }
        for key in _COMPARED_REPORT_KEYS:
            compare(f"verification.{key}", stated_report.get(key), recomputed[key])
        compare("verification.evidence_class", stated_report.get("evidence_class"), claimable)
        compare("verification.partial_reasons", stated_report.get("partial_reasons"), list(reasons))
    if not problems:
        return None
    return Violation(
        codes.EXPORT_CLAIM_MISMATCH,
        f"the export document states {', '.join(problems)} differently from what its events prove",
        context={"mismatches": problems},
    )


def _load_error(message: str, policy: Policy, *, source: str | None) -> Report:
    outcome = dataclasses.replace(ChainVerifier(None, policy).outcome(), violation=Violation(codes.LOAD_ERROR, message))
    return build_report(outcome, policy, source=source)
