"""The export document of ELS section 9: canonical bytes that the verifier (library and CLI) accepts as they are."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from agentops_server.errors import ApiError
from agentops_server.store import SigningKeyRecord
from agentops_verify import EXPORT_VERIFICATION_KEYS, canonicalize, loads

from tests.support.chains import build_chain, ordinary_payload
from tests.support.keys import TestSigner, default_signer
from tests.unit.replay_export.exports import GENERATED_AT, export_of, published_keys, sealed_chain

# ELS section 9 (rev 2): the members of an export document, and no others (log_proof comes with the evidence log).
SECTION_9_MEMBERS = {
    "export_version",
    "session_id",
    "evidence_class",
    "chain_authority",
    "verification",
    "seal",
    "events",
    "public_keys",
    "generated_at",
    "generator",
    "pii_findings",
}
# ELS section 7 (rev 2): the members of its verification, each recomputed by the verifier.
VERIFICATION_MEMBERS = set(EXPORT_VERIFICATION_KEYS)


def _verify_with_cli(tmp_path: Path, body: bytes, *extra: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "export.json"
    path.write_bytes(body)
    result = subprocess.run(
        [sys.executable, "-m", "agentops_verify", "--format", "json", *extra, str(path)],
        capture_output=True,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_export_bytes_are_their_own_canonical_form() -> None:
    body = export_of(sealed_chain()).body

    assert canonicalize(loads(body)) == body


def test_export_has_exactly_the_section_9_members() -> None:
    events = sealed_chain()

    document = loads(export_of(events).body)

    assert set(document) == SECTION_9_MEMBERS
    assert document["events"] == events
    assert document["seal"] == events[-1]["payload"]
    assert document["generated_at"] == GENERATED_AT
    assert document["public_keys"] == [
        {
            "signer_key_id": default_signer().key_id,
            "algorithm": "ECDSA_P256_SHA256",
            "public_key_pem": default_signer().public_key_pem,
        }
    ]
    assert document["verification"]["status"] == "PASS"
    assert document["evidence_class"] == document["verification"]["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert document["verification"]["partial_reasons"] == ["LOG_DROP_PRESENT"]


def test_clean_sealed_session_exports_as_authoritative() -> None:
    export = export_of(build_chain(6))

    assert export.evidence_class == "AUTHORITATIVE_EVIDENCE"


def test_export_verifies_with_the_library_and_the_cli_pinning_the_published_key(tmp_path: Path) -> None:
    export = export_of(sealed_chain())

    status, report = _verify_with_cli(tmp_path, export.body, "--trusted-key", default_signer().key_id)

    assert status == 0
    assert report["status"] == "PASS"
    assert report["evidence_class"] == export.evidence_class
    assert report["seal_key_trusted"] is True


def test_export_without_a_trusted_key_is_reported_untrusted_not_as_a_false_claim(tmp_path: Path) -> None:
    status, report = _verify_with_cli(tmp_path, export_of(build_chain(6)).body)

    assert status == 0
    assert report["violations"] == []
    assert report["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert "UNTRUSTED_SEAL_KEY" in report["partial_reasons"]


@pytest.mark.parametrize("withhold", [True, [1, 4, 5]])
def test_selective_disclosure_still_verifies_with_the_same_class(tmp_path: Path, withhold: bool | list[int]) -> None:
    events = sealed_chain()
    full = export_of(events)

    export = export_of(events, withhold)
    document = loads(export.body)
    status, report = _verify_with_cli(tmp_path, export.body, "--trusted-key", default_signer().key_id)

    withheld = [event["sequence_number"] for event in document["events"] if event.get("payload_withheld") is True]
    expected = list(range(len(events) - 1)) if withhold is True else withhold
    assert withheld == expected
    for original, shown in zip(events, document["events"], strict=True):
        if shown.get("payload_withheld"):
            assert shown == {**{k: v for k, v in original.items() if k != "payload"}, "payload_withheld": True}
    assert status == 0
    assert export.evidence_class == full.evidence_class == report["evidence_class"]
    assert "PAYLOAD_WITHHELD" in [warning["type"] for warning in report["warnings"]]


def test_the_seal_payload_is_never_withheld() -> None:
    events = sealed_chain()

    document = loads(export_of(events, True).body)

    assert document["events"][-1]["payload"] == events[-1]["payload"]


def test_withholding_a_sequence_number_the_session_lacks_is_refused() -> None:
    with pytest.raises(ApiError) as refused:
        export_of(sealed_chain(8), [2, 99])

    assert refused.value.code == "VALIDATION_ERROR"
    assert "99" in json.dumps(refused.value.details)


def test_pii_findings_locate_personal_data_without_repeating_it() -> None:
    body = export_of(sealed_chain()).body
    findings = loads(body)["pii_findings"]

    assert {(f["sequence_number"], f["pointer"], f["kind"]) for f in findings} == {
        (5, "/payload/result/note", "PHONE_NUMBER"),
        (5, "/payload/result/note", "PAYMENT_CARD_NUMBER"),
    }
    assert b"4111111111111111" not in json.dumps(findings).encode()


def test_withheld_payloads_report_the_kinds_they_hold_without_pointers() -> None:
    findings = loads(export_of(sealed_chain(), [5]).body)["pii_findings"]

    assert findings == [
        {"sequence_number": 5, "kind": "PHONE_NUMBER", "pointer": None},
        {"sequence_number": 5, "kind": "PAYMENT_CARD_NUMBER", "pointer": None},
    ]


def test_edited_export_fails_verification(tmp_path: Path) -> None:
    document = loads(export_of(sealed_chain()).body)
    document["events"][2]["payload"]["model"] = "another-model"

    status, report = _verify_with_cli(tmp_path, canonicalize(document), "--trusted-key", default_signer().key_id)

    assert status == 1
    assert report["violations"][0]["type"] == "PAYLOAD_HASH_MISMATCH"


@pytest.mark.parametrize("withhold", [False, True, [2, 5]])
def test_export_verification_has_exactly_the_members_the_verifier_recomputes(withhold: bool | list[int]) -> None:
    events = sealed_chain()
    export = export_of(events, withhold)

    verification = loads(export.body)["verification"]

    assert set(verification) == VERIFICATION_MEMBERS
    assert verification == {name: export.report[name] for name in VERIFICATION_MEMBERS}
    assert verification["replay_fingerprint"] == events[-1]["event_hash"]


def test_nothing_follows_the_export_document() -> None:
    body = export_of(sealed_chain()).body

    assert body.endswith(b"}")
    assert canonicalize(loads(body)) == body


def test_export_public_key_ids_are_computed_from_the_key_not_copied_from_the_record() -> None:
    events = build_chain(6)
    signer = default_signer()
    other = TestSigner()
    # A key record naming the seal's key id over another key's PEM (what anyone who can write the table can store).
    mislabelled = SigningKeyRecord(signer.key_id, "ECDSA_P256_SHA256", other.public_key_pem, datetime(2026, 1, 1))

    document = loads(export_of(events, keys=[mislabelled, *published_keys()]).body)

    assert document["public_keys"] == [
        {"signer_key_id": signer.key_id, "algorithm": "ECDSA_P256_SHA256", "public_key_pem": signer.public_key_pem}
    ]


def test_an_unreadable_published_key_is_left_out_and_the_others_still_trusted() -> None:
    unreadable = SigningKeyRecord("sha256:" + "0" * 64, "ECDSA_P256_SHA256", "not a key", datetime(2026, 1, 1))

    export = export_of(build_chain(6), keys=[unreadable, *published_keys()])

    assert export.evidence_class == "AUTHORITATIVE_EVIDENCE"
    assert [key["signer_key_id"] for key in loads(export.body)["public_keys"]] == [default_signer().key_id]


def _patient_payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
    if sequence_number == 3:
        return "TOOL_RESULT", {"tool_name": "crm", "result": {"patients": {PATIENT: {"contact": "jane@example.com"}}}}
    return ordinary_payload(sequence_number)


PATIENT = "Jane Roe-Castellano"


@pytest.mark.parametrize("withhold", [True, [3]])
def test_withheld_export_pii_findings_leak_no_member_names(withhold: bool | list[int]) -> None:
    events = build_chain(6, payload_factory=_patient_payloads)
    assert loads(export_of(events).body)["pii_findings"]  # disclosed, the contact is found (and its pointer names it)

    body = export_of(events, withhold).body

    assert PATIENT.encode() not in body
    assert b"patients" not in body
    withheld_findings = [finding for finding in loads(body)["pii_findings"] if finding["sequence_number"] == 3]
    assert withheld_findings == [{"sequence_number": 3, "kind": "EMAIL_ADDRESS", "pointer": None}]
