"""An in-memory ``ChainStore``: the reference semantics of the interface, for tests and benchmarks.

Thread-safe (one lock around every operation), so race tests can run writers in threads against it. It follows the
same consistency model as the DynamoDB adapter: batches are the authority, the head is a cache folded forward by
``advance_head``, and the due index holds a session while its seal is pending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta

from agentops_server.store import (
    STATUS_ENDED,
    STATUS_OPEN,
    STATUS_SEALED,
    STATUS_SEALING,
    ArchiveRef,
    ChainTip,
    HeadStatus,
    ListPosition,
    SequenceConflictError,
    SessionExistsError,
    SessionHead,
    SessionListPage,
    SessionListQuery,
    StoredBatch,
    later_status,
)


class InMemoryChainStore:
    def __init__(self, seal_idle_seconds: int = 3600) -> None:
        self._idle = timedelta(seconds=seal_idle_seconds)
        self._lock = threading.RLock()
        self._heads: dict[str, SessionHead] = {}
        self._batches: dict[str, dict[int, StoredBatch]] = {}
        self._event_ids: dict[str, set[str]] = {}
        self._due: dict[str, datetime] = {}
        self.expires_at: dict[str, datetime] = {}  # the expiry given to an archived session's table copies

    # --- sessions -----------------------------------------------------------------------------------------
    def create_session(
        self, session_id: str, owner: str, started_at: datetime, agent_id: str | None = None
    ) -> SessionHead:
        with self._lock:
            existing = self._heads.get(session_id)
            if existing is not None:
                raise SessionExistsError(existing.owner)
            head = SessionHead(
                session_id=session_id,
                owner=owner,
                status=STATUS_OPEN,
                next_sequence_number=0,
                last_event_hash=None,
                started_at=started_at,
                last_activity_at=started_at,
                agent_id=agent_id,
            )
            self._heads[session_id] = head
            # Indexed from creation: a crash between this and the first batch must not hide the session from the
            # sealer (it finds the truth with tail()).
            self._due[session_id] = started_at + self._idle
            return head

    def get_head(self, session_id: str) -> SessionHead | None:
        with self._lock:
            return self._heads.get(session_id)

    def head_status(self, session_id: str) -> HeadStatus | None:
        with self._lock:
            head = self._heads.get(session_id)
            return None if head is None else HeadStatus(head.owner, head.status)

    def advance_head(self, batch: StoredBatch) -> None:
        with self._lock:
            head = self._heads.get(batch.session_id)
            if head is None:
                return
            updated = head
            if batch.last_sequence + 1 > head.next_sequence_number:
                updated = replace(
                    updated,
                    next_sequence_number=batch.last_sequence + 1,
                    last_event_hash=batch.last_event_hash,
                    last_activity_at=max(head.last_activity_at, batch.accepted_at),
                )
            if batch.ends_session:
                updated = replace(
                    updated,
                    status=later_status(updated.status, STATUS_ENDED),
                    ended_at=updated.ended_at or batch.accepted_at,
                )
            if batch.is_seal:
                updated = replace(updated, status=later_status(updated.status, STATUS_SEALING))
            self._heads[batch.session_id] = updated
            self._reindex(updated)

    def _reindex(self, head: SessionHead) -> None:
        if head.seal_refused_reason is not None:
            self._due.pop(head.session_id, None)
        elif head.status == STATUS_OPEN:
            self._due[head.session_id] = head.last_activity_at + self._idle
        elif head.status == STATUS_ENDED:
            self._due[head.session_id] = head.ended_at or head.last_activity_at
        # SEALING and SEALED keep their due time: the sealer comes back until the archive is written (mark_sealed)
        # and the table copies are given their expiry (expire_archived).

    # --- the chain ------------------------------------------------------------------------------------------
    def put_batch(self, batch: StoredBatch) -> None:
        with self._lock:
            batches = self._batches.setdefault(batch.session_id, {})
            if batch.first_sequence in batches:
                raise SequenceConflictError(f"a batch already starts at {batch.first_sequence}")
            batches[batch.first_sequence] = batch
            self._event_ids.setdefault(batch.session_id, set()).update(batch.event_ids)

    def tail(self, session_id: str) -> StoredBatch | None:
        with self._lock:
            batches = self._batches.get(session_id)
            if not batches:
                return None
            return batches[max(batches)]

    def tip(self, session_id: str) -> ChainTip | None:
        batch = self.tail(session_id)
        return None if batch is None else ChainTip.of(batch)

    def get_batch(self, session_id: str, first_sequence: int) -> StoredBatch | None:
        with self._lock:
            return self._batches.get(session_id, {}).get(first_sequence)

    def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
        with self._lock:
            ordered = sorted(self._batches.get(session_id, {}).values(), key=lambda batch: batch.first_sequence)
        for batch in ordered:
            if batch.last_sequence < from_sequence:
                continue
            skip = max(0, from_sequence - batch.first_sequence)
            yield from batch.lines[skip:]

    def used_event_ids(
        self, session_id: str, event_ids: Iterable[str], known_next_sequence: int | None = None
    ) -> set[str]:
        with self._lock:
            used = self._event_ids.get(session_id, set())
            return {event_id for event_id in event_ids if event_id in used}

    # --- sealing ------------------------------------------------------------------------------------------
    def due_for_sealing(self, now: datetime, limit: int) -> list[str]:
        with self._lock:
            due = sorted((at, session_id) for session_id, at in self._due.items() if at <= now)
        return [session_id for _, session_id in due[:limit]]

    def mark_sealing(self, session_id: str) -> None:
        with self._lock:
            head = self._heads[session_id]
            self._heads[session_id] = replace(head, status=later_status(head.status, STATUS_SEALING))

    def mark_sealed(
        self,
        session_id: str,
        archive: ArchiveRef,
        sealed_at: datetime,
        evidence_class: str,
        partial_reasons: tuple[str, ...],
    ) -> None:
        with self._lock:
            head = self._heads[session_id]
            self._heads[session_id] = replace(
                head,
                status=STATUS_SEALED,
                archive=archive,
                sealed_at=head.sealed_at or sealed_at,
                evidence_class=evidence_class,
                partial_reasons=tuple(partial_reasons),
            )

    def expire_archived(self, session_id: str, expires_at: datetime | None, stop: Callable[[], bool]) -> bool:
        with self._lock:
            if expires_at is not None:
                if stop():
                    return False
                # Nothing here deletes (a test plays the TTL sweeper); a second call keeps the first expiry.
                self.expires_at.setdefault(session_id, expires_at)
            self._due.pop(session_id, None)
            return True

    def refuse_seal(self, session_id: str, reason: str) -> None:
        with self._lock:
            head = self._heads[session_id]
            self._heads[session_id] = replace(head, seal_refused_reason=reason)
            self._due.pop(session_id, None)

    def defer_seal(self, session_id: str, until: datetime) -> None:
        with self._lock:
            if session_id in self._due:
                self._due[session_id] = until

    # --- listing --------------------------------------------------------------------------------------------
    def list_sessions(self, query: SessionListQuery) -> SessionListPage:
        with self._lock:
            admitted = sorted((head for head in self._heads.values() if query.admits(head)), key=ListPosition.of)
        page = tuple(reversed(admitted[-query.limit :]))
        more = len(admitted) > query.limit
        return SessionListPage(page, ListPosition.of(page[-1]) if more else None)
