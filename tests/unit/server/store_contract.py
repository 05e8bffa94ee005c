"""Behaviour every ``ChainStore`` must show, written once and run against each implementation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agentops_server.store import (
    ArchiveRef,
    ChainStore,
    ListPosition,
    SequenceConflictError,
    SessionExistsError,
    SessionListQuery,
    StoredBatch,
)
from agentops_verify import canonicalize, chain_event

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
IDLE_SECONDS = 3600


def make_batch(
    session_id: str,
    first_sequence: int,
    count: int,
    prev_hash: str | None,
    *,
    owner: str = "arn:aws:iam::111122223333:user/agent",
    accepted_at: datetime = T0,
    end: bool = False,
    digest: str = "d" * 64,
) -> StoredBatch:
    events = []
    for offset in range(count):
        sequence = first_sequence + offset
        payload: dict[str, Any]
        if sequence == 0:
            event_type, payload = "SESSION_START", {"agent_id": "a"}
        elif end and offset == count - 1:
            event_type, payload = "SESSION_END", {"status": "success"}
        else:
            event_type, payload = "TOOL_CALL", {"tool_name": "search", "args": {"q": sequence}}
        event = chain_event(
            event_id=str(uuid.uuid4()),
            session_id=session_id,
            sequence_number=sequence,
            timestamp_wall="2026-01-01T12:00:00Z",
            event_type=event_type,
            payload=payload,
            prev_event_hash=prev_hash,
            chain_authority="server",
        )
        prev_hash = event["event_hash"]
        events.append(event)
    return StoredBatch(
        session_id=session_id,
        first_sequence=first_sequence,
        lines=tuple(canonicalize(event) for event in events),
        event_ids=tuple(event["event_id"] for event in events),
        event_hashes=tuple(event["event_hash"] for event in events),
        owner=owner,
        request_digest=digest,
        accepted_at=accepted_at,
        ends_session=end,
    )


def new_session(
    store: ChainStore,
    owner: str = "arn:aws:iam::111122223333:user/agent",
    *,
    started_at: datetime = T0,
    agent_id: str | None = None,
) -> str:
    session_id = str(uuid.uuid4())
    store.create_session(session_id, owner, started_at, agent_id=agent_id)
    return session_id


def end_session(store: ChainStore, session_id: str) -> None:
    batch = make_batch(session_id, 0, 2, None, end=True)
    store.put_batch(batch)
    store.advance_head(batch)


def list_all(store: ChainStore, query: SessionListQuery) -> tuple[list[str], list[int]]:
    """Every session id the query admits, by following next positions; and the size of each page."""
    found: list[str] = []
    sizes: list[int] = []
    while True:
        page = store.list_sessions(query)
        assert len(page.heads) <= query.limit
        found.extend(head.session_id for head in page.heads)
        sizes.append(len(page.heads))
        if page.next_position is None:
            return found, sizes
        assert len(sizes) < 100, "the listing does not advance"
        query = replace(query, older_than=page.next_position)


class ChainStoreContract:
    """Subclass with a ``store`` fixture returning a fresh store built with ``IDLE_SECONDS``."""

    def test_second_create_reports_the_existing_owner(self, store: ChainStore) -> None:
        session_id = new_session(store, owner="alice")
        with pytest.raises(SessionExistsError) as raised:
            store.create_session(session_id, "mallory", T0)
        assert raised.value.owner == "alice"
        head = store.get_head(session_id)
        assert head is not None
        assert head.owner == "alice"

    def test_batch_at_an_occupied_sequence_is_refused_and_changes_nothing(self, store: ChainStore) -> None:
        session_id = new_session(store)
        first = make_batch(session_id, 0, 3, None)
        store.put_batch(first)
        with pytest.raises(SequenceConflictError):
            store.put_batch(make_batch(session_id, 0, 5, None, digest="e" * 64))
        assert store.tail(session_id) == first
        assert list(store.iter_lines(session_id)) == list(first.lines)

    def test_tail_is_the_last_batch_and_lines_stream_in_order(self, store: ChainStore) -> None:
        session_id = new_session(store)
        first = make_batch(session_id, 0, 3, None)
        second = make_batch(session_id, 3, 2, first.last_event_hash)
        store.put_batch(first)
        store.put_batch(second)
        assert store.tail(session_id) == second
        assert store.get_batch(session_id, 0) == first
        assert store.get_batch(session_id, 1) is None
        assert list(store.iter_lines(session_id)) == [*first.lines, *second.lines]
        assert list(store.iter_lines(session_id, from_sequence=2)) == [first.lines[2], *second.lines]
        assert list(store.iter_lines(session_id, from_sequence=5)) == []

    def test_used_event_ids_are_exact(self, store: ChainStore) -> None:
        session_id = new_session(store)
        batch = make_batch(session_id, 0, 4, None)
        store.put_batch(batch)
        fresh = str(uuid.uuid4())
        assert store.used_event_ids(session_id, [batch.event_ids[1], fresh, batch.event_ids[3]]) == {
            batch.event_ids[1],
            batch.event_ids[3],
        }
        other = new_session(store)
        assert store.used_event_ids(other, batch.event_ids) == set()

    def test_head_folds_forward_and_never_back(self, store: ChainStore) -> None:
        session_id = new_session(store)
        first = make_batch(session_id, 0, 3, None)
        second = make_batch(session_id, 3, 2, first.last_event_hash, accepted_at=T0 + timedelta(seconds=5))
        store.put_batch(first)
        store.put_batch(second)
        store.advance_head(second)
        store.advance_head(first)  # a late, older fold must not move the head back
        head = store.get_head(session_id)
        assert head is not None
        assert head.next_sequence_number == 5
        assert head.last_event_hash == second.last_event_hash
        assert head.last_activity_at == T0 + timedelta(seconds=5)
        assert head.status == "OPEN"

    def test_open_session_is_due_after_the_idle_timeout(self, store: ChainStore) -> None:
        session_id = new_session(store)
        batch = make_batch(session_id, 0, 2, None, accepted_at=T0 + timedelta(seconds=10))
        store.put_batch(batch)
        store.advance_head(batch)
        due_at = T0 + timedelta(seconds=10 + IDLE_SECONDS)
        assert session_id not in store.due_for_sealing(due_at - timedelta(seconds=1), 100)
        assert session_id in store.due_for_sealing(due_at, 100)

    def test_ended_session_is_due_at_once_until_sealed(self, store: ChainStore) -> None:
        session_id = new_session(store)
        batch = make_batch(session_id, 0, 3, None, end=True, accepted_at=T0 + timedelta(seconds=1))
        store.put_batch(batch)
        store.advance_head(batch)
        head = store.get_head(session_id)
        assert head is not None
        assert head.status == "ENDED"
        assert head.ended_at == T0 + timedelta(seconds=1)
        assert store.due_for_sealing(T0 + timedelta(seconds=1), 100) == [session_id]
        store.mark_sealing(session_id)
        assert store.due_for_sealing(T0 + timedelta(seconds=2), 100) == [session_id]
        archive = ArchiveRef("bucket", f"sessions/{session_id}.jsonl", "v1", "f" * 64)
        store.mark_sealed(session_id, archive, T0 + timedelta(seconds=3), "AUTHORITATIVE_EVIDENCE", ())
        head = store.get_head(session_id)
        assert head is not None
        assert (head.status, head.archive, head.evidence_class) == ("SEALED", archive, "AUTHORITATIVE_EVIDENCE")
        assert head.sealed_at == T0 + timedelta(seconds=3)
        assert (head.next_sequence_number, head.last_event_hash) == (3, batch.last_event_hash)
        # Still due: its table copies have not been given their expiry yet.
        assert store.due_for_sealing(T0 + timedelta(days=1), 100) == [session_id]
        assert store.expire_archived(session_id, T0 + timedelta(days=30), stop=lambda: False)
        assert store.due_for_sealing(T0 + timedelta(days=30), 100) == []

    def test_expiry_stopped_early_leaves_the_session_due_and_resumes(self, store: ChainStore) -> None:
        session_id = new_session(store)
        batch = make_batch(session_id, 0, 3, None, end=True)
        store.put_batch(batch)
        store.advance_head(batch)
        archive = ArchiveRef("bucket", f"sessions/{session_id}.jsonl", "v1", "f" * 64)
        store.mark_sealed(session_id, archive, T0, "AUTHORITATIVE_EVIDENCE", ())
        assert not store.expire_archived(session_id, T0 + timedelta(days=30), stop=lambda: True)
        assert store.due_for_sealing(T0 + timedelta(seconds=1), 100) == [session_id]
        assert store.expire_archived(session_id, T0 + timedelta(days=30), stop=lambda: False)
        assert store.due_for_sealing(T0 + timedelta(seconds=1), 100) == []

    def test_head_status_is_the_owner_and_status_of_the_head(self, store: ChainStore) -> None:
        session_id = new_session(store, owner="alice")
        status = store.head_status(session_id)
        assert status is not None
        assert (status.owner, status.status) == ("alice", "OPEN")
        assert store.head_status(str(uuid.uuid4())) is None

    def test_a_deferred_session_moves_behind_the_others(self, store: ChainStore) -> None:
        sessions = []
        for offset in range(3):
            session_id = new_session(store)
            batch = make_batch(session_id, 0, 2, None, end=True, accepted_at=T0 + timedelta(seconds=offset))
            store.put_batch(batch)
            store.advance_head(batch)
            sessions.append(session_id)
        store.defer_seal(sessions[0], T0 + timedelta(minutes=5))
        assert store.due_for_sealing(T0 + timedelta(minutes=1), 10) == sessions[1:]
        assert store.due_for_sealing(T0 + timedelta(minutes=5), 10) == [*sessions[1:], sessions[0]]

    def test_refused_seal_leaves_the_due_index_with_its_reason(self, store: ChainStore) -> None:
        session_id = new_session(store)
        batch = make_batch(session_id, 0, 2, None, end=True)
        store.put_batch(batch)
        store.advance_head(batch)
        store.refuse_seal(session_id, "CHAIN_BROKEN at 1")
        assert store.due_for_sealing(T0 + timedelta(days=1), 100) == []
        head = store.get_head(session_id)
        assert head is not None
        assert head.seal_refused_reason == "CHAIN_BROKEN at 1"

    def test_due_sessions_come_oldest_first_up_to_the_limit(self, store: ChainStore) -> None:
        sessions = []
        for offset in range(3):
            session_id = new_session(store)
            batch = make_batch(session_id, 0, 2, None, end=True, accepted_at=T0 + timedelta(seconds=offset))
            store.put_batch(batch)
            store.advance_head(batch)
            sessions.append(session_id)
        assert store.due_for_sealing(T0 + timedelta(seconds=10), 2) == sessions[:2]

    # --- listing (API.md GET /v1/sessions) ------------------------------------------------------------------------
    def test_listing_is_newest_first_with_the_recorded_agent(self, store: ChainStore) -> None:
        sessions = [new_session(store, started_at=T0 + timedelta(seconds=n), agent_id=f"agent-{n}") for n in range(4)]
        page = store.list_sessions(SessionListQuery(limit=10))
        assert [head.session_id for head in page.heads] == sessions[::-1]
        assert [head.agent_id for head in page.heads] == ["agent-3", "agent-2", "agent-1", "agent-0"]
        assert page.next_position is None

    def test_listing_pages_give_every_session_once_in_order(self, store: ChainStore) -> None:
        started = {new_session(store, started_at=T0 + timedelta(seconds=n % 5)): n % 5 for n in range(11)}
        expected = sorted(started, key=lambda session_id: (started[session_id], session_id), reverse=True)
        found, sizes = list_all(store, SessionListQuery(limit=4))
        assert found == expected  # same start times are ordered by session id, so no page boundary splits them
        assert sizes == [4, 4, 3]

    def test_listing_by_agent_holds_only_that_agents_sessions(self, store: ChainStore) -> None:
        mine = [new_session(store, started_at=T0 + timedelta(seconds=n), agent_id="refund-agent") for n in range(3)]
        for n in range(3):
            new_session(store, started_at=T0 + timedelta(seconds=n), agent_id="refund-agent-2")
        new_session(store, started_at=T0, agent_id=None)
        found, _ = list_all(store, SessionListQuery(limit=2, agent_id="refund-agent"))
        assert found == mine[::-1]
        assert list_all(store, SessionListQuery(limit=2, agent_id="nobody"))[0] == []

    def test_listing_by_status_follows_the_head(self, store: ChainStore) -> None:
        sessions = [new_session(store, started_at=T0 + timedelta(seconds=n), agent_id="a") for n in range(6)]
        for session_id in sessions[1::2]:
            end_session(store, session_id)
        store.mark_sealing(sessions[5])
        assert list_all(store, SessionListQuery(limit=2, status="ENDED"))[0] == [sessions[3], sessions[1]]
        assert list_all(store, SessionListQuery(limit=2, status="SEALING"))[0] == [sessions[5]]
        assert list_all(store, SessionListQuery(limit=2, status="OPEN", agent_id="a"))[0] == sessions[4::-2]

    def test_listing_time_bounds_are_exclusive(self, store: ChainStore) -> None:
        sessions = [new_session(store, started_at=T0 + timedelta(seconds=n)) for n in range(5)]
        query = SessionListQuery(
            limit=10, started_after=T0 + timedelta(seconds=1), started_before=T0 + timedelta(seconds=4)
        )
        assert list_all(store, query)[0] == [sessions[3], sessions[2]]
        just_after = SessionListQuery(limit=10, started_after=T0 + timedelta(seconds=3, microseconds=-1))
        assert list_all(store, just_after)[0] == [sessions[4], sessions[3]]

    def test_listing_resumes_strictly_after_a_position(self, store: ChainStore) -> None:
        sessions = [new_session(store, started_at=T0 + timedelta(seconds=n)) for n in range(3)]
        middle = store.get_head(sessions[1])
        assert middle is not None
        page = store.list_sessions(SessionListQuery(limit=10, older_than=ListPosition.of(middle)))
        assert [head.session_id for head in page.heads] == [sessions[0]]

    def test_listing_an_empty_range_is_empty(self, store: ChainStore) -> None:
        new_session(store, started_at=T0)
        empty = SessionListQuery(limit=5, started_after=T0 + timedelta(days=1))
        assert store.list_sessions(empty).heads == ()
        assert store.list_sessions(empty).next_position is None
