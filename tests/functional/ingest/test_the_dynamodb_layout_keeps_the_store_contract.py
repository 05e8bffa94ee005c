"""The DynamoDB adapter over moto: the shared ChainStore contract, plus what only this layout can get wrong."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.dynamodb_batches import INLINE_LIMIT
from agentops_server.aws.dynamodb_event_ids import SEGMENT_SIZE
from agentops_server.aws.dynamodb_listing import LIST_SHARDS, _list_shard
from agentops_server.store import ArchiveRef, SessionListQuery, StoredBatch

from tests.unit.server.store_contract import (
    IDLE_SECONDS,
    T0,
    ChainStoreContract,
    end_session,
    list_all,
    make_batch,
    new_session,
)


@pytest.fixture
def store(dynamodb: Any, table_name: str) -> DynamoDBChainStore:
    return DynamoDBChainStore(dynamodb, table_name, seal_idle_seconds=IDLE_SECONDS)


class TestDynamoDBChainStore(ChainStoreContract):
    pass


def _append(store: DynamoDBChainStore, session_id: str, count: int, prev: StoredBatch | None) -> StoredBatch:
    first = 0 if prev is None else prev.last_sequence + 1
    batch = make_batch(session_id, first, count, None if prev is None else prev.last_event_hash)
    store.put_batch(batch)
    store.advance_head(batch)
    return batch


def test_event_ids_are_found_across_index_segments(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    batches = []
    previous = None
    for _ in range(SEGMENT_SIZE * 2 // 50 + 2):
        previous = _append(store, session_id, 50, previous)
        batches.append(previous)
    every_id = [event_id for batch in batches for event_id in batch.event_ids]
    probe = [every_id[0], every_id[SEGMENT_SIZE - 1], every_id[SEGMENT_SIZE], every_id[-1], str(uuid.uuid4())]
    assert store.used_event_ids(session_id, probe) == set(probe[:4])
    assert store.used_event_ids(session_id, probe, known_next_sequence=len(every_id)) == set(probe[:4])


def test_fingerprint_collision_is_not_a_duplicate(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    batch = _append(store, session_id, 3, None)
    stored_id = batch.event_ids[1]
    # Same first 8 hex digits (the stored fingerprint), different event id.
    lookalike = stored_id[:8] + "-0000-4000-8000-000000000000"
    assert store.used_event_ids(session_id, [lookalike]) == set()
    assert store.used_event_ids(session_id, [lookalike, stored_id]) == {stored_id}


def test_index_left_behind_by_a_crash_is_still_exact_and_repaired(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    first = _append(store, session_id, 5, None)
    # Crash: the second batch is stored but neither indexed nor folded into the head.
    second = make_batch(session_id, 5, 5, first.last_event_hash)
    store.put_batch(second)
    fresh = DynamoDBChainStore(store.table.client, store.table.name, IDLE_SECONDS)  # a new container, no cached index
    assert fresh.used_event_ids(session_id, [second.event_ids[2]]) == {second.event_ids[2]}
    third = make_batch(session_id, 10, 5, second.last_event_hash)
    fresh.put_batch(third)
    fresh.advance_head(third)  # repairs the index for the second batch too
    assert fresh.used_event_ids(session_id, [second.event_ids[2]], known_next_sequence=15) == {second.event_ids[2]}


def test_batch_larger_than_one_item_is_stored_in_chunks(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    batch = make_batch(session_id, 0, 1, None)
    # Incompressible lines, well over one DynamoDB item once compressed.
    noise = [os.urandom(120_000).hex().encode() for _ in range(4)]
    big = StoredBatch(
        session_id=session_id,
        first_sequence=1,
        lines=tuple(noise),
        event_ids=tuple(str(uuid.uuid4()) for _ in noise),
        event_hashes=tuple("e" * 64 for _ in noise),
        owner=batch.owner,
        request_digest="f" * 64,
        accepted_at=T0,
    )
    assert len(b"".join(noise)) > 2 * INLINE_LIMIT
    store.put_batch(batch)
    store.put_batch(_with_parsable_lines(big))
    stored = store.get_batch(session_id, 1)
    assert stored is not None
    assert stored.lines == _with_parsable_lines(big).lines
    assert list(store.iter_lines(session_id)) == [*batch.lines, *stored.lines]


def _with_parsable_lines(batch: StoredBatch) -> StoredBatch:
    lines = tuple(
        b'{"event_hash":"' + b"e" * 64 + b'","event_id":"' + event_id.encode() + b'","noise":"' + line + b'"}'
        for line, event_id in zip(batch.lines, batch.event_ids, strict=True)
    )
    return StoredBatch(**{**batch.__dict__, "lines": lines})


def test_active_session_is_not_sealed_before_its_idle_time(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    first = make_batch(session_id, 0, 2, None, accepted_at=T0 + timedelta(seconds=IDLE_SECONDS - 10))
    store.put_batch(first)
    store.advance_head(first)
    # The index still holds the creation-time lower bound; the adapter checks the chain's tip before answering.
    assert store.due_for_sealing(T0 + timedelta(seconds=IDLE_SECONDS + 1), 10) == []
    assert store.due_for_sealing(T0 + timedelta(seconds=2 * IDLE_SECONDS - 10), 10) == [session_id]


def test_warm_container_reads_only_the_open_index_segment(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    previous = None
    for _ in range(SEGMENT_SIZE * 3 // 50 + 1):  # more than three full segments
        previous = _append(store, session_id, 50, previous)
    assert previous is not None
    stored_ids = [_event_id(line) for line in store.iter_lines(session_id)]
    read_from: list[str] = []
    original = store.table.query_all

    def recording(**arguments: Any) -> Any:
        values = arguments.get("ExpressionAttributeValues", {})
        if ":from" in values and values[":from"]["S"].startswith("I#"):
            read_from.append(values[":from"]["S"])
        return original(**arguments)

    fresh_id = str(uuid.uuid4())
    probe = [stored_ids[5], stored_ids[SEGMENT_SIZE + 7], stored_ids[-1], fresh_id]
    with patch.object(store.table, "query_all", recording):
        assert store.used_event_ids(session_id, probe) == set(probe[:3])
    assert read_from == [f"I#{3:08d}"]  # segments 0-2 are full and known: not read again

    cold = DynamoDBChainStore(store.table.client, store.table.name, IDLE_SECONDS)
    assert cold.used_event_ids(session_id, probe) == set(probe[:3])


def _event_id(line: bytes) -> str:
    event_id: str = json.loads(line)["event_id"]
    return event_id


def _head_item(store: DynamoDBChainStore, session_id: str) -> dict[str, Any]:
    item: dict[str, Any] = store.table.client.get_item(
        TableName=store.table.name, Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "HEAD"}}, ConsistentRead=True
    )["Item"]
    return item


def test_plain_appends_do_not_rewrite_the_head_or_its_due_key(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    created = _head_item(store, session_id)
    previous = None
    for _ in range(3):
        previous = _append(store, session_id, 10, previous)
    assert _head_item(store, session_id) == created  # no write unit, no SealDue index write per batch
    head = store.get_head(session_id)
    assert head is not None
    assert previous is not None
    assert (head.next_sequence_number, head.last_event_hash) == (30, previous.last_event_hash)


def test_an_active_session_gets_its_real_due_time_once(store: DynamoDBChainStore) -> None:
    session_id = new_session(store)
    late = make_batch(session_id, 0, 2, None, accepted_at=T0 + timedelta(seconds=IDLE_SECONDS - 10))
    store.put_batch(late)
    store.advance_head(late)
    check_at = T0 + timedelta(seconds=IDLE_SECONDS + 1)
    assert store.due_for_sealing(check_at, 10) == []
    refreshed = _head_item(store, session_id)
    assert refreshed["due_at"]["S"] == "2026-01-01T13:59:50.000000Z"
    assert store.due_for_sealing(check_at, 10) == []  # no longer a candidate: nothing read or written for it
    assert _head_item(store, session_id) == refreshed


# --- listing ------------------------------------------------------------------------------------------------------
LISTING_KEYS = ("list_pk", "list_sk", "agent_pk", "agent_id")


def test_listing_keys_are_written_once_and_never_move(store: DynamoDBChainStore) -> None:
    """KEYS_ONLY indexes whose keys never change: a session costs one write per listing index, at its creation."""
    session_id = new_session(store, agent_id="refund-agent")
    created = {name: _head_item(store, session_id)[name] for name in LISTING_KEYS}
    end_session(store, session_id)
    store.mark_sealing(session_id)
    archive = ArchiveRef("bucket", f"sessions/{session_id}.jsonl", "v1", "f" * 64)
    store.mark_sealed(session_id, archive, T0 + timedelta(seconds=5), "AUTHORITATIVE_EVIDENCE", ())
    assert {name: _head_item(store, session_id)[name] for name in LISTING_KEYS} == created


def test_listing_reads_only_the_listing_indexes_and_the_heads(store: DynamoDBChainStore) -> None:
    for n in range(6):
        new_session(store, started_at=T0 + timedelta(seconds=n), agent_id="a")
    calls: list[tuple[str, str | None]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params.get("IndexName")))

    store.table.client.meta.events.register("provide-client-params.dynamodb.*", record)
    list_all(store, SessionListQuery(limit=2))
    list_all(store, SessionListQuery(limit=2, agent_id="a", status="OPEN"))
    assert calls
    assert set(calls) <= {("Query", "SessionsByStart"), ("Query", "SessionsByAgent"), ("BatchGetItem", None)}


def test_a_sparse_status_is_listed_completely_within_the_read_budget(store: DynamoDBChainStore) -> None:
    """Each request reads at most LIST_SHARD_PAGES pages per shard; a rare status then comes in short pages, each
    ending where the reading stopped, and paging on finds every session exactly once."""
    sessions: list[str] = []
    while len(sessions) < 12:  # all in one shard, so the pages below do not depend on how ids hash
        session_id = str(uuid.uuid4())
        if _list_shard(session_id) == 0:
            store.create_session(session_id, "owner", T0 + timedelta(seconds=len(sessions)))
            sessions.append(session_id)
    end_session(store, sessions[0])
    end_session(store, sessions[5])
    queries: list[int] = []
    store.table.client.meta.events.register("provide-client-params.dynamodb.Query", lambda **_: queries.append(1))
    with (
        patch("agentops_server.aws.dynamodb_listing.LIST_FILTERED_PAGE", 2),
        patch("agentops_server.aws.dynamodb_listing.LIST_SHARD_PAGES", 1),
    ):
        found, sizes = list_all(store, SessionListQuery(limit=5, status="ENDED"))
    assert found == [sessions[5], sessions[0]]
    # Two new index entries per request (and the previous page's last again): 11-10, 9-8, 7-6, 5-4, 3-2, 1-0.
    assert sizes == [0, 0, 1, 0, 0, 1]
    assert len(queries) == LIST_SHARDS * len(sizes)


def test_an_agent_id_too_long_for_a_key_and_holding_the_separator_is_listed(store: DynamoDBChainStore) -> None:
    agent_id = "team#" + "x" * 5000
    session_id = new_session(store, agent_id=agent_id)
    new_session(store, agent_id="team")
    page = store.list_sessions(SessionListQuery(limit=5, agent_id=agent_id))
    assert [(head.session_id, head.agent_id) for head in page.heads] == [(session_id, agent_id)]


def test_forged_listing_entries_neither_break_the_listing_nor_repeat_a_session(store: DynamoDBChainStore) -> None:
    """The listing indexes hold any item carrying their keys, and the ingest role writes any item of any session's
    partition. Non-head items with an unreadable ``list_sk`` (newest of all, so one ends a page) made every
    ``GET /v1/sessions`` answer 500; ones naming a real session's partition listed that session twice."""
    sessions = [new_session(store, started_at=T0 + timedelta(seconds=n), agent_id="a") for n in range(6)]
    for shard in range(LIST_SHARDS):
        for number, session_id in enumerate(sessions):
            for forged_sk in ("zzzz-not-a-time", f"9999-12-31T23:59:59.999999Z#{session_id}"):
                store.table.call(
                    "put_item",
                    Item={
                        "pk": {"S": f"S#{session_id}"},
                        "sk": {"S": f"X#{shard}#{number}#{forged_sk[:4]}"},
                        "list_pk": {"S": f"LIST#{shard}"},
                        "list_sk": {"S": forged_sk},
                    },
                )

    for limit in (1, 2, 5):
        found, _ = list_all(store, SessionListQuery(limit=limit))
        assert found == sessions[::-1]
