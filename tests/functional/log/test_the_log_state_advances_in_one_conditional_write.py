"""The log state over DynamoDB (moto, table from template.yaml) keeps the semantics of the in-memory reference:
one conditional transaction advances the state and gives each session its leaf index, or writes nothing."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import boto3
import pytest
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.evidence_log import LogIntegrityError, LogState, LogStateConflictError
from agentops_server.evidence_log_memory import InMemoryLogState

from infra.resources import create_table
from tests.functional.conftest import REGION


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table(dynamodb: Any) -> str:
    return create_table(dynamodb)


@pytest.fixture(params=["dynamodb", "memory"])
def log_state(request: pytest.FixtureRequest, dynamodb: Any, table: str) -> Any:
    return DynamoDBLogState(dynamodb, table) if request.param == "dynamodb" else InMemoryLogState()


def sessions(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


def state(size: int, batch_start: int, batch: list[str]) -> LogState:
    return LogState(size, hashlib.sha256(str(size).encode()).digest(), batch_start, tuple(batch))


def test_advance_records_the_state_and_each_leaf_index_and_clears_the_markers(log_state: Any) -> None:
    first = sessions(3)
    for position, session_id in enumerate(first):
        log_state.enqueue_for_log(session_id, f"2026-01-01T00:00:0{position}.000000Z")
    assert [entry.session_id for entry in log_state.pending_for_log(10)] == first

    log_state.advance_log(None, state(2, 0, first[:2]), first[:2])

    assert log_state.log_state() == state(2, 0, first[:2])
    assert [log_state.leaf_index(session_id) for session_id in first] == [0, 1, None]
    assert [entry.session_id for entry in log_state.pending_for_log(10)] == first[2:]


def test_a_lost_race_writes_nothing_and_names_the_sessions_already_logged(log_state: Any) -> None:
    winner, loser = sessions(2), sessions(1)
    log_state.advance_log(None, state(2, 0, winner), winner)

    with pytest.raises(LogStateConflictError):
        log_state.advance_log(None, state(1, 0, loser), loser)  # read before the winner wrote
    with pytest.raises(LogStateConflictError) as conflict:
        log_state.advance_log(log_state.log_state(), state(4, 2, [*loser, winner[1]]), [*loser, winner[1]])

    assert conflict.value.already_logged == {winner[1]}
    assert log_state.log_state() == state(2, 0, winner)
    assert log_state.leaf_index(loser[0]) is None


def test_a_logged_session_is_never_marked_again(log_state: Any) -> None:
    (session_id,) = sessions(1)
    log_state.enqueue_for_log(session_id, "2026-01-01T00:00:00.000000Z")
    log_state.advance_log(None, state(1, 0, [session_id]), [session_id])

    log_state.enqueue_for_log(session_id, "2026-01-01T00:10:00.000000Z")  # a sealer that archived it again

    assert log_state.pending_for_log(10) == []
    assert log_state.leaf_index(session_id) == 0


def test_a_second_mark_keeps_the_first_place_in_the_queue(log_state: Any) -> None:
    early, late = sessions(2)
    log_state.enqueue_for_log(early, "2026-01-01T00:00:01.000000Z")
    log_state.enqueue_for_log(late, "2026-01-01T00:00:02.000000Z")
    log_state.enqueue_for_log(early, "2026-01-01T00:00:03.000000Z")

    assert [entry.session_id for entry in log_state.pending_for_log(10)] == [early, late]


def test_a_requeued_marker_moves_behind_the_others_and_a_logged_session_is_not_marked_by_it(log_state: Any) -> None:
    first, second, logged = sessions(3)
    log_state.enqueue_for_log(first, "2026-01-01T00:00:01.000000Z")
    log_state.enqueue_for_log(second, "2026-01-01T00:00:02.000000Z")
    log_state.advance_log(None, state(1, 0, [logged]), [logged])

    log_state.requeue_for_log(first, "2026-01-01T00:00:03.000000Z")
    log_state.requeue_for_log(logged, "2026-01-01T00:00:00.000000Z")

    assert [entry.session_id for entry in log_state.pending_for_log(10)] == [second, first]


def test_forged_pending_entries_on_other_items_of_a_session_are_not_markers(dynamodb: Any, table: str) -> None:
    """The ``LogPending`` index holds any item carrying its keys, and the ingest role writes any item of a session's
    partition: only the session's own marker item counts, so such entries can neither mark a session nor repeat one
    ahead of every real marker."""
    log_state = DynamoDBLogState(dynamodb, table)
    marked, other = sessions(2)
    log_state.enqueue_for_log(marked, "2026-01-01T00:00:05.000000Z")
    for session_id in (marked, other):
        for number in range(3):
            dynamodb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"S#{session_id}"},
                    "sk": {"S": f"X#{number}"},
                    "log_queue": {"S": "PENDING"},
                    "log_queued_at": {"S": f"2026-01-01T00:00:0{number}.000000Z"},
                },
            )

    assert [entry.session_id for entry in log_state.pending_for_log(10)] == [marked]


def test_a_malformed_state_item_is_an_integrity_failure(dynamodb: Any, table: str) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={"pk": {"S": "LOG"}, "sk": {"S": "STATE"}, "size": {"N": "3"}, "root": {"B": b"short"}},
    )
    with pytest.raises(LogIntegrityError):
        DynamoDBLogState(dynamodb, table).log_state()
