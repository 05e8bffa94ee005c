"""The KMS signer's contract without AWS: key ids, PEM form, RAW signing, and AWS errors turned into domain errors."""

from __future__ import annotations

from typing import Any

import pytest
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.signing import SigningKeyMisconfiguredError, SigningUnavailableError, public_key_pem, signer_key_id
from agentops_verify._ecdsa import load_pem_public_key
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.support.keys import TestSigner


class StubKms:
    """A KMS client double backed by a local P-256 key; records every call."""

    def __init__(self, signer: TestSigner, key_spec: str = "ECC_NIST_P256") -> None:
        self.signer = signer
        self.key_spec = key_spec
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failure: Exception | None = None

    def get_public_key(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(("get_public_key", arguments))
        if self.failure is not None:
            raise self.failure
        return {
            "KeyId": arguments["KeyId"],
            "PublicKey": self.signer.spki_der,
            "KeySpec": self.key_spec,
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["ECDSA_SHA_256"] if self.key_spec == "ECC_NIST_P256" else ["ECDSA_SHA_384"],
        }

    def sign(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(("sign", arguments))
        if self.failure is not None:
            raise self.failure
        return {"Signature": self.signer.sign(arguments["Message"]), "KeyId": arguments["KeyId"]}


def client_error(code: str, operation: str = "Sign") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "any text: never parsed"}}, operation)


def test_key_id_is_the_sha256_of_the_der_public_key() -> None:
    key = TestSigner()
    assert signer_key_id(key.spki_der) == key.key_id


def test_published_pem_is_the_standard_form_the_verifier_reads() -> None:
    key = TestSigner()
    pem = public_key_pem(key.spki_der)
    assert pem == key.public_key_pem  # byte-identical to the cryptography package's PEM
    assert load_pem_public_key(pem).key_id == key.key_id


def test_kms_is_asked_to_sign_the_raw_message_never_a_digest() -> None:
    key = TestSigner()
    kms = StubKms(key)
    signature = KmsSigner(kms, "alias/seal").sign(b"seal bytes")
    assert key.verifies(b"seal bytes", signature)
    assert kms.calls == [
        (
            "sign",
            {
                "KeyId": "alias/seal",
                "Message": b"seal bytes",
                "MessageType": "RAW",
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
        )
    ]


def test_public_key_is_fetched_once_and_gives_the_key_id_and_pem() -> None:
    key = TestSigner()
    kms = StubKms(key)
    signer = KmsSigner(kms, "alias/seal")
    assert (signer.key_id, signer.public_key_pem) == (key.key_id, key.public_key_pem)
    assert signer.key_id == key.key_id
    assert [name for name, _ in kms.calls] == ["get_public_key"]


def test_a_key_of_another_curve_is_refused() -> None:
    signer = KmsSigner(StubKms(TestSigner(), key_spec="ECC_NIST_P384"), "alias/seal")
    with pytest.raises(SigningKeyMisconfiguredError, match="ECC_NIST_P256"):
        _ = signer.key_id


@pytest.mark.parametrize("code", ["ThrottlingException", "KMSInternalException", "DependencyTimeoutException"])
def test_transient_kms_failures_mean_retry_later(code: str) -> None:
    kms = StubKms(TestSigner())
    kms.failure = client_error(code)
    with pytest.raises(SigningUnavailableError, match=code):
        KmsSigner(kms, "alias/seal").sign(b"x")


@pytest.mark.parametrize("code", ["NotFoundException", "DisabledException", "AccessDeniedException"])
def test_a_missing_disabled_or_forbidden_key_is_a_configuration_error(code: str) -> None:
    kms = StubKms(TestSigner())
    kms.failure = client_error(code)
    with pytest.raises(SigningKeyMisconfiguredError, match=code):
        KmsSigner(kms, "alias/seal").sign(b"x")


def test_a_network_failure_means_retry_later() -> None:
    kms = StubKms(TestSigner())
    kms.failure = EndpointConnectionError(endpoint_url="https://kms.example")
    with pytest.raises(SigningUnavailableError):
        _ = KmsSigner(kms, "alias/seal").public_key_pem
