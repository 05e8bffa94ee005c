"""ELS sections 7 and 9, revision 2: every member of an export document is checked. Each attack below passed before:
an edited or added member that no hash covers was taken at its word, or silently ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    EXPORT_CLAIM_MISMATCH,
    EXPORT_VERIFICATION_KEYS,
    INVALID_FIELD,
    LOAD_ERROR,
    MALFORMED_JSON,
    MISSING_FIELD,
    UNKNOWN_FIELD,
    canonicalize,
    verify_bytes,
    verify_document,
    verify_file,
)

from tests.support.chains import build_chain
from tests.support.keys import make_signer
from tests.tamper.support import first_violation
from tests.tamper.test_export_claims_are_recomputed import export_document, pinned, verify_document_bytes


def _genuine() -> dict[str, Any]:
    return export_document(build_chain(5))


def test_genuine_export_states_exactly_the_fourteen_verification_members() -> None:
    document = _genuine()
    assert list(document["verification"]) == list(EXPORT_VERIFICATION_KEYS)
    report = verify_document_bytes(document, trust=pinned())
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert report.log is None
    assert report.to_dict()["log"] is None


def test_export_with_trailing_text_is_malformed() -> None:
    data = canonicalize(_genuine()) + b"\nApproved by the Chief Compliance Officer\n"
    report = verify_bytes(data, trust=pinned())
    assert first_violation(report) == (MALFORMED_JSON, None)
    assert "text follows the export document" in report.violations[0].message


def test_export_with_trailing_text_read_from_a_file_is_malformed(tmp_path: Any) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(canonicalize(_genuine()) + b"\n" + canonicalize(_genuine()) + b"\n")
    assert first_violation(verify_file(path, trust=pinned())) == (MALFORMED_JSON, None)


def test_pretty_printed_export_holding_a_duplicate_key_names_the_key_not_its_first_line(tmp_path: Any) -> None:
    # A pretty-printed export the strict reader refuses was read as JSON Lines after all: the auditor was told
    # "expecting a JSON value at character 1" on line 1, not what is wrong with the document.
    text = json.dumps(_genuine(), indent=2)
    forged = text.replace('"export_version"', '"session_id": "forged",\n  "export_version"', 1)
    path = tmp_path / "export.json"
    path.write_text(forged, encoding="utf-8")
    for report in (verify_bytes(forged.encode()), verify_file(path)):
        assert first_violation(report) == (MALFORMED_JSON, None)
        assert report.violations[0].message == "the export document is not I-JSON: duplicate key 'session_id'"


def test_export_with_edited_seal_key_trusted_fails() -> None:
    document = _genuine()
    document["verification"]["seal_key_trusted"] = True
    report = verify_document_bytes(document)
    assert first_violation(report) == (UNKNOWN_FIELD, None)
    assert report.violations[0].context == {"field": "verification.seal_key_trusted"}


@pytest.mark.parametrize("member", ["warnings", "violations", "verifier_version", "spec_version", "log", "signed_by"])
def test_export_verification_stating_more_than_the_fourteen_members_is_unknown_field(member: str) -> None:
    document = _genuine()
    document["verification"][member] = []
    assert first_violation(verify_document_bytes(document, trust=pinned())) == (UNKNOWN_FIELD, None)


@pytest.mark.parametrize(
    ("member", "value"), [("status", "FAIL"), ("evidence_class", "NON_AUTHORITATIVE_EVIDENCE"), ("sealed", 1)]
)
def test_export_with_edited_verification_fails(member: str, value: object) -> None:
    document = _genuine()
    document["verification"][member] = value
    report = verify_document_bytes(document, trust=pinned())
    assert first_violation(report) == (EXPORT_CLAIM_MISMATCH, None)
    assert f"verification.{member}" in report.violations[0].context["mismatches"]


def test_export_verification_missing_a_member_is_a_claim_mismatch() -> None:
    document = _genuine()
    del document["verification"]["replay_fingerprint"]
    assert first_violation(verify_document_bytes(document, trust=pinned())) == (EXPORT_CLAIM_MISMATCH, None)


def test_export_with_extra_member_is_unknown_field() -> None:
    document = _genuine()
    document["approved_by"] = "Chief Compliance Officer"
    report = verify_document_bytes(document, trust=pinned())
    assert first_violation(report) == (UNKNOWN_FIELD, None)
    assert report.violations[0].context == {"field": "approved_by"}


@pytest.mark.parametrize("member", ["session_id", "evidence_class", "chain_authority", "verification", "seal"])
def test_export_without_a_required_member_is_missing_field(member: str) -> None:
    document = _genuine()
    del document[member]
    assert first_violation(verify_document_bytes(document, trust=pinned())) == (MISSING_FIELD, None)


def test_export_without_its_export_version_is_no_export_and_a_load_error() -> None:
    document = _genuine()
    del document["export_version"]
    report = verify_document_bytes(document, trust=pinned())
    assert first_violation(report) == (LOAD_ERROR, None)
    assert 'no "export_version"' in report.violations[0].message


def test_export_generated_at_is_reported_unverified() -> None:
    document = _genuine()
    document["generated_at"] = "1999-12-31T23:59:59Z"
    report = verify_document_bytes(document, trust=pinned())
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE  # no hash covers it, so no edit of it can be seen
    assert report.unverified_metadata == {"generated_at": "1999-12-31T23:59:59Z", "generator": "test"}
    assert report.to_dict()["unverified_metadata"] == {"generated_at": "1999-12-31T23:59:59Z", "generator": "test"}


def test_export_pii_findings_edited_are_reported_unverified() -> None:
    document = _genuine()
    document["pii_findings"] = [{"sequence_number": 2, "kind": "email", "pointer": None}]
    report = verify_document_bytes(document, trust=pinned())
    assert report.passed
    assert report.unverified_metadata is not None
    assert report.unverified_metadata["pii_findings"] == document["pii_findings"]


def test_only_an_export_document_has_unverified_metadata() -> None:
    report = verify_bytes(b"".join(canonicalize(event) + b"\n" for event in build_chain(5)))
    assert report.unverified_metadata is None
    assert "unverified_metadata" not in report.to_dict()


@pytest.mark.parametrize(
    ("member", "value"),
    [("generated_at", 20260102), ("generator", None), ("pii_findings", {"count": 1}), ("log_proof", "included")],
)
def test_export_metadata_of_the_wrong_kind_is_invalid_field(member: str, value: object) -> None:
    document = _genuine()
    document[member] = value
    report = verify_document_bytes(document, trust=pinned())
    assert first_violation(report) == (INVALID_FIELD, None)
    assert report.unverified_metadata is not None


@pytest.mark.parametrize("log_proof", [None, {"checkpoint": "not checked here"}])
def test_export_log_proof_object_or_null_is_accepted_and_log_stays_null(log_proof: object) -> None:
    report = verify_document_bytes(export_document(build_chain(5), log_proof=log_proof), trust=pinned())
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert report.log is None


def test_export_public_key_entry_naming_another_fingerprint_is_invalid_field() -> None:
    document = _genuine()
    document["public_keys"][0]["signer_key_id"] = make_signer().key_id
    report = verify_document_bytes(document, trust=pinned())
    assert first_violation(report) == (INVALID_FIELD, None)
    assert report.violations[0].context == {"field": "public_keys.0"}


@pytest.mark.parametrize("entries", ["not a list", [None], [{"signer_key_id": "sha256:" + "0" * 64}]])
def test_export_public_keys_that_are_not_key_entries_fail(entries: object) -> None:
    report = verify_document_bytes(export_document(build_chain(5), public_keys=entries), trust=pinned())
    assert first_violation(report)[0] in {INVALID_FIELD, MISSING_FIELD}


# A document parsed by the caller (verify_document, verify_export) may hold what json.loads reads but I-JSON refuses,
# in members no hash covers: it fails MALFORMED_JSON, as the same document's bytes do, and the report stays JSON.
_PARSED_NOT_I_JSON: dict[str, tuple[str, Any]] = {
    "pii-finding-sequence-2**60": ("pii_findings", [{"sequence_number": 2**60, "kind": "email", "pointer": "/x"}]),
    "generator-nan": ("generator", float("nan")),
    "generated-at-lone-surrogate": ("generated_at", "2026-01-02T00:00:00Z\ud800"),
    "verification-event-count-5000-digits": ("verification.event_count", 10**5000),
    "verification-total-drops-infinity": ("verification.total_drops", float("inf")),
    "seal-event-count-nan": ("seal.event_count", float("nan")),
    "log-proof-member-name-not-a-string": ("log_proof", {1: "x"}),
}


@pytest.mark.parametrize("trap", sorted(_PARSED_NOT_I_JSON))
def test_a_parsed_export_with_a_member_i_json_refuses_fails_as_malformed_json_as_its_bytes_do(trap: str) -> None:
    where, value = _PARSED_NOT_I_JSON[trap]
    document = _genuine()
    owner, _, name = where.rpartition(".")
    (document[owner] if owner else document)[name] = value
    report = verify_document(document, trust=pinned())
    assert report.violations[0].type == MALFORMED_JSON
    json.dumps(report.to_dict(), allow_nan=False)  # the report holds none of it
    if trap not in ("verification-event-count-5000-digits", "log-proof-member-name-not-a-string"):  # json.dumps
        assert verify_bytes(json.dumps(document).encode(), trust=pinned()).violations[0].type == MALFORMED_JSON
