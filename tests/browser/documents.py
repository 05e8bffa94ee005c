"""Export documents (ELS section 9, rev 2) made from event lines the way the exporter makes them.

The exporter copies each stored event line into the document as it is and computes every other member with the
verifier library, every deployment key trusted (``agentops_server.export``). ``export_document`` does the same from
any lines, even malformed ones (an attacker's evidence), so the browser and the Python verifier can be handed the
very same bytes. ``verification`` holds exactly the fourteen members rev 2 lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentops_verify import (
    EXPORT_VERIFICATION_KEYS,
    MalformedJSONError,
    TrustStore,
    canonicalize,
    load_pem_public_key,
    loads,
    verify_lines,
)

from tests.support.keys import TestSigner

EXPORT_VERSION = "1.0"
GENERATED_AT = "2026-01-02T00:00:00Z"
GENERATOR = "agentops-replay-export/0.1.0"
REPORT_MEMBERS = EXPORT_VERIFICATION_KEYS


def stated_report(report: dict[str, Any]) -> dict[str, Any]:
    """An export's ``verification`` member: the report's fourteen compared members (ELS section 9, rev 2)."""
    return {name: report[name] for name in REPORT_MEMBERS}


def withheld_lines(lines: Sequence[bytes], sequences: Sequence[int]) -> list[bytes]:
    """The lines with the payloads of ``sequences`` withheld (ELS section 9), as the exporter writes them."""
    result = []
    for position, line in enumerate(lines):
        if position not in sequences:
            result.append(line)
            continue
        event = loads(line)
        del event["payload"]
        event["payload_withheld"] = True
        result.append(canonicalize(event))
    return result


def _parsed(line: bytes) -> dict[str, Any] | None:
    try:
        value = loads(line)
    except MalformedJSONError:
        return None
    return value if isinstance(value, dict) else None


def export_document(
    lines: Sequence[bytes],
    *,
    signers: Sequence[TestSigner] = (),
    extra_members: dict[str, Any] | None = None,
) -> bytes:
    """The document's canonical bytes around ``lines`` (spliced in verbatim). ``signers`` are the deployment's keys:
    trusted for the stated report, and the one the seal names listed in ``public_keys``."""
    lines = [line.strip(b" \t\r\n") for line in lines]
    lines = [line for line in lines if line]
    trust = TrustStore(load_pem_public_key(signer.public_key_pem) for signer in signers)
    report = verify_lines(lines, trust=trust, allow_withheld_payloads=True).to_dict()
    events = [event for event in map(_parsed, lines) if event is not None]
    seal = next((event.get("payload") for event in events if event.get("event_type") == "CHAIN_SEAL"), None)
    key_id = seal.get("signer_key_id") if isinstance(seal, dict) else None
    session_id = report["session_id"] or next((event.get("session_id") for event in events), None)
    members: dict[str, Any] = {
        "chain_authority": next((event.get("chain_authority") for event in events), None),
        "evidence_class": report["evidence_class"],
        "export_version": EXPORT_VERSION,
        "generated_at": GENERATED_AT,
        "generator": GENERATOR,
        "pii_findings": [],
        "public_keys": [
            {"signer_key_id": s.key_id, "algorithm": "ECDSA_P256_SHA256", "public_key_pem": s.public_key_pem}
            for s in signers
            if s.key_id == key_id
        ],
        "seal": seal,
        "session_id": session_id,
        "verification": stated_report(report),
        **(extra_members or {}),
    }
    return splice(members, lines)


def splice(members: dict[str, Any], lines: Sequence[bytes], *, events_json: bytes | None = None) -> bytes:
    """``{members..., "events": [lines...]}`` in canonical member order, each line copied byte for byte (or
    ``events_json`` copied as the whole events member)."""
    parts = {name: canonicalize(value) for name, value in members.items()}
    parts["events"] = events_json if events_json is not None else b"[" + b",".join(lines) + b"]"
    return b"{" + b",".join(canonicalize(name) + b":" + parts[name] for name in sorted(parts)) + b"}"
