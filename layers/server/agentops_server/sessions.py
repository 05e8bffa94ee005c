"""GET /v1/sessions/{id}: the session view of API.md, from the head (owner, status, archive reference), the chain's
tip (the authority on how far the chain goes; the head is only a cache) and, for a sealed session, the archived bytes.
The session listing shows the same progress figures (``session_row``).

``evidence_class`` is never the head's stored attribute, which anyone holding the table's write rights could set
(ELS section 8, rev 2). For a sealed session it is the class the verifier library computes from the archive version
the head names, read through ``VerifiedArchives`` (cached per process under the bytes' SHA-256 and the trusted key
set, so a session is verified once per process, as replay does): bytes that are not the ones recorded at sealing, or
a chain of another session, show ``NON_AUTHORITATIVE_EVIDENCE``. An unsealed session shows null: its class is what
replay and export compute when they verify the stored chain. The listing verifies nothing (a page may name hundreds
of archives), so its rows say null: a class is shown only by what verified the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agentops_verify import NON_AUTHORITATIVE_EVIDENCE, is_canonical_uuid

from agentops_server.clock import format_timestamp
from agentops_server.errors import ApiError
from agentops_server.replay import KeySource, TrustedKeys, VerifiedArchives
from agentops_server.store import (
    STATUS_ENDED,
    STATUS_SEALED,
    STATUS_SEALING,
    ArchiveRef,
    ChainStore,
    ChainTip,
    SessionHead,
    later_status,
)


@dataclass(frozen=True)
class _Progress:
    """How far a session has gone: the head's record, moved forward by what the chain's tip shows."""

    status: str
    next_sequence: int
    last_event_hash: str | None
    ended_at: datetime | None


def _progress(head: SessionHead, tip: ChainTip | None) -> _Progress:
    progress = _Progress(head.status, head.next_sequence_number, head.last_event_hash, head.ended_at)
    if tip is None or tip.last_sequence + 1 < progress.next_sequence:
        return progress
    status = progress.status
    ended_at = progress.ended_at
    if tip.ends_session:
        status = later_status(status, STATUS_ENDED)
        ended_at = ended_at or tip.accepted_at
    if tip.is_seal:
        status = later_status(status, STATUS_SEALING)
    return _Progress(status, tip.last_sequence + 1, tip.last_event_hash, ended_at)


def session_view(
    store: ChainStore, session_id: str, *, archives: VerifiedArchives, trusted_keys: KeySource
) -> dict[str, Any]:
    head = store.get_head(session_id) if is_canonical_uuid(session_id) else None
    if head is None:
        raise ApiError("SESSION_NOT_FOUND", "No session has this id.", {"session_id": session_id})
    progress = _progress(head, store.tip(session_id))
    archive = head.archive
    return {
        "session_id": session_id,
        "owner": head.owner,
        "status": progress.status,
        "event_count": progress.next_sequence,
        "next_sequence_number": progress.next_sequence,
        "last_event_hash": progress.last_event_hash,
        "started_at": _time(head.started_at),
        "ended_at": _time(progress.ended_at),
        "sealed_at": _time(head.sealed_at),
        "evidence_class": archived_evidence_class(session_id, archive, archives, trusted_keys),
        "archive": None
        if archive is None
        else {"bucket": archive.bucket, "key": archive.key, "version_id": archive.version_id, "sha256": archive.sha256},
    }


def session_row(head: SessionHead, tip: ChainTip | None) -> dict[str, Any]:
    """One session of the GET /v1/sessions listing, with the figures ``session_view`` gives (no class: see above)."""
    progress = _progress(head, tip)
    return {
        "session_id": head.session_id,
        "owner": head.owner,
        "agent_id": head.agent_id,
        "status": progress.status,
        "event_count": progress.next_sequence,
        "started_at": _time(head.started_at),
        "ended_at": _time(progress.ended_at),
        "sealed_at": _time(head.sealed_at),
        "evidence_class": None,
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


# --- GET /v1/sessions/{id}/chain ------------------------------------------------------------------------------------

CHAIN_URL_EXPIRES_IN = 900  # seconds a presigned archive link stays valid


class ArchiveLinks(Protocol):
    def presigned_url(self, archive: ArchiveRef, expires_in: int) -> str:
        """A time-limited GET of exactly the archived version."""
        ...


def chain_link(store: ChainStore, links: ArchiveLinks, session_id: str) -> dict[str, Any]:
    """The chain route's body (API.md): where the sealed chain is archived and a presigned GET of that exact version
    (never the chain itself: a sealed session can be far larger than a Lambda response). 404 SESSION_NOT_FOUND, 409
    NOT_SEALED."""
    head = store.get_head(session_id)
    if head is None:
        raise ApiError("SESSION_NOT_FOUND", "No session has this id.", {"session_id": session_id})
    if head.status != STATUS_SEALED or head.archive is None:
        raise ApiError(
            "NOT_SEALED",
            "The session is not sealed yet; its chain is archived when it is.",
            {"session_id": session_id, "status": head.status},
        )
    return {
        "bucket": head.archive.bucket,
        "key": head.archive.key,
        "version_id": head.archive.version_id,
        "sha256": head.archive.sha256,
        "url": links.presigned_url(head.archive, CHAIN_URL_EXPIRES_IN),
        "expires_in": CHAIN_URL_EXPIRES_IN,
    }
