"""Serving the evidence log (LOG.md section 5, API.md "Evidence log"): the API's side, from the bucket's tiles and
checkpoint (interfaces: ``evidence_log``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agentops_verify import (
    Checkpoint,
    EvidenceLogError,
    LogLeaf,
    LogProof,
    TileReader,
    consistency_proof,
    encode_hashes,
    inclusion_proof,
    verify_inclusion,
)

from agentops_server.errors import ApiError
from agentops_server.evidence_log import (
    ALARM_LOG_INTEGRITY,
    LeafIndex,
    LogIntegrityError,
    LogObjectMissingError,
    LogReadObjects,
)
from agentops_server.store import STATUS_ENDED, STATUS_OPEN, ChainStore
from agentops_server.validation import is_canonical_uuid

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

LOG_PENDING_RETRY_AFTER_SECONDS = 60
_DECIMAL = re.compile(r"[1-9][0-9]{0,18}")


# --- the API's side -----------------------------------------------------------------------------------------------
class LogPendingError(ApiError):
    """409 LOG_PENDING: the session is sealed and will be in the log after the next publication."""

    def __init__(self, session_id: str, reason: str) -> None:
        super().__init__(
            "LOG_PENDING",
            "The session is sealed but not yet in a published checkpoint; retry after the next sealing run.",
            {"session_id": session_id, "reason": reason},
        )
        self.retry_after = LOG_PENDING_RETRY_AFTER_SECONDS


def checkpoint_of_note(note: bytes) -> Checkpoint:
    """The checkpoint a signed note states, unverified (the API serves notes; its callers verify them): the note
    text is everything before the blank line that precedes the signatures (C2SP signed-note)."""
    text, blank, _ = note.partition(b"\n\n")
    if not blank:
        raise LogIntegrityError("log/checkpoint is not a signed note")
    try:
        return Checkpoint.from_note_text(text + b"\n")
    except EvidenceLogError as error:
        raise LogIntegrityError(f"log/checkpoint: {error}") from error


class LogReader:
    """The routes of LOG.md section 5, from the bucket's tiles and checkpoint. The table only says which leaf is a
    session's, and that is checked against the tiles before anything is served."""

    def __init__(self, objects: LogReadObjects, leaves: LeafIndex, store: ChainStore) -> None:
        self._objects = objects
        self._leaves = leaves
        self._store = store

    def checkpoint_note(self) -> bytes:
        stored = self._objects.latest_checkpoint()
        if stored is None:
            raise ApiError("NOT_FOUND", "The log has no checkpoint yet: no session has been sealed.")
        return stored.note

    def consistency(self, parameters: Mapping[str, str]) -> dict[str, Any]:
        """``{"from": M, "to": N, "proof": [...]}`` between the trees of M and N leaves, ``0 < M <= N <= size``."""
        old_size = _size_parameter(parameters, "from")
        new_size = _size_parameter(parameters, "to")
        stored = self._objects.latest_checkpoint()
        size = checkpoint_of_note(stored.note).size if stored is not None else 0
        if not 0 < old_size <= new_size <= size:
            raise ApiError(
                "VALIDATION_ERROR",
                f"A consistency proof needs 0 < from <= to <= {size}, the size of the latest checkpoint.",
                {"from": old_size, "to": new_size, "tree_size": size},
            )
        proof = _integrity_checked(lambda: consistency_proof(old_size, new_size, TileReader(size, self._objects.read)))
        return {"from": old_size, "to": new_size, "proof": encode_hashes(proof)}

    def log_proof(self, session_id: str) -> LogProof:
        """The session's leaf and its inclusion proof against the latest checkpoint; ``ApiError`` when it has none:
        SESSION_NOT_FOUND, NOT_SEALED, or LOG_PENDING while it is sealed but not yet under a checkpoint."""
        head = self._store.get_head(session_id) if is_canonical_uuid(session_id) else None
        if head is None:
            raise ApiError("SESSION_NOT_FOUND", "No session has this id.", {"session_id": session_id})
        index = self._leaves.leaf_index(session_id)
        stored = self._objects.latest_checkpoint()
        if index is None or stored is None:
            if head.status in (STATUS_OPEN, STATUS_ENDED):
                raise ApiError(
                    "NOT_SEALED",
                    "The session is not sealed yet; it enters the log when it is.",
                    {"session_id": session_id, "status": head.status},
                )
            raise LogPendingError(session_id, "no leaf yet" if index is None else "no checkpoint yet")
        checkpoint = checkpoint_of_note(stored.note)
        if index >= checkpoint.size:
            raise LogPendingError(session_id, f"leaf {index} is beyond the checkpoint's {checkpoint.size} leaves")

        def prove() -> LogProof:
            reader = TileReader(checkpoint.size, self._objects.read)
            leaf = LogLeaf.from_bytes(reader.entry(index))
            if leaf.session_id != session_id:
                raise LogIntegrityError(f"leaf {index}, recorded for session {session_id}, is {leaf.session_id}'s")
            proof = inclusion_proof(index, checkpoint.size, reader)
            verify_inclusion(leaf.hash(), index, checkpoint.size, proof, checkpoint.root_hash)
            return LogProof(stored.note.decode("utf-8"), index, leaf, tuple(proof))

        return _integrity_checked(prove)

    def log_proof_for(self, session_id: str) -> dict[str, Any] | None:
        """An export's ``log_proof`` (ELS section 9): the proof object, or None while the session has none."""
        try:
            return self.log_proof(session_id).to_dict()
        except ApiError as error:
            if error.status == 409:
                return None
            raise


def _integrity_checked(compute: Callable[[], _T]) -> _T:
    """Run a proof computation over stored tiles; a tile that is missing or does not fit is an integrity failure of
    the service (500, with the alarm logged), never an answer."""
    try:
        return compute()
    except (EvidenceLogError, LogIntegrityError, LogObjectMissingError, ValueError) as error:
        logger.error(
            "the stored evidence log cannot prove what it states",
            extra={"alarm": ALARM_LOG_INTEGRITY, "detail": str(error)},
        )
        raise ApiError("INTERNAL_ERROR", "The service failed; retry the same request.") from error


def _size_parameter(parameters: Mapping[str, str], name: str) -> int:
    text = parameters.get(name)
    if text is None or _DECIMAL.fullmatch(text) is None:
        raise ApiError(
            "VALIDATION_ERROR",
            f"The query parameter {name!r} must be a positive tree size in decimal.",
            {"parameter": name, "value": text},
        )
    return int(text)
