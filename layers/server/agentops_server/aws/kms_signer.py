"""A ``Signer`` backed by AWS KMS (ELS section 5).

The private key never leaves KMS. KMS is always asked to sign the *message* (``MessageType="RAW"``) with
``ECDSA_SHA_256``, so KMS hashes it with SHA-256 itself; the ``DIGEST`` message type is never used (moto computes
it wrongly, and a pre-hashed call would be one more place for the hash to differ from the verifier's).

IAM needed by a caller of ``KmsSigner``: ``kms:Sign`` and ``kms:GetPublicKey`` on the seal key, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.metrics import KMS_ERRORS, NO_METRICS, MetricsRecorder
from agentops_server.signing import (
    SigningKeyMisconfiguredError,
    SigningUnavailableError,
    public_key_pem,
    signer_key_id,
)

# The KMS names that produce ELS section 5's SIGNATURE_ALGORITHM (the verifier's constant).
KMS_KEY_SPEC = "ECC_NIST_P256"
KMS_SIGNING_ALGORITHM = "ECDSA_SHA_256"

# KMS error codes that mean "this key can never sign our seals as configured": retrying will not help.
_MISCONFIGURED_KEY_CODES = frozenset(
    {
        "NotFoundException",
        "InvalidKeyUsageException",
        "KMSInvalidStateException",
        "DisabledException",
        "AccessDeniedException",
        "InvalidArnException",
    }
)


@dataclass(frozen=True)
class _PublicKey:
    der: bytes
    key_id: str
    pem: str


class KmsSigner:
    """A ``Signer`` backed by an AWS KMS asymmetric key (``ECC_NIST_P256``, ``SIGN_VERIFY``).

    The public key is fetched once (``GetPublicKey``) on first use and cached for the life of the object, which in
    Lambda is the life of the execution environment.
    """

    def __init__(self, kms_client: Any, key_id: str, metrics: MetricsRecorder = NO_METRICS) -> None:
        self._kms = kms_client
        self._metrics = metrics
        self._kms_key_id = key_id
        self._public_key: _PublicKey | None = None

    @property
    def key_id(self) -> str:
        return self._load_public_key().key_id

    @property
    def public_key_pem(self) -> str:
        return self._load_public_key().pem

    def sign(self, message: bytes) -> bytes:
        response = self._call(
            "sign",
            KeyId=self._kms_key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=KMS_SIGNING_ALGORITHM,
        )
        signature: bytes = response["Signature"]
        return signature

    def _load_public_key(self) -> _PublicKey:
        if self._public_key is None:
            response = self._call("get_public_key", KeyId=self._kms_key_id)
            # KMS answers with KeySpec and its deprecated twin CustomerMasterKeySpec; moto sends only the latter.
            key_spec = response.get("KeySpec", response.get("CustomerMasterKeySpec"))
            if key_spec != KMS_KEY_SPEC or KMS_SIGNING_ALGORITHM not in response.get("SigningAlgorithms", []):
                raise SigningKeyMisconfiguredError(
                    f"KMS key {self._kms_key_id} is {key_spec}/{response.get('KeyUsage')}; "
                    f"ELS seals need {KMS_KEY_SPEC} SIGN_VERIFY with {KMS_SIGNING_ALGORITHM}"
                )
            der: bytes = response["PublicKey"]
            self._public_key = _PublicKey(der=der, key_id=signer_key_id(der), pem=public_key_pem(der))
        return self._public_key

    def _call(self, operation: str, **arguments: Any) -> Any:
        try:
            return getattr(self._kms, operation)(**arguments)
        except ClientError as error:
            self._count_error(operation)
            code = error.response.get("Error", {}).get("Code", "")
            if code in _MISCONFIGURED_KEY_CODES:
                raise SigningKeyMisconfiguredError(f"KMS {operation} refused for the seal key: {code}") from error
            raise SigningUnavailableError(f"KMS {operation} failed: {code}") from error
        except BotoCoreError as error:
            self._count_error(operation)
            raise SigningUnavailableError(f"KMS {operation} failed: {type(error).__name__}") from error

    def _count_error(self, operation: str) -> None:
        # Dimension: the KMS API action (Sign, GetPublicKey), never the key or what was being signed.
        self._metrics.record(KMS_ERRORS, 1, {"Operation": operation.title().replace("_", "")})
