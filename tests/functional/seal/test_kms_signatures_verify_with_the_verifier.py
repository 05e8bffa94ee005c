"""The KMS signer over moto's KMS (real ECDSA P-256 signatures): what it signs verifies with the verifier's own code."""

from __future__ import annotations

from typing import Any

import pytest
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.signing import SigningKeyMisconfiguredError
from agentops_verify import load_pem_public_key, low_s_signature, verify_signature
from cryptography.hazmat.primitives import serialization

MESSAGE = b'{"event_count":3,"final_event_hash":"ab","spec_version":"v0.6"}'


def test_kms_signature_verifies_with_the_verifier_under_the_signers_published_key(signer: KmsSigner) -> None:
    signature = low_s_signature(signer.sign(MESSAGE))  # KMS returns either s; the sealer keeps the low one (rev 2)
    key = load_pem_public_key(signer.public_key_pem)
    assert key.key_id == signer.key_id
    assert verify_signature(key, MESSAGE, signature)
    assert not verify_signature(key, MESSAGE + b" ", signature)


def test_key_id_is_the_sha256_of_the_key_kms_reports(signer: KmsSigner, kms: Any, seal_key_id: str) -> None:
    der = kms.get_public_key(KeyId=seal_key_id)["PublicKey"]
    reference = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.public_key_pem == reference.decode()
    assert signer.key_id == load_pem_public_key(reference).key_id


@pytest.mark.parametrize(
    ("key_spec", "key_usage"), [("ECC_NIST_P384", "SIGN_VERIFY"), ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")]
)
def test_a_key_that_cannot_make_els_seals_is_refused(kms: Any, key_spec: str, key_usage: str) -> None:
    key_id = kms.create_key(KeySpec=key_spec, KeyUsage=key_usage)["KeyMetadata"]["KeyId"]
    with pytest.raises(SigningKeyMisconfiguredError):
        _ = KmsSigner(kms, key_id).key_id
