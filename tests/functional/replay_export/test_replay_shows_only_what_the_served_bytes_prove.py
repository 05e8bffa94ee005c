"""What replay and the session head show is computed from the bytes they serve (ELS section 8, rev 2), never from an
earlier read of data that has changed since, nor from a table attribute: every DynamoDB item is attacker-written.

Each attack edits the table the way someone holding the ingest role's DynamoDB rights could (moto ``UpdateItem`` /
``PutItem``), between two requests to the real Lambda handlers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import boto3
import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.dynamodb_batches import decode_lines, encode_lines
from agentops_server.aws.dynamodb_due import HEAD_SK
from agentops_server.store import ArchiveRef

from tests.functional.conftest import BUCKET, REGION
from tests.functional.replay_export.conftest import (
    T0,
    TABLE,
    call,
    http_event,
    seal_into_archive,
    store_events,
)
from tests.support.chains import Event, build_chain
from tests.support.handlers import load_handler_module


@pytest.fixture
def replay_handler(dynamodb_store: DynamoDBChainStore) -> ModuleType:
    return load_handler_module("replay")


@pytest.fixture
def ingest_handler(dynamodb_store: DynamoDBChainStore) -> ModuleType:
    return load_handler_module("ingest")


@pytest.fixture
def table() -> Any:
    """The raw table, as the attacker reaches it."""
    return boto3.client("dynamodb", region_name=REGION)


def _edit_stored_event(table: Any, session_id: str, first_sequence: int, old: bytes, new: bytes) -> None:
    """Rewrite the canonical bytes of the batch item that starts at ``first_sequence`` (no hash is recomputed)."""
    key = {"pk": {"S": f"S#{session_id}"}, "sk": {"S": f"B#{first_sequence:012d}"}}
    item = table.get_item(TableName=TABLE, Key=key)["Item"]
    lines = decode_lines(item["events"]["B"])
    edited = tuple(line.replace(old, new) for line in lines)
    assert edited != lines
    table.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET events = :events",
        ExpressionAttributeValues={":events": {"B": encode_lines(edited)}},
    )


def _set_head_attributes(table: Any, session_id: str, **values: str) -> None:
    names = {f"#{name}": name for name in values}
    table.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": HEAD_SK}},
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{name}": {"S": value} for name, value in values.items()},
    )


def _replay(handler: ModuleType, session_id: str, from_sequence: int = 0) -> tuple[int, Any]:
    query = {"from_sequence": str(from_sequence), "limit": "50"}
    return call(handler, http_event("GET", f"/v1/sessions/{session_id}/replay", query=query))


def _head(handler: ModuleType, session_id: str) -> dict[str, Any]:
    status, body = call(handler, http_event("GET", f"/v1/sessions/{session_id}"))
    assert status == 200, body
    view: dict[str, Any] = body
    return view


# --- replay -------------------------------------------------------------------------------------------------------


def test_stale_replay_after_stored_bytes_edited_answers_422(
    replay_handler: ModuleType, dynamodb_store: DynamoDBChainStore, table: Any
) -> None:
    events = build_chain(20, end=False, seal=None)
    session_id = events[0]["session_id"]
    store_events(dynamodb_store, events)
    status, first = _replay(replay_handler, session_id)
    assert (status, first["verification"]["status"]) == (200, "PASS")

    _edit_stored_event(table, session_id, 0, b'"What is 2+2?"', b'"What is 3+3?"')
    status, body = _replay(replay_handler, session_id)

    assert status == 422, "a page was served from bytes that no longer verify"
    assert body["error"]["code"] == "VERIFICATION_FAILED"
    assert body["error"]["details"]["violations"][0]["type"] == "PAYLOAD_HASH_MISMATCH"
    assert "frames" not in body


def test_stale_replay_of_a_later_page_after_its_bytes_were_edited_answers_422(
    replay_handler: ModuleType, dynamodb_store: DynamoDBChainStore, table: Any
) -> None:
    events = build_chain(150, end=False, seal=None)
    session_id = events[0]["session_id"]
    store_events(dynamodb_store, events, batch_size=40)
    assert _replay(replay_handler, session_id, 100)[0] == 200

    _edit_stored_event(table, session_id, 120, b'"looks right"', b'"approved by the board"')
    status, body = _replay(replay_handler, session_id, 100)

    assert status == 422
    assert body["error"]["details"]["violations"][0]["type"] == "PAYLOAD_HASH_MISMATCH"


def test_replay_after_an_edit_that_was_undone_serves_the_verified_chain_again(
    replay_handler: ModuleType, dynamodb_store: DynamoDBChainStore, table: Any
) -> None:
    events = build_chain(20, end=False, seal=None)
    session_id = events[0]["session_id"]
    store_events(dynamodb_store, events)
    _replay(replay_handler, session_id)
    _edit_stored_event(table, session_id, 0, b'"What is 2+2?"', b'"What is 3+3?"')
    assert _replay(replay_handler, session_id)[0] == 422

    _edit_stored_event(table, session_id, 0, b'"What is 3+3?"', b'"What is 2+2?"')
    status, body = _replay(replay_handler, session_id)

    assert status == 200
    assert [frame["event"] for frame in body["frames"]] == events


# --- the session head -----------------------------------------------------------------------------------------------


def test_edited_evidence_class_in_the_session_head_is_not_shown_as_authoritative(
    ingest_handler: ModuleType, dynamodb_store: DynamoDBChainStore, s3: Any, table: Any
) -> None:
    events = build_chain(10, end=False)  # sealed without SESSION_END: partial
    session_id = events[0]["session_id"]
    seal_into_archive(dynamodb_store, s3, events, evidence_class="PARTIAL_AUTHORITATIVE_EVIDENCE")
    assert _head(ingest_handler, session_id)["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"

    _set_head_attributes(table, session_id, evidence_class="AUTHORITATIVE_EVIDENCE")

    assert _head(ingest_handler, session_id)["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"


def test_evidence_class_written_into_an_unsealed_session_head_is_not_shown(
    ingest_handler: ModuleType, dynamodb_store: DynamoDBChainStore, table: Any
) -> None:
    events = build_chain(6, seal=None)
    session_id = events[0]["session_id"]
    store_events(dynamodb_store, events)

    _set_head_attributes(table, session_id, evidence_class="AUTHORITATIVE_EVIDENCE")

    assert _head(ingest_handler, session_id)["evidence_class"] is None


def test_session_head_pointing_at_another_sessions_archive_is_not_authoritative(
    ingest_handler: ModuleType, dynamodb_store: DynamoDBChainStore, s3: Any
) -> None:
    sealed = build_chain(8)
    seal_into_archive(dynamodb_store, s3, sealed, evidence_class="AUTHORITATIVE_EVIDENCE")
    head = dynamodb_store.get_head(sealed[0]["session_id"])
    assert head is not None
    assert head.archive is not None
    unsealed = build_chain(5, end=False, seal=None)
    store_events(dynamodb_store, unsealed)

    # The attacker marks its own unsealed session sealed, with the archive and class of another one.
    dynamodb_store.mark_sealing(unsealed[0]["session_id"])
    dynamodb_store.mark_sealed(unsealed[0]["session_id"], head.archive, T0, "AUTHORITATIVE_EVIDENCE", ())

    assert _head(ingest_handler, unsealed[0]["session_id"])["evidence_class"] == "NON_AUTHORITATIVE_EVIDENCE"


def test_session_head_whose_recorded_archive_digest_differs_from_the_bytes_is_not_authoritative(
    ingest_handler: ModuleType, dynamodb_store: DynamoDBChainStore, s3: Any
) -> None:
    events: list[Event] = build_chain(8)
    session_id = events[0]["session_id"]
    seal_into_archive(dynamodb_store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    head = dynamodb_store.get_head(session_id)
    assert head is not None
    assert head.archive is not None

    other = ArchiveRef(head.archive.bucket, head.archive.key, head.archive.version_id, "0" * 64)
    dynamodb_store.mark_sealed(session_id, other, T0, "AUTHORITATIVE_EVIDENCE", ())

    assert _head(ingest_handler, session_id)["evidence_class"] == "NON_AUTHORITATIVE_EVIDENCE"


def test_sealed_session_head_shows_the_class_the_verifier_computes_from_the_archive(
    ingest_handler: ModuleType, dynamodb_store: DynamoDBChainStore, s3: Any
) -> None:
    events = build_chain(8)
    session_id = events[0]["session_id"]
    seal_into_archive(dynamodb_store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")

    head = dynamodb_store.get_head(session_id)
    assert head is not None
    assert head.archive is not None

    view = _head(ingest_handler, session_id)

    assert (view["status"], view["evidence_class"], view["sealed_at"]) == (
        "SEALED",
        "AUTHORITATIVE_EVIDENCE",
        "2026-01-01T12:00:00.000000Z",
    )
    assert view["archive"] == {
        "bucket": BUCKET,
        "key": f"sessions/{session_id}.jsonl",
        "version_id": head.archive.version_id,
        "sha256": head.archive.sha256,
    }
    assert view["event_count"] == len(events)
