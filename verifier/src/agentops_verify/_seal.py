"""The CHAIN_SEAL of ELS section 5: building one, checking one, and what a checked seal established.

``build_seal_event`` is the one place a seal is made (the service's sealer signs with KMS; the SDK writes an unsigned
seal in local authority mode). ``check_seal`` is the verifier's section 5 check. Both follow revision 2, which gives
a sealed session exactly one valid form: exactly eight payload keys, the seal event's ``timestamp_wall`` equal to
``seal_timestamp``, the seal's ``event_id`` inside the signed bytes, and the low-s signature.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import _codes as codes
from ._describe import describe
from ._ecdsa import PublicKey, load_pem_public_key, low_s_signature, signature_form_problem, verify_signature
from ._errors import VerifierError
from ._hashing import chain_event, seal_signed_bytes
from ._keys import KeyLookup
from ._rules import (
    CHAIN_SEAL,
    DIGEST_PREFIX,
    KEY_ID,
    LEGACY_SEAL_KEYS,
    SIGNATURE_ALGORITHM,
    SIGNED_SEAL_KEYS,
    TIMESTAMP,
)

_SIGNED_SEAL_KEY_SET = frozenset(SIGNED_SEAL_KEYS)


# --- building a seal ---------------------------------------------------------------------------------------------


class SealSigner(Protocol):
    """A signing key as the sealer holds it (KMS behind it): its id, its published PEM, and ``sign``, which returns
    a DER ECDSA P-256 signature over SHA-256 of the message, in either s form."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key_pem(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class SealSigningError(VerifierError, ValueError):
    """The signer's signature does not verify under its own published key, or that key does not have its id: a seal
    made with it would be worthless evidence forever, so none is made."""


def seal_payload(
    *,
    session_id: str,
    seal_event_id: str,
    event_count: int,
    final_event_hash: str,
    seal_timestamp: str,
    ingestion_service_id: str,
    signer: SealSigner | None = None,
) -> dict[str, Any]:
    """The CHAIN_SEAL payload (ELS section 5): the five summary keys, plus with ``signer`` the three signature keys.

    The signature covers ``seal_signed_bytes`` (the seal event's own id included), is stored in its low-s form and is
    checked under the signer's published key before it is used (``SealSigningError`` otherwise)."""
    payload: dict[str, Any] = {
        "ingestion_service_id": ingestion_service_id,
        "seal_timestamp": seal_timestamp,
        "event_count": event_count,
        "final_event_hash": final_event_hash,
        "session_digest": DIGEST_PREFIX + final_event_hash,
    }
    if signer is None:
        return payload
    message = seal_signed_bytes(session_id, seal_event_id, payload)
    public_key = load_pem_public_key(signer.public_key_pem)
    if public_key.key_id != signer.key_id:
        raise SealSigningError(f"the signer's published key has id {public_key.key_id}, not {signer.key_id}")
    try:
        signature = low_s_signature(signer.sign(message))
    except ValueError as error:
        raise SealSigningError(f"the signer returned no ECDSA signature: {error}") from None
    if not verify_signature(public_key, message, signature):
        raise SealSigningError(f"the signature does not verify under key {signer.key_id}")
    payload["signature_algorithm"] = SIGNATURE_ALGORITHM
    payload["signer_key_id"] = signer.key_id
    payload["signature"] = base64.b64encode(signature).decode("ascii")
    return payload


def build_seal_event(
    *,
    session_id: str,
    seal_event_id: str,
    event_count: int,
    final_event_hash: str,
    seal_timestamp: str,
    ingestion_service_id: str,
    chain_authority: str,
    source_sdk_ver: str,
    signer: SealSigner | None = None,
    authority_id: str | None = None,
    timestamp_monotonic: int = 0,
) -> dict[str, Any]:
    """The complete CHAIN_SEAL event after ``event_count`` events ending in ``final_event_hash``: sequence number
    ``event_count``, ``timestamp_wall`` equal to ``seal_timestamp`` (rev 2), payload from ``seal_payload``."""
    payload = seal_payload(
        session_id=session_id,
        seal_event_id=seal_event_id,
        event_count=event_count,
        final_event_hash=final_event_hash,
        seal_timestamp=seal_timestamp,
        ingestion_service_id=ingestion_service_id,
        signer=signer,
    )
    return chain_event(
        event_id=seal_event_id,
        session_id=session_id,
        sequence_number=event_count,
        timestamp_wall=seal_timestamp,
        event_type=CHAIN_SEAL,
        payload=payload,
        prev_event_hash=final_event_hash,
        chain_authority=chain_authority,
        timestamp_monotonic=timestamp_monotonic,
        source_sdk_ver=source_sdk_ver,
        authority_id=authority_id,
    )


# --- checking a seal ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealState:
    """What a session's seal established; ``UNSEALED`` until a CHAIN_SEAL passes ``check_seal``.

    ``valid_if_trusted`` serves export claims (ELS section 9): would the signature verify if its key were trusted?
    True unless a key that the document lists under that id says otherwise. ``payload_hash`` is the seal payload's
    hash, which an export's ``seal`` member must match."""

    index: int | None = None
    signed: bool = False
    key_id: str | None = None
    key_trusted: bool = False
    valid_if_trusted: bool = True
    payload_hash: str | None = None

    @property
    def sealed(self) -> bool:
        return self.index is not None


UNSEALED = SealState()


class SealProblem(Exception):  # noqa: N818 - a finding, raised to the chain checks, which record it as a violation
    """The seal fails ELS section 5: ``code`` is INVALID_SEAL or INVALID_SIGNATURE. ``state`` is what the seal still
    established (a signed seal naming its key, for a signature that fails), so the report can say so."""

    def __init__(self, code: str, message: str, state: SealState | None = None, **context: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.state = state
        self.context = context


@dataclass(frozen=True)
class SealEvent:
    """The parts of a CHAIN_SEAL event the seal rules read (its payload is None when an export withholds it)."""

    index: int
    event_id: str
    session_id: str
    timestamp_wall: str
    payload: dict[str, Any] | None
    payload_hash: str


def check_seal(
    seal: SealEvent,
    final_event_hash: str | None,
    trust: KeyLookup | None,
    document_keys: Mapping[str, PublicKey],
) -> tuple[SealState, tuple[str, ...]]:
    """ELS section 5 for the CHAIN_SEAL at ``seal.index`` after a chain ending in ``final_event_hash``.

    Returns the seal's state and, for an unsigned legacy seal, the summary keys that do not match the chain (the
    warning LEGACY_SEAL_MISMATCH). Raises ``SealProblem`` for a seal that fails."""
    payload = seal.payload
    if payload is None:
        raise SealProblem(codes.INVALID_SEAL, "the CHAIN_SEAL payload is withheld, so it cannot be checked")
    if "signature" not in payload:
        mismatched = _legacy_mismatches(payload, seal.index, final_event_hash)
        return SealState(index=seal.index, payload_hash=seal.payload_hash), mismatched
    missing = [key for key in SIGNED_SEAL_KEYS if key not in payload]
    if missing:
        raise SealProblem(codes.INVALID_SEAL, f"signed seal lacks {', '.join(missing)}", missing=missing)
    problems = _signed_seal_problems(seal, final_event_hash)
    signature = _decode_signature(payload["signature"])
    if signature is None:
        problems.append("signature is not padded standard base64")
    if problems:
        raise SealProblem(codes.INVALID_SEAL, "; ".join(problems), problems=problems)
    assert signature is not None
    key_id: str = payload["signer_key_id"]
    state = SealState(index=seal.index, signed=True, key_id=key_id, payload_hash=seal.payload_hash)
    form_problem = signature_form_problem(signature)
    if form_problem is not None:
        raise SealProblem(
            codes.INVALID_SIGNATURE,
            f"the seal's signature is not strict DER low-s ECDSA ({form_problem}), so it verifies under no key",
            state,
            signer_key_id=key_id,
        )
    message = seal_signed_bytes(seal.session_id, seal.event_id, payload)
    key = trust.get(key_id) if trust is not None else None
    if key is None:
        listed = document_keys.get(key_id)
        if listed is not None and not verify_signature(listed, message, signature):
            state = dataclasses.replace(state, valid_if_trusted=False)
        return state, ()
    if not verify_signature(key, message, signature):
        raise SealProblem(
            codes.INVALID_SIGNATURE,
            f"the seal's signature does not verify under trusted key {key_id}",
            state,
            signer_key_id=key_id,
        )
    return dataclasses.replace(state, key_trusted=True), ()


def _legacy_mismatches(payload: dict[str, Any], index: int, final_event_hash: str | None) -> tuple[str, ...]:
    # ELS section 5: an unsigned seal proves nothing, so only the presence of three keys is required; a summary that
    # does not match the chain is a warning.
    missing = [key for key in LEGACY_SEAL_KEYS if key not in payload]
    if missing:
        raise SealProblem(codes.INVALID_SEAL, f"unsigned seal lacks {', '.join(missing)}", missing=missing)
    mismatched = []
    if payload["session_digest"] != DIGEST_PREFIX + str(final_event_hash):
        mismatched.append("session_digest")
    if "final_event_hash" in payload and payload["final_event_hash"] != final_event_hash:
        mismatched.append("final_event_hash")
    count = payload.get("event_count", index)
    if type(count) is not int or count != index:
        mismatched.append("event_count")
    return tuple(mismatched)


def _signed_seal_problems(seal: SealEvent, final_event_hash: str | None) -> list[str]:
    payload = seal.payload
    assert payload is not None
    problems = []
    unknown = [key for key in payload if key not in _SIGNED_SEAL_KEY_SET]
    if unknown:
        problems.append(f"keys outside the eight of a signed seal: {', '.join(unknown)}")
    if type(payload["ingestion_service_id"]) is not str or not payload["ingestion_service_id"]:
        problems.append("ingestion_service_id is not a non-empty string")
    seal_timestamp = payload["seal_timestamp"]
    if type(seal_timestamp) is not str or not TIMESTAMP.fullmatch(seal_timestamp):
        problems.append("seal_timestamp is not an RFC 3339 UTC time")
    elif seal_timestamp != seal.timestamp_wall:
        problems.append("the seal event's timestamp_wall is not its seal_timestamp")
    if type(payload["event_count"]) is not int or payload["event_count"] != seal.index:
        problems.append(f"event_count is {describe(payload['event_count'])}, the chain has {seal.index}")
    if payload["final_event_hash"] != final_event_hash:
        problems.append("final_event_hash is not the previous event's event_hash")
    if payload["session_digest"] != DIGEST_PREFIX + str(final_event_hash):
        problems.append("session_digest is not 'sha256:' + final_event_hash")
    if payload["signature_algorithm"] != SIGNATURE_ALGORITHM:
        problems.append(f"signature_algorithm is not {SIGNATURE_ALGORITHM}")
    key_id = payload["signer_key_id"]
    if type(key_id) is not str or not KEY_ID.fullmatch(key_id):
        problems.append("signer_key_id is not 'sha256:' + 64 lowercase hex digits")
    return problems


def _decode_signature(value: Any) -> bytes | None:
    if type(value) is not str or not value.isascii():
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Only the one padded standard encoding of these bytes is accepted.
    return decoded if base64.b64encode(decoded).decode("ascii") == value and decoded else None
