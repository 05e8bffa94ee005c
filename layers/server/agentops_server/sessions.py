"""GET /v1/sessions/{id}: the session view of API.md, from the head (owner, status, archive reference), the chain's
tip (the authority on how far the chain goes; the head is only a cache) and, for a sealed session, the archived bytes.

``evidence_class`` is never the head's stored attribute, which anyone holding the table's write rights could set
(ELS section 8, rev 2). For a sealed session it is the class the verifier library computes from the archive version
the head names, read through ``VerifiedArchives`` (cached per process under the bytes' SHA-256 and the trusted key
set, so a session is verified once per process, as replay does): bytes that are not the ones recorded at sealing, or
a chain of another session, show ``NON_AUTHORITATIVE_EVIDENCE``. An unsealed session shows null: its class is what
replay and export compute when they verify the stored chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentops_verify import NON_AUTHORITATIVE_EVIDENCE

from agentops_server.clock import format_timestamp
from agentops_server.errors import ApiError
from agentops_server.replay import KeySource, TrustedKeys, VerifiedArchives
from agentops_server.store import STATUS_ENDED, STATUS_SEALING, ArchiveRef, ChainStore, later_status
from agentops_server.validation import is_canonical_uuid


def session_view(
    store: ChainStore, session_id: str, *, archives: VerifiedArchives, trusted_keys: KeySource
) -> dict[str, Any]:
    head = store.get_head(session_id) if is_canonical_uuid(session_id) else None
    if head is None:
        raise ApiError("SESSION_NOT_FOUND", "No session has this id.", {"session_id": session_id})
    tip = store.tip(session_id)
    status = head.status
    next_sequence = head.next_sequence_number
    last_event_hash = head.last_event_hash
    ended_at = head.ended_at
    if tip is not None and tip.last_sequence + 1 >= next_sequence:
        next_sequence = tip.last_sequence + 1
        last_event_hash = tip.last_event_hash
        if tip.ends_session:
            status = later_status(status, STATUS_ENDED)
            ended_at = ended_at or tip.accepted_at
        if tip.is_seal:
            status = later_status(status, STATUS_SEALING)
    archive = head.archive
    return {
        "session_id": session_id,
        "owner": head.owner,
        "status": status,
        "event_count": next_sequence,
        "next_sequence_number": next_sequence,
        "last_event_hash": last_event_hash,
        "started_at": _time(head.started_at),
        "ended_at": _time(ended_at),
        "sealed_at": _time(head.sealed_at),
        "evidence_class": archived_evidence_class(session_id, archive, archives, trusted_keys),
        "archive": None
        if archive is None
        else {"bucket": archive.bucket, "key": archive.key, "version_id": archive.version_id, "sha256": archive.sha256},
    }


def archived_evidence_class(
    session_id: str, archive: ArchiveRef | None, archives: VerifiedArchives, trusted_keys: KeySource
) -> str | None:
    """The verifier's class of the archived chain of ``session_id``; None while the session has no archive."""
    if archive is None:
        return None
    verified = archives.verified(archive, TrustedKeys.of(trusted_keys()))
    if not verified.passed or verified.report.get("session_id") != session_id:
        return NON_AUTHORITATIVE_EVIDENCE
    return str(verified.report["evidence_class"])


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)
