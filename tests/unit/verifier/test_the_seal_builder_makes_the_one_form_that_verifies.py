"""``build_seal_event``: the one place a CHAIN_SEAL is made (ELS section 5, rev 2), by the sealer (signed) and the SDK
in local authority mode (unsigned). What it builds is the one form the verifier accepts."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    NON_AUTHORITATIVE_EVIDENCE,
    SEAL_SUMMARY_KEYS,
    SIGNED_SEAL_KEYS,
    SealSigner,
    SealSigningError,
    build_seal_event,
    canonicalize,
    verify_lines,
)
from agentops_verify._ecdsa import HALF_N, N, _parse_signature
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from tests.support.chains import Event, build_chain
from tests.support.keys import TestSigner, default_signer, make_signer
from tests.tamper.support import trust_for

SEAL_TIME = "2026-01-02T03:04:05.678Z"


@dataclass
class HighSSigner:
    """Signs like KMS at its least convenient: always the high-s twin of a valid signature."""

    signer: TestSigner

    @property
    def key_id(self) -> str:
        return self.signer.key_id

    @property
    def public_key_pem(self) -> str:
        return self.signer.public_key_pem

    def sign(self, message: bytes) -> bytes:
        r, s = decode_dss_signature(self.signer.sign(message))
        return encode_dss_signature(r, N - s if s <= HALF_N else s)


@dataclass
class WrongMessageSigner(HighSSigner):
    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(message + b"!")


@dataclass
class OtherKeySigner(HighSSigner):
    @property
    def key_id(self) -> str:
        return make_signer().key_id


def _sealed(events: list[Event], signer: SealSigner | None, authority: str = "server") -> list[Event]:
    last = events[-1]
    seal = build_seal_event(
        session_id=last["session_id"],
        seal_event_id="7d2c7a57-0000-4000-8000-00000000c0de",
        event_count=len(events),
        final_event_hash=last["event_hash"],
        seal_timestamp=SEAL_TIME,
        ingestion_service_id="agentops-replay-test",
        chain_authority=authority,
        source_sdk_ver="agentops-replay-sealer/0.1.0",
        signer=signer,
        authority_id="agentops-replay-test",
    )
    return [*events, seal]


def test_built_signed_seal_is_the_one_form_that_verifies() -> None:
    events = _sealed(build_chain(5, seal=None), default_signer())
    seal = events[-1]
    assert list(seal["payload"]) == list(SIGNED_SEAL_KEYS)
    assert seal["timestamp_wall"] == seal["payload"]["seal_timestamp"] == SEAL_TIME
    assert seal["sequence_number"] == seal["payload"]["event_count"] == 5
    report = verify_lines([canonicalize(event) for event in events], trust=trust_for(default_signer()))
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_builder_stores_the_low_s_form_whatever_the_signer_returns() -> None:
    events = _sealed(build_chain(5, seal=None), HighSSigner(default_signer()))
    _, s = _parse_signature(base64.b64decode(events[-1]["payload"]["signature"]))
    assert s <= HALF_N
    report = verify_lines([canonicalize(event) for event in events], trust=trust_for(default_signer()))
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


@pytest.mark.parametrize("broken", [WrongMessageSigner, OtherKeySigner], ids=["bad_signature", "key_id_not_its_own"])
def test_builder_makes_no_seal_its_own_published_key_cannot_check(broken: type[HighSSigner]) -> None:
    with pytest.raises(SealSigningError):
        _sealed(build_chain(5, seal=None), broken(default_signer()))


def test_unsigned_seal_for_local_authority_has_the_five_summary_keys() -> None:
    events = _sealed(build_chain(5, authority="sdk", seal=None), None, authority="sdk")
    assert list(events[-1]["payload"]) == list(SEAL_SUMMARY_KEYS)
    report = verify_lines([canonicalize(event) for event in events])
    assert report.passed
    assert report.sealed
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE
