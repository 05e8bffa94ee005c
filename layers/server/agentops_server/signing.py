"""Seal signing (ELS section 5): the ``Signer`` interface, its errors, and the key id and PEM forms of a public key.

The AWS KMS implementation is ``agentops_server.aws.kms_signer``.
"""

from __future__ import annotations

import base64
from typing import Protocol

from agentops_verify import sha256_hex


class SigningError(Exception):
    """Base class of signing errors."""


class SigningUnavailableError(SigningError):
    """KMS failed, throttled or timed out; nothing was signed. The next sealing run retries."""


class SigningKeyMisconfiguredError(SigningError):
    """The configured key cannot produce ELS seals (missing, disabled, not ECC_NIST_P256 SIGN_VERIFY, no access)."""


class Signer(Protocol):
    """What the sealer needs from a signing key."""

    @property
    def key_id(self) -> str:
        """ELS ``signer_key_id``: ``"sha256:" + hex(SHA-256(DER SubjectPublicKeyInfo))``."""
        ...

    @property
    def public_key_pem(self) -> str: ...

    def sign(self, message: bytes) -> bytes:
        """DER-encoded ECDSA P-256 signature over SHA-256(``message``)."""
        ...


def signer_key_id(der_spki: bytes) -> str:
    """ELS section 5 ``signer_key_id`` of a public key given as DER SubjectPublicKeyInfo."""
    return "sha256:" + sha256_hex(der_spki)


def public_key_pem(der_spki: bytes) -> str:
    """RFC 7468 PEM text ("PUBLIC KEY", base64 in 64-character lines) of a DER SubjectPublicKeyInfo."""
    encoded = base64.b64encode(der_spki).decode("ascii")
    lines = [encoded[start : start + 64] for start in range(0, len(encoded), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
