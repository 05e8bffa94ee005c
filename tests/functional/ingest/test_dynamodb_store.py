"""The DynamoDB adapter over moto: the shared ChainStore contract, plus what only this layout can get wrong."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from agentops_server.dynamodb import DynamoDBChainStore
from agentops_server.dynamodb_batches import INLINE_LIMIT
from agentops_server.dynamodb_event_ids import SEGMENT_SIZE
from agentops_server.store import StoredBatch

from tests.unit.server.store_contract import IDLE_SECONDS, T0, ChainStoreContract, make_batch, new_session


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
