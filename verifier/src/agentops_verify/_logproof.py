"""Log proofs (LOG.md sections 5 and 6): the ``log_proof`` object an export carries or the API serves, and the
verifier's check of it against a verified sealed chain.

The check, in order: the checkpoint's signature under a pinned log key; the leaf's session facts equal to the
verified chain's; for a chain file, the leaf's ``archive_sha256`` equal to the SHA-256 of the file's bytes; the
inclusion proof leading from the leaf to the checkpoint's root. Any failure is the violation ``LOG_PROOF_INVALID``.
Pure: parsed values, facts and keys in, a result out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._codes import LOG_PROOF_INVALID
from ._ecdsa import PublicKey
from ._errors import EvidenceLogError
from ._leaf import LogLeaf, SealedChainFacts
from ._merkle import HASH_SIZE, MAX_TREE_SIZE, ProofError, verify_inclusion
from ._note import verify_checkpoint
from ._report import Violation

# LOG.md section 5, in the order the section lists them.
LOG_PROOF_KEYS = ("checkpoint", "leaf_index", "leaf", "inclusion_proof")


def encode_hashes(hashes: Iterable[bytes]) -> list[str]:
    """Proof hashes as the API and exports carry them: standard base64 strings (LOG.md section 5)."""
    return [base64.b64encode(value).decode("ascii") for value in hashes]


def decode_hashes(value: object) -> list[bytes]:
    """A JSON list of base64 SHA-256 hashes, each in canonical standard base64; ``ProofError`` otherwise."""
    if not isinstance(value, list):
        raise ProofError("the proof is not a JSON list")
    hashes = []
    for position, text in enumerate(value):
        try:
            raw = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None or len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != text:
            raise ProofError(f"proof hash {position} is not the canonical base64 of {HASH_SIZE} bytes")
        hashes.append(raw)
    return hashes


@dataclass(frozen=True)
class LogProof:
    """``{"checkpoint": note text, "leaf_index": int, "leaf": {leaf object}, "inclusion_proof": [base64]}``."""

    checkpoint: str
    leaf_index: int
    leaf: LogLeaf
    inclusion_proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "leaf_index": self.leaf_index,
            "leaf": self.leaf.to_dict(),
            "inclusion_proof": encode_hashes(self.inclusion_proof),
        }

    @classmethod
    def from_dict(cls, value: object) -> LogProof:
        """Exactly the four members of LOG.md section 5, each well-formed; ``EvidenceLogError`` otherwise."""
        if not isinstance(value, dict):
            raise ProofError("the log proof is not a JSON object")
        if set(value) != set(LOG_PROOF_KEYS):
            raise ProofError(f"the log proof's members are {sorted(value)}, not {sorted(LOG_PROOF_KEYS)}")
        checkpoint, leaf_index = value["checkpoint"], value["leaf_index"]
        if not isinstance(checkpoint, str):
            raise ProofError("the log proof's checkpoint is not a string")
        if type(leaf_index) is not int or not 0 <= leaf_index < MAX_TREE_SIZE:
            raise ProofError(f"the log proof's leaf_index {leaf_index!r} is not a non-negative integer")
        return cls(
            checkpoint=checkpoint,
            leaf_index=leaf_index,
            leaf=LogLeaf.from_dict(value["leaf"]),
            inclusion_proof=tuple(decode_hashes(value["inclusion_proof"])),
        )


@dataclass(frozen=True)
class LogInclusion:
    """A verified inclusion: the session is leaf ``leaf_index`` of the log ``origin`` of ``tree_size`` leaves."""

    origin: str
    tree_size: int
    leaf_index: int

    def to_dict(self) -> dict[str, Any]:
        """The report's ``log`` member (LOG.md section 6)."""
        return {"included": True, "origin": self.origin, "tree_size": self.tree_size, "leaf_index": self.leaf_index}


@dataclass(frozen=True)
class LogProofCheck:
    """The outcome of ``verify_log_proof``: an inclusion, or the ``LOG_PROOF_INVALID`` violation (never both)."""

    inclusion: LogInclusion | None
    violation: Violation | None

    @property
    def passed(self) -> bool:
        return self.violation is None

    def report_log(self) -> dict[str, Any] | None:
        """The report's ``log`` member: the inclusion when it was verified, else null."""
        return self.inclusion.to_dict() if self.inclusion is not None else None


def verify_log_proof(
    log_proof: object,
    chain: SealedChainFacts,
    *,
    archive_sha256: str | None,
    log_keys: Sequence[PublicKey],
) -> LogProofCheck:
    """LOG.md section 6: check a parsed ``log_proof`` against the facts of the verified sealed chain.

    ``archive_sha256`` is the lowercase hex SHA-256 of the chain file's bytes, or None for an export document (whose
    bytes are not the archive's). ``log_keys`` are the pinned checkpoint keys (``--log-key``)."""
    step = "format"
    try:
        proof = LogProof.from_dict(log_proof)
        step = "checkpoint"
        checkpoint = verify_checkpoint(proof.checkpoint, log_keys)
        step = "leaf"
        differences = proof.leaf.differences(chain)
        if differences:
            raise ProofError(f"the leaf states {', '.join(differences)} differently from the verified chain")
        if archive_sha256 is not None and proof.leaf.archive_sha256 != archive_sha256:
            step = "archive"
            raise ProofError(
                f"the leaf's archive_sha256 {proof.leaf.archive_sha256} is not the file's SHA-256 {archive_sha256}"
            )
        step = "inclusion"
        leaf_hash = proof.leaf.hash()
        verify_inclusion(leaf_hash, proof.leaf_index, checkpoint.size, proof.inclusion_proof, checkpoint.root_hash)
    except EvidenceLogError as error:
        return LogProofCheck(
            inclusion=None,
            violation=Violation(LOG_PROOF_INVALID, f"log proof: {error}", context={"check": step}),
        )
    return LogProofCheck(
        inclusion=LogInclusion(origin=checkpoint.origin, tree_size=checkpoint.size, leaf_index=proof.leaf_index),
        violation=None,
    )
