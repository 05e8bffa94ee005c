"""Export documents (ELS section 9): claims checked against what the events prove, keys in the document trusted only
when pinned, withheld payloads."""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from typing import Any

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    CHAIN_BROKEN,
    EXPORT_CLAIM_MISMATCH,
    INVALID_SIGNATURE,
    LOAD_ERROR,
    NON_AUTHORITATIVE_EVIDENCE,
    PARTIAL_AUTHORITATIVE_EVIDENCE,
    PAYLOAD_WITHHELD,
    UNKNOWN_FIELD,
    UNSIGNED_SEAL,
    UNTRUSTED_SEAL_KEY,
    TrustStore,
    canonicalize,
    verify_bytes,
    verify_lines,
)

from tests.support.chains import Event, build_chain, rehash_from
from tests.support.keys import TestSigner, default_signer
from tests.tamper.support import default_trust, first_violation, trust_for


def _withheld(event: Event) -> Event:
    marked = {key: value for key, value in event.items() if key != "payload"}
    marked["payload_withheld"] = True
    return marked


def export_document(
    chain: Sequence[Event],
    *,
    signer: TestSigner | None = None,
    withhold: Sequence[int] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """An export document as the export service writes it: its report is the verifier's, with the seal key trusted."""
    shown = [_withheld(event) if event["sequence_number"] in withhold else event for event in chain]
    signer = signer if signer is not None else default_signer()
    # The seal payload holds nothing sensitive; an exporter verifies with it even when the document withholds it.
    checked = [*shown[:-1], chain[-1]] if chain[-1]["event_type"] == "CHAIN_SEAL" else shown
    report = verify_lines(
        [canonicalize(event) for event in checked], trust=trust_for(signer), allow_withheld_payloads=True
    )
    seal = chain[-1]["payload"] if chain[-1]["event_type"] == "CHAIN_SEAL" else None
    document: dict[str, Any] = {
        "export_version": "1.0",
        "session_id": chain[0]["session_id"],
        "evidence_class": report.evidence_class,
        "chain_authority": chain[0]["chain_authority"],
        "verification": report.export_verification(),
        "seal": seal,
        "events": shown,
        "public_keys": [signer.key_entry()] if seal and "signature" in seal else [],
        "generated_at": "2026-01-02T00:00:00Z",
        "generator": "test",
    }
    document.update(overrides)
    return document


def verify_document_bytes(document: dict[str, Any], trust: TrustStore | None = None) -> Any:
    before = copy.deepcopy(document)
    report = verify_bytes(canonicalize(document), trust=trust)
    assert document == before
    return report


def pinned() -> TrustStore:
    store = TrustStore()
    store.pin(default_signer().key_id)
    return store


def test_export_with_its_listed_key_pinned_is_authoritative() -> None:
    report = verify_document_bytes(export_document(build_chain(5)), trust=pinned())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert report.seal_key_trusted


def test_key_listed_in_an_export_is_not_trusted_unless_pinned() -> None:
    report = verify_document_bytes(export_document(build_chain(5)))
    assert report.passed
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == (UNTRUSTED_SEAL_KEY,)
    assert not report.seal_key_trusted


def test_export_verified_with_the_pem_key_is_authoritative() -> None:
    report = verify_document_bytes(export_document(build_chain(5)), trust=default_trust())
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_export_claiming_more_than_its_unsigned_seal_proves_is_a_claim_mismatch() -> None:
    document = export_document(build_chain(5, seal="unsigned"), evidence_class=AUTHORITATIVE_EVIDENCE)
    report = verify_document_bytes(document, trust=pinned())
    assert report.status == "FAIL"
    assert first_violation(report) == (EXPORT_CLAIM_MISMATCH, None)
    assert "evidence_class" in report.violations[0].context["mismatches"]
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE


def test_export_honestly_stating_partial_evidence_passes() -> None:
    report = verify_document_bytes(export_document(build_chain(5, seal="unsigned")), trust=pinned())
    assert report.passed
    assert report.partial_reasons == (UNSIGNED_SEAL,)


def test_export_whose_embedded_report_overstates_fails() -> None:
    document = export_document(build_chain(4, end=False))
    document["verification"]["complete"] = True
    document["verification"]["partial_reasons"] = []
    report = verify_document_bytes(document, trust=pinned())
    assert first_violation(report) == (EXPORT_CLAIM_MISMATCH, None)
    assert set(report.violations[0].context["mismatches"]) >= {"verification.complete"}


def test_export_naming_another_session_fails() -> None:
    document = export_document(build_chain(5), session_id="00000000-0000-4000-8000-000000000000")
    assert first_violation(verify_document_bytes(document, trust=pinned())) == (EXPORT_CLAIM_MISMATCH, None)


def test_export_whose_seal_member_differs_from_the_sealed_payload_fails() -> None:
    events = build_chain(5)
    document = export_document(events, seal=dict(events[-1]["payload"], event_count=99))
    assert first_violation(verify_document_bytes(document, trust=pinned())) == (EXPORT_CLAIM_MISMATCH, None)


def test_export_with_a_seal_signature_that_fails_under_its_listed_key_cannot_claim_authority() -> None:
    # Unpinned: the key is not trusted, but the claim is recomputed as if it were, with the listed key.
    events = build_chain(5)
    events[-1]["payload"]["signature"] = base64.b64encode(default_signer().sign(b"other")).decode()
    forged = rehash_from(events, len(events) - 1)
    document = export_document(forged)
    document["evidence_class"] = AUTHORITATIVE_EVIDENCE
    report = verify_document_bytes(document)
    assert first_violation(report) == (EXPORT_CLAIM_MISMATCH, None)
    # Pinned, the same document fails on the signature itself.
    assert first_violation(verify_document_bytes(document, trust=pinned())) == (INVALID_SIGNATURE, 5)


def test_withheld_payload_is_a_warning_and_keeps_the_class() -> None:
    document = export_document(build_chain(6), withhold=[2, 4])
    report = verify_document_bytes(document, trust=pinned())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    [warning] = report.warnings
    assert warning.type == PAYLOAD_WITHHELD
    assert warning.context == {"sequences": [2, 4]}


def test_withheld_seal_payload_is_checked_through_the_documents_seal_member() -> None:
    document = export_document(build_chain(5), withhold=[5])
    report = verify_document_bytes(document, trust=pinned())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_withheld_event_whose_hashes_were_changed_still_breaks_the_chain() -> None:
    document = export_document(build_chain(6), withhold=[2])
    document["events"][2]["payload_hash"] = "0" * 64
    assert first_violation(verify_document_bytes(document, trust=pinned()))[0] in {CHAIN_BROKEN, "EVENT_HASH_MISMATCH"}


def test_payload_withheld_outside_an_export_is_an_unknown_field() -> None:
    events = build_chain(4)
    lines = [canonicalize(_withheld(event) if event["sequence_number"] == 1 else event) for event in events]
    report = verify_lines(lines)
    assert first_violation(report) == (UNKNOWN_FIELD, 1)


@pytest.mark.parametrize("events", [None, "not a list", 7])
def test_export_without_an_events_array_is_a_load_error(events: object) -> None:
    document = export_document(build_chain(4), events=events)
    report = verify_document_bytes(document)
    assert first_violation(report) == (LOAD_ERROR, None)
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE


def test_json_array_of_events_is_verified_like_json_lines() -> None:
    events = build_chain(5)
    report = verify_bytes(b"[\n" + b",\n".join(canonicalize(event) for event in events) + b"\n]", trust=pinned())
    assert report.passed
    assert report.event_count == 6
    assert report.partial_reasons == (UNTRUSTED_SEAL_KEY,)  # a pin only works for keys an export lists
