"""The evidence log's state in memory: the reference semantics of ``evidence_log.LogStateStore``, for tests and
benchmarks. Thread-safe (one lock), so two sealers can race against it; the index of pending sessions is exact
(DynamoDB's may lag, which the publisher tolerates)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from agentops_server.evidence_log import LogState, LogStateConflictError, PendingSession


class InMemoryLogState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: LogState | None = None
        self._pending: dict[str, str] = {}  # session id -> queued_at
        self._leaf_indexes: dict[str, int] = {}

    def log_state(self) -> LogState | None:
        with self._lock:
            return self._state

    def advance_log(self, previous: LogState | None, new: LogState, logged: Sequence[str]) -> None:
        with self._lock:
            already_logged = [session_id for session_id in logged if session_id in self._leaf_indexes]
            if self._state != previous or already_logged:
                raise LogStateConflictError("the log state write lost a race", already_logged)
            first_index = previous.size if previous is not None else 0
            for offset, session_id in enumerate(logged):
                self._leaf_indexes[session_id] = first_index + offset
                self._pending.pop(session_id, None)
            self._state = new

    def enqueue_for_log(self, session_id: str, queued_at: str) -> None:
        with self._lock:
            if session_id not in self._leaf_indexes:
                self._pending.setdefault(session_id, queued_at)

    def pending_for_log(self, limit: int) -> list[PendingSession]:
        with self._lock:
            ordered = sorted((queued_at, session_id) for session_id, queued_at in self._pending.items())
        return [PendingSession(session_id, queued_at) for queued_at, session_id in ordered[:limit]]

    def requeue_for_log(self, session_id: str, queued_at: str) -> None:
        with self._lock:
            if session_id in self._pending:
                self._pending[session_id] = queued_at

    def leaf_index(self, session_id: str) -> int | None:
        with self._lock:
            return self._leaf_indexes.get(session_id)
