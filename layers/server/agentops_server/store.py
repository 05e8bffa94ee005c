"""The chain store interface: what the ingestion, sealing, replay and export cores need from storage.

Implementations: ``memory.InMemoryChainStore`` (tests, benchmarks) and ``dynamodb.DynamoDBChainStore`` (AWS and the
local stack). Adapters translate their backend's errors into the domain errors below; the core never sees boto3.

Consistency model (docs/architecture.md): batch items are the authority. A batch is stored once, at its first
sequence number, with a conditional write that fails when any batch already starts there; because every batch's
first sequence number is the previous batch's last + 1, that single condition keeps the chain linear under races.
The session head is a cached summary (for reads and for finding sessions due for sealing) that may lag the tail
after a crash; readers that need the truth read ``tail()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Session statuses (API.md), in the only order a session moves through them.
STATUS_OPEN = "OPEN"
STATUS_ENDED = "ENDED"
STATUS_SEALING = "SEALING"
STATUS_SEALED = "SEALED"
_STATUS_ORDER = (STATUS_OPEN, STATUS_ENDED, STATUS_SEALING, STATUS_SEALED)


def later_status(current: str, proposed: str) -> str:
    """The later of two statuses: a head's status never moves backwards."""
    return max(current, proposed, key=_STATUS_ORDER.index)


class StoreError(Exception):
    """Base class of storage errors."""


class SequenceConflictError(StoreError):
    """A batch (or the seal) already occupies this sequence number: another writer won the race."""


class SessionExistsError(StoreError):
    """The session head already exists (it has an owner)."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"session already owned by {owner}")
        self.owner = owner


class StoreThrottledError(StoreError):
    """The backend throttled the request; the caller may retry later (HTTP 429)."""


class StoreUnavailableError(StoreError):
    """The backend failed or timed out; nothing is known to be written (HTTP 5xx, safe to retry)."""


class StoredItemMalformedError(StoreError):
    """A stored item cannot be read (an attribute missing, of another type or format): the item was written by
    something other than this service's code. Only the session the item belongs to is affected."""


@dataclass(frozen=True)
class StoredBatch:
    """One accepted batch: the canonical bytes of its events, exactly as hashed and later archived."""

    session_id: str
    first_sequence: int
    lines: tuple[bytes, ...]  # JCS bytes of each full event envelope (ELS section 8 archive line form)
    event_ids: tuple[str, ...]
    event_hashes: tuple[str, ...]
    owner: str
    request_digest: str  # sha256 hex over the request's canonical events: identifies an idempotent retry
    accepted_at: datetime
    ends_session: bool = False  # holds SESSION_END
    is_seal: bool = False  # holds the session's single CHAIN_SEAL
    # The session's canonical bytes through this batch (every line plus its LF, as archived): what the cap on a
    # session's size is checked against, read from the tip. Ingest always sets it.
    session_bytes: int = 0

    @property
    def last_sequence(self) -> int:
        return self.first_sequence + len(self.lines) - 1

    @property
    def last_event_hash(self) -> str:
        return self.event_hashes[-1]


@dataclass(frozen=True)
class ChainTip:
    """Where a session's chain ends, without the event bytes: what an append needs to know about the last batch."""

    session_id: str
    first_sequence: int  # of the last batch
    last_sequence: int
    last_event_hash: str
    owner: str
    accepted_at: datetime
    ends_session: bool
    is_seal: bool
    session_bytes: int

    @classmethod
    def of(cls, batch: StoredBatch) -> ChainTip:
        return cls(
            session_id=batch.session_id,
            first_sequence=batch.first_sequence,
            last_sequence=batch.last_sequence,
            last_event_hash=batch.last_event_hash,
            owner=batch.owner,
            accepted_at=batch.accepted_at,
            ends_session=batch.ends_session,
            is_seal=batch.is_seal,
            session_bytes=batch.session_bytes,
        )


@dataclass(frozen=True)
class ArchiveRef:
    bucket: str
    key: str
    version_id: str
    sha256: str


@dataclass(frozen=True)
class SessionHead:
    """Cached per-session summary. ``status`` is OPEN, ENDED, SEALING or SEALED (API.md)."""

    session_id: str
    owner: str
    status: str
    next_sequence_number: int
    last_event_hash: str | None
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None = None
    sealed_at: datetime | None = None
    archive: ArchiveRef | None = None
    evidence_class: str | None = None  # from the verifier library over the sealed chain; None until sealed
    partial_reasons: tuple[str, ...] = ()
    seal_refused_reason: str | None = None  # set when the stored chain failed re-verification
    agent_id: str | None = None  # SESSION_START's agent_id, recorded when the head is created (session listing)


@dataclass(frozen=True)
class HeadStatus:
    """Who owns a session and where it stands, from the head item alone (no chain read)."""

    owner: str
    status: str


@dataclass(frozen=True)
class SigningKeyRecord:
    signer_key_id: str
    algorithm: str
    public_key_pem: str
    first_used_at: datetime


# --- session listing (API.md, GET /v1/sessions) ----------------------------------------------------------------
@dataclass(frozen=True, order=True)
class ListPosition:
    """A place in the session listing, which runs newest first by ``(started_at, session_id)``."""

    started_at: datetime
    session_id: str

    @classmethod
    def of(cls, head: SessionHead) -> ListPosition:
        return cls(head.started_at, head.session_id)


@dataclass(frozen=True)
class SessionListQuery:
    """Which heads a listing page holds. Every bound is exclusive: ``started_after < started_at <
    started_before``, and ``older_than`` (the previous page's end) comes before every head of this page."""

    limit: int
    agent_id: str | None = None
    status: str | None = None  # compared with the head's recorded status
    started_after: datetime | None = None
    started_before: datetime | None = None
    older_than: ListPosition | None = None

    def admits(self, head: SessionHead) -> bool:
        """The query's rule for one head, written once: the in-memory store applies it directly, the DynamoDB
        adapter through its index keys and this same check on what the index returns."""
        position = ListPosition.of(head)
        return (
            (self.agent_id is None or head.agent_id == self.agent_id)
            and (self.status is None or head.status == self.status)
            and (self.started_after is None or head.started_at > self.started_after)
            and (self.started_before is None or head.started_at < self.started_before)
            and (self.older_than is None or position < self.older_than)
        )


@dataclass(frozen=True)
class SessionListPage:
    """Heads newest first, and where the next page starts (None: there is nothing more)."""

    heads: tuple[SessionHead, ...]
    next_position: ListPosition | None


class ChainStore(Protocol):
    # --- sessions -----------------------------------------------------------------------------------------
    def create_session(
        self, session_id: str, owner: str, started_at: datetime, agent_id: str | None = None
    ) -> SessionHead:
        """Create the head of a new session; raise ``SessionExistsError`` when it exists already. ``agent_id``
        (from SESSION_START) is recorded for the session listing."""
        ...

    def get_head(self, session_id: str) -> SessionHead | None: ...

    def head_status(self, session_id: str) -> HeadStatus | None:
        """The head's owner and status without reading the chain: what decides an append before any batch item is
        read. May be slightly stale (an eventually consistent read): a status only moves forward, and SEALED, the
        one status it is read for, is final."""
        ...

    def advance_head(self, batch: StoredBatch) -> None:
        """Fold an accepted batch into the cached head (next sequence, last hash, activity, ENDED, seal due
        time). Idempotent and monotonic: never moves the head backwards."""
        ...

    # --- the chain ------------------------------------------------------------------------------------------
    def put_batch(self, batch: StoredBatch) -> None:
        """Store a batch iff no batch starts at ``batch.first_sequence``; else ``SequenceConflictError``.
        Writes nothing on any failure."""
        ...

    def tail(self, session_id: str) -> StoredBatch | None:
        """The last stored batch, read strongly consistently: the authoritative head of the chain."""
        ...

    def tip(self, session_id: str) -> ChainTip | None:
        """``tail()`` without the event bytes (strongly consistent): cheaper to read and decode on every append."""
        ...

    def get_batch(self, session_id: str, first_sequence: int) -> StoredBatch | None: ...

    def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
        """Stream the canonical event lines in sequence order, starting at ``from_sequence``, in memory
        bounded by one page of batches."""
        ...

    def used_event_ids(
        self, session_id: str, event_ids: Iterable[str], known_next_sequence: int | None = None
    ) -> set[str]:
        """Which of ``event_ids`` the session already holds (exact). A caller that has just read the chain's end
        passes its next sequence number: events stored after that point need not be considered (a batch written on
        top of them would lose the conditional write anyway), which spares the adapter a read."""
        ...

    # --- sealing ------------------------------------------------------------------------------------------
    def due_for_sealing(self, now: datetime, limit: int) -> list[str]:
        """Session ids whose seal is due (ended, or idle past the timeout) as of ``now``, found through the
        sparse due index, never by scanning the table."""
        ...

    def mark_sealing(self, session_id: str) -> None:
        """The seal batch is stored; archive pending (status SEALING)."""
        ...

    def mark_sealed(
        self,
        session_id: str,
        archive: ArchiveRef,
        sealed_at: datetime,
        evidence_class: str,
        partial_reasons: tuple[str, ...],
    ) -> None:
        """Archive written: status SEALED with the verifier's class, and the sealed chain's length and last hash kept
        on the head (its batch items are about to expire). The session stays in the due index until
        ``expire_archived``."""
        ...

    def expire_archived(self, session_id: str, expires_at: datetime | None, stop: Callable[[], bool]) -> bool:
        """A SEALED session's table copies are no longer the evidence (the archive is): give each of its items but
        the head an expiry time (DynamoDB TTL deletes them after it; None keeps them), then leave the due index.
        Only this, on an archived session, ever writes an expiry: heads never expire. ``stop`` is asked before each
        write; False when it said stop (the session stays due, and a later call resumes), True when done."""
        ...

    def refuse_seal(self, session_id: str, reason: str) -> None:
        """The stored chain does not verify: leave the due index and record why (an alarm is raised by the
        caller)."""
        ...

    def defer_seal(self, session_id: str, until: datetime) -> None:
        """Sealing failed or ran out of time in this run: the session stays in the due index but is due at ``until``
        instead, behind every session due before then, so it cannot hold the head of the queue. Nothing when it has
        left the index meanwhile."""
        ...

    # --- listing --------------------------------------------------------------------------------------------
    def list_sessions(self, query: SessionListQuery) -> SessionListPage:
        """At most ``query.limit`` heads the query admits, newest first, found through indexes (never a scan).
        Paging with ``next_position`` as the next query's ``older_than`` yields every admitted head exactly once.
        An adapter that bounds its reads per call may return fewer than ``limit`` heads with a next position."""
        ...
