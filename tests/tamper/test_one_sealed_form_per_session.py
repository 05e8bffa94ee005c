"""ELS section 5, revision 2: a sealed session has exactly one valid form. Each attack below kept the seal's signature
valid while changing bytes of the sealed session (and so its replay fingerprint); each now fails."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    EXPORT_CLAIM_MISMATCH,
    INVALID_SEAL,
    INVALID_SIGNATURE,
    NON_AUTHORITATIVE_EVIDENCE,
    UNSIGNED_SEAL,
    canonicalize,
    verify_bytes,
)
from agentops_verify._ecdsa import N
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from tests.support.chains import Event, build_chain, rehash_from
from tests.tamper.support import default_trust, first_violation, verify_chain
from tests.tamper.test_export_claims_are_recomputed import export_document

SEAL = 5  # build_chain(5) puts the seal at sequence 5


def _seal_rehashed(events: list[Event]) -> list[Event]:
    return rehash_from(events, SEAL)


def _high_s_twin(signature: str) -> str:
    r, s = decode_dss_signature(base64.b64decode(signature))
    return base64.b64encode(encode_dss_signature(r, N - s)).decode("ascii")


def test_genuine_seal_has_its_eight_keys_and_its_time_as_timestamp_wall() -> None:
    events = build_chain(5)
    seal = events[SEAL]
    assert len(seal["payload"]) == 8
    assert seal["timestamp_wall"] == seal["payload"]["seal_timestamp"]
    assert verify_chain(events, trust=default_trust()).evidence_class == AUTHORITATIVE_EVIDENCE


def test_seal_with_extra_payload_key_approved_by_is_invalid_seal() -> None:
    events = build_chain(5)
    events[SEAL]["payload"]["approved_by"] = "Chief Compliance Officer"
    report = verify_chain(_seal_rehashed(events), trust=default_trust())
    assert first_violation(report) == (INVALID_SEAL, SEAL)
    assert "approved_by" in report.violations[0].message
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE


def test_seal_event_id_changed_and_rehashed_fails() -> None:
    events = build_chain(5)
    events[SEAL]["event_id"] = "0a9e8d7c-6b5a-4e3d-8c1b-2a3f4e5d6c7b"
    report = verify_chain(_seal_rehashed(events), trust=default_trust())
    assert first_violation(report) == (INVALID_SIGNATURE, SEAL)


def test_seal_event_id_changed_cannot_be_exported_as_authoritative() -> None:
    # Unpinned, the key is not trusted, but the document's claim is recomputed with the key it lists.
    events = build_chain(5)
    events[SEAL]["event_id"] = "0a9e8d7c-6b5a-4e3d-8c1b-2a3f4e5d6c7b"
    document = export_document(_seal_rehashed(events), evidence_class=AUTHORITATIVE_EVIDENCE)
    assert first_violation(verify_bytes(canonicalize(document))) == (EXPORT_CLAIM_MISMATCH, None)


def test_seal_timestamp_wall_changed_and_rehashed_is_invalid_seal() -> None:
    events = build_chain(5)
    events[SEAL]["timestamp_wall"] = "2026-01-01T12:00:09.000Z"
    report = verify_chain(_seal_rehashed(events), trust=default_trust())
    assert first_violation(report) == (INVALID_SEAL, SEAL)
    assert "timestamp_wall" in report.violations[0].message


def test_high_s_twin_signature_fails() -> None:
    events = build_chain(5)
    events[SEAL]["payload"]["signature"] = _high_s_twin(events[SEAL]["payload"]["signature"])
    twin = _seal_rehashed(events)
    assert first_violation(verify_chain(twin, trust=default_trust())) == (INVALID_SIGNATURE, SEAL)
    # Without the key it is refused all the same: a high-s signature verifies under no key.
    report = verify_chain(twin)
    assert first_violation(report) == (INVALID_SIGNATURE, SEAL)
    assert "high-s" in report.violations[0].message


@pytest.mark.parametrize(
    "reencode",
    [
        pytest.param(lambda der: der[:2] + b"\x00" + der[2:], id="octet_inserted"),
        pytest.param(lambda der: der + b"\x00", id="octet_appended"),
        pytest.param(lambda der: b"\x30\x06\x02\x01\x00\x02\x01\x01", id="r_zero"),
    ],
)
def test_signature_outside_its_one_der_form_fails_without_a_key(reencode: Callable[[bytes], bytes]) -> None:
    events = build_chain(5)
    der = base64.b64decode(events[SEAL]["payload"]["signature"])
    events[SEAL]["payload"]["signature"] = base64.b64encode(reencode(der)).decode("ascii")
    assert first_violation(verify_chain(_seal_rehashed(events))) == (INVALID_SIGNATURE, SEAL)


def test_unsigned_legacy_seal_is_not_held_to_the_signed_form() -> None:
    # ELS section 5: only a signed seal has the eight keys and the timestamp rule; an unsigned one proves nothing.
    events = build_chain(5, seal="unsigned")
    events[SEAL]["payload"]["note"] = "added by the producer"
    events[SEAL]["timestamp_wall"] = "2026-01-01T12:00:09.000Z"
    report = verify_chain(_seal_rehashed(copy.deepcopy(events)))
    assert report.passed
    assert report.partial_reasons == (UNSIGNED_SEAL,)
