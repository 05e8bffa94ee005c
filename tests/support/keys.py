"""Test-only P-256 signing keys that sign the way the sealer's KMS key does (ELS section 5).

KMS with key spec ECC_NIST_P256, algorithm ECDSA_SHA_256 and message type RAW hashes the message with SHA-256 and
returns the DER-encoded ECDSA signature; ``TestSigner.sign`` returns exactly that. The ``cryptography`` package is
a test dependency only: the verifier itself never imports it.
"""

from __future__ import annotations

import hashlib
import json

from agentops_verify import low_s_signature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_ALGORITHM = "ECDSA_P256_SHA256"
DEFAULT_FIRST_USED_AT = "2026-01-01T00:00:00Z"


class TestSigner:
    """A fresh P-256 key pair with the public forms the API publishes (``GET /v1/keys``)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.private_key = private_key if private_key is not None else ec.generate_private_key(ec.SECP256R1())
        self.public_key = self.private_key.public_key()
        self.spki_der: bytes = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key_pem: str = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        # ELS section 5: signer_key_id = "sha256:" + hex(SHA-256(DER SubjectPublicKeyInfo)).
        self.key_id: str = "sha256:" + hashlib.sha256(self.spki_der).hexdigest()

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA-SHA256 signature over ``message`` in the low-s form the sealer stores (ELS section 5, rev 2)."""
        return low_s_signature(self.sign_like_kms(message))

    def sign_like_kms(self, message: bytes) -> bytes:
        """DER ECDSA-SHA256 signature as KMS returns it for MessageType RAW: s may be high or low."""
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Check a signature with ``cryptography`` (the independent reference for the verifier's own ECDSA code)."""
        try:
            self.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except Exception:  # cryptography raises InvalidSignature, or ValueError for malformed DER
            return False
        return True

    def key_entry(self, first_used_at: str = DEFAULT_FIRST_USED_AT) -> dict[str, str]:
        """This key as one entry of the ``GET /v1/keys`` document (API.md)."""
        return {
            "signer_key_id": self.key_id,
            "algorithm": SIGNATURE_ALGORITHM,
            "public_key_pem": self.public_key_pem,
            "first_used_at": first_used_at,
        }

    def __repr__(self) -> str:
        return f"TestSigner({self.key_id})"


def make_signer() -> TestSigner:
    return TestSigner()


def keys_json(*signers: TestSigner) -> bytes:
    """The ``GET /v1/keys`` response body listing ``signers`` (API.md)."""
    return json.dumps({"keys": [signer.key_entry() for signer in signers]}).encode("utf-8")


_default_signer: TestSigner | None = None


def default_signer() -> TestSigner:
    """One key shared by a test run, used by ``build_chain`` when a signed seal is asked for without a signer."""
    global _default_signer  # noqa: PLW0603 - a lazily made process-wide test key, generated once
    if _default_signer is None:
        _default_signer = TestSigner()
    return _default_signer
