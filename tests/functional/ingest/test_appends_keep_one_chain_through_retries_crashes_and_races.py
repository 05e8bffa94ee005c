"""Accepted batches through the handler over moto: the server's chain, idempotent retries, crash repair, races."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_verify import canonicalize, chain_event, loads, verify_lines

from tests.functional.ingest.conftest import AGENT, SERVICE_ID, Api, table_items
from tests.functional.ingest.events import batch, event, new_session_id
from tests.support.handlers import load_handler_module


def _stored_chain(api: Api, session_id: str) -> list[bytes]:
    return list(api.module.wiring.store.iter_lines(session_id))


def test_server_rechains_every_event_and_the_stored_chain_verifies(api: Api) -> None:
    session_id = new_session_id()
    sent = [*batch(0, 3), *batch(3, 2, end=True)]
    first = api.post_events(session_id, sent[:3])
    second = api.post_events(session_id, sent[3:])
    assert (first.status, second.status) == (200, 200)
    assert first.body["session_id"] == session_id
    assert first.body["accepted"] == 3
    assert second.body["head"] == {
        "next_sequence_number": 5,
        "last_event_hash": second.body["events"][-1]["event_hash"],
        "status": "ENDED",
    }

    lines = _stored_chain(api, session_id)
    previous = None
    for sent_event, line, accepted in zip(sent, lines, [*first.body["events"], *second.body["events"]], strict=True):
        expected = chain_event(
            event_id=sent_event["event_id"],
            session_id=session_id,
            sequence_number=sent_event["sequence_number"],
            timestamp_wall=sent_event["timestamp_wall"],
            event_type=sent_event["event_type"],
            payload=sent_event["payload"],
            prev_event_hash=previous,
            chain_authority="server",
            timestamp_monotonic=sent_event["timestamp_monotonic"],
            source_sdk_ver=sent_event["source_sdk_ver"],
            schema_ver=sent_event["schema_ver"],
            authority_id=SERVICE_ID,
        )
        assert line == canonicalize(expected)  # stored bytes are exactly the JCS of the full envelope
        assert accepted == {
            "sequence_number": sent_event["sequence_number"],
            "event_id": sent_event["event_id"],
            "event_hash": expected["event_hash"],
        }
        previous = expected["event_hash"]

    report = verify_lines(lines)
    assert report.passed, report.violations
    assert (report.authority, report.event_count, report.final_event_hash) == ("server", 5, previous)


def test_defaults_fill_optional_fields_and_a_correct_payload_hash_is_accepted(api: Api) -> None:
    session_id = new_session_id()
    minimal = {k: v for k, v in event(0).items() if k not in {"timestamp_monotonic", "source_sdk_ver", "schema_ver"}}
    checked = event(1)
    checked["payload_hash"] = chain_event(
        event_id=checked["event_id"],
        session_id=session_id,
        sequence_number=1,
        timestamp_wall=checked["timestamp_wall"],
        event_type=checked["event_type"],
        payload=checked["payload"],
        prev_event_hash=None,
        chain_authority="server",
    )["payload_hash"]
    checked["session_id"] = session_id
    assert api.post_events(session_id, [minimal, checked]).status == 200
    stored = loads(_stored_chain(api, session_id)[0])
    assert (stored["timestamp_monotonic"], stored["source_sdk_ver"], stored["schema_ver"]) == (0, "unknown", "v0.6")


def test_resent_batch_gets_the_identical_answer_and_writes_nothing(api: Api, dynamodb: Any, table_name: str) -> None:
    session_id = new_session_id()
    opening = batch(0, 3)
    first = api.post_events(session_id, opening)
    following = batch(3, 4, end=True)
    second = api.post_events(session_id, following)
    items = table_items(dynamodb, table_name)
    assert api.post_events(session_id, opening).body == first.body
    again = api.post_events(session_id, following)
    assert (again.status, again.body) == (200, second.body)
    assert table_items(dynamodb, table_name) == items


def test_retry_after_a_lost_response_is_answered_from_the_stored_batch(api: Api) -> None:
    session_id = new_session_id()
    assert api.post_events(session_id, batch(0, 2)).status == 200
    sent = batch(2, 3)
    lost = api.post_events(session_id, sent)  # stored; the client never sees this answer
    retry = api.post_events(session_id, sent)
    assert (retry.status, retry.body) == (200, lost.body)
    assert len(_stored_chain(api, session_id)) == 5
    assert verify_lines(_stored_chain(api, session_id)).passed


def test_same_sequence_with_other_content_is_a_conflict_with_the_head(api: Api) -> None:
    session_id = new_session_id()
    assert api.post_events(session_id, batch(0, 2)).status == 200
    winner = api.post_events(session_id, batch(2, 2))
    loser = api.post_events(session_id, batch(2, 2))
    assert loser.status == 409
    assert loser.body["error"]["code"] == "SEQUENCE_CONFLICT"
    assert loser.body["error"]["details"]["head"] == winner.body["head"]


def test_same_events_from_another_principal_are_not_a_retry(api: Api) -> None:
    session_id = new_session_id()
    opening = batch(0, 2)
    assert api.post_events(session_id, opening).status == 200
    stolen = api.post_events(session_id, opening, caller="arn:aws:iam::111122223333:user/other")
    assert (stolen.status, stolen.body["error"]["code"]) == (403, "FORBIDDEN")


def test_crash_between_the_batch_write_and_the_head_is_repaired_by_the_next_append(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = new_session_id()
    assert api.post_events(session_id, batch(0, 2)).status == 200
    crashed = batch(2, 3)

    def crash(_batch: Any) -> None:
        raise RuntimeError("Lambda timed out")

    with monkeypatch.context() as patch:
        patch.setattr(api.module.wiring.store, "advance_head", crash)
        assert api.post_events(session_id, crashed).status == 500  # stored, but neither indexed nor folded

    # A fresh container (no cached index) continues the chain where the stored batch ends.
    fresh = Api(load_handler_module("ingest"))
    following = fresh.post_events(session_id, batch(5, 2))
    assert following.status == 200, following.body
    # The crashed batch's ids were indexed on the way: reusing one is a duplicate.
    reuse = fresh.post_events(session_id, [event(7, event_id=crashed[1]["event_id"])])
    assert reuse.body["error"]["code"] == "DUPLICATE_EVENT_ID"
    view = fresh.get_session(session_id).body
    assert (view["next_sequence_number"], view["last_event_hash"]) == (7, following.body["head"]["last_event_hash"])
    assert verify_lines(_stored_chain(fresh, session_id)).passed


def test_end_lost_by_a_crash_is_still_refused_to_appends_and_found_by_the_sealer(
    api: Api, monkeypatch: pytest.MonkeyPatch, dynamodb: Any, table_name: str
) -> None:
    session_id = new_session_id()
    assert api.post_events(session_id, batch(0, 2)).status == 200
    with monkeypatch.context() as patch:
        patch.setattr(api.module.wiring.store, "advance_head", lambda _batch: None)  # the fold is lost
        assert api.post_events(session_id, [event(2, "SESSION_END")]).status == 200
    store: DynamoDBChainStore = api.module.wiring.store
    head = store.get_head(session_id)
    assert head is not None
    assert head.status == "OPEN"
    items = table_items(dynamodb, table_name)
    refused = api.post_events(session_id, [event(3)])
    assert refused.body["error"]["code"] == "SESSION_ENDED"
    assert table_items(dynamodb, table_name) == items  # a 4xx writes nothing, not even a repair
    assert api.get_session(session_id).body["status"] == "ENDED"  # the view reads the end from the tip
    idle_deadline = head.started_at + timedelta(seconds=3600)
    assert store.due_for_sealing(idle_deadline - timedelta(seconds=1), 10) == []
    assert store.due_for_sealing(idle_deadline, 10) == [session_id]


WRITERS = 6
ROUNDS = 15


def _atomic_requests(client: Any, lock: threading.Lock) -> None:
    """DynamoDB applies each single-item request atomically; moto in-process does not (no lock between a condition's
    check and the write). Serialize requests, not appends: writers still interleave freely between requests."""
    send = client._make_api_call

    def locked(operation: str, parameters: dict[str, Any]) -> Any:
        with lock:
            return send(operation, parameters)

    client._make_api_call = locked


def test_racing_writers_never_fork_the_chain(handler: ModuleType) -> None:
    """Six writers (each its own Lambda container) post different batches at the same sequence number, round after
    round: exactly one wins each round, every other gets 409 SEQUENCE_CONFLICT with the winner's head."""
    writers = [Api(handler), *(Api(load_handler_module("ingest")) for _ in range(WRITERS - 1))]
    lock = threading.Lock()
    for writer in writers:
        _atomic_requests(writer.module.wiring.dynamodb, lock)
    session_id = new_session_id()
    assert writers[0].post_events(session_id, batch(0, 1)).status == 200
    next_sequence = 1
    for _ in range(ROUNDS):
        barrier = threading.Barrier(WRITERS)
        results: list[Any] = [None] * WRITERS

        def write(
            index: int, first: int = next_sequence, barrier: threading.Barrier = barrier, results: list[Any] = results
        ) -> None:
            events = batch(first, 1 + index % 3)
            barrier.wait()
            results[index] = writers[index].post_events(session_id, events)

        threads = [threading.Thread(target=write, args=(index,)) for index in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [result for result in results if result.status == 200]
        losers = [result for result in results if result.status != 200]
        assert len(winners) == 1, [result.body for result in results]
        assert all(loser.status == 409 for loser in losers), [loser.body for loser in losers]
        assert all(loser.body["error"]["code"] == "SEQUENCE_CONFLICT" for loser in losers)
        assert all(loser.body["error"]["details"]["head"] == winners[0].body["head"] for loser in losers)
        next_sequence = winners[0].body["head"]["next_sequence_number"]

    lines = list(writers[0].module.wiring.store.iter_lines(session_id))
    assert len(lines) == next_sequence
    report = verify_lines(lines)
    assert report.passed, report.violations
    view = writers[0].get_session(session_id).body
    assert (view["owner"], view["next_sequence_number"]) == (AGENT, next_sequence)
