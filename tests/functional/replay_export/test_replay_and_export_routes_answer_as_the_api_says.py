"""The replay and export Lambda handlers over moto (DynamoDB table from the template, Object Lock bucket)."""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Any

import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.store import ArchiveRef, StoredBatch
from agentops_server.viewer import render_viewer
from agentops_verify import TrustStore, canonicalize, sha256_hex, verify_bytes

from tests.functional.conftest import BUCKET
from tests.functional.replay_export.conftest import (
    OWNER,
    T0,
    UNKNOWN_SESSION,
    call,
    http_event,
    seal_into_archive,
    store_events,
)
from tests.support.chains import Event, build_chain
from tests.support.handlers import load_handler_module
from tests.support.keys import default_signer


@pytest.fixture
def replay_handler(dynamodb_store: DynamoDBChainStore) -> ModuleType:
    return load_handler_module("replay")


@pytest.fixture
def export_handler(dynamodb_store: DynamoDBChainStore) -> ModuleType:
    return load_handler_module("export")


@pytest.fixture
def sealed(dynamodb_store: DynamoDBChainStore, s3: Any) -> list[Event]:
    events = build_chain(25)
    seal_into_archive(dynamodb_store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    return events


def _export_objects(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/").get("Contents", [])]


# --- replay -----------------------------------------------------------------------------------------------------


def test_replay_route_serves_a_verified_page(replay_handler: ModuleType, sealed: list[Event]) -> None:
    session_id = sealed[0]["session_id"]

    status, body = call(
        replay_handler,
        http_event("GET", f"/v1/sessions/{session_id}/replay", query={"from_sequence": "5", "limit": "10"}),
    )

    assert status == 200
    assert body["session_id"] == session_id
    assert body["verification"]["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
    assert [frame["sequence_number"] for frame in body["frames"]] == list(range(5, 15))
    assert body["next_from_sequence"] == 15
    assert body["warnings"] == []


def test_replay_defaults_to_the_first_200_events(replay_handler: ModuleType, sealed: list[Event]) -> None:
    status, body = call(replay_handler, http_event("GET", f"/v1/sessions/{sealed[0]['session_id']}/replay"))

    assert status == 200
    assert len(body["frames"]) == len(sealed)
    assert body["next_from_sequence"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"from_sequence": "-1"},
        {"from_sequence": "1e3"},
        {"from_sequence": " 4"},
    ],
)
def test_bad_paging_parameters_are_400(replay_handler: ModuleType, sealed: list[Event], query: dict[str, str]) -> None:
    status, body = call(
        replay_handler, http_event("GET", f"/v1/sessions/{sealed[0]['session_id']}/replay", query=query)
    )

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["details"]["errors"][0]["field"] == next(iter(query))


def test_replay_of_an_unknown_session_is_404(replay_handler: ModuleType) -> None:
    status, body = call(replay_handler, http_event("GET", f"/v1/sessions/{UNKNOWN_SESSION}/replay"))

    assert status == 404
    assert body["error"]["code"] == "SESSION_NOT_FOUND"


def test_replay_without_a_caller_identity_is_403(replay_handler: ModuleType, sealed: list[Event]) -> None:
    status, body = call(
        replay_handler, http_event("GET", f"/v1/sessions/{sealed[0]['session_id']}/replay", caller=None)
    )

    assert status == 403
    assert body["error"]["code"] == "FORBIDDEN"


def test_corrupted_chain_in_dynamodb_is_422_without_frames(
    replay_handler: ModuleType, dynamodb_store: DynamoDBChainStore
) -> None:
    events = build_chain(12, end=False, seal=None)
    tampered = [dict(event) for event in events]
    tampered[6] = {**tampered[6], "sequence_number": 7}
    store_events(dynamodb_store, tampered[:6])
    store_events_after(dynamodb_store, tampered[6:])

    status, body = call(replay_handler, http_event("GET", f"/v1/sessions/{events[0]['session_id']}/replay"))

    assert status == 422
    assert body["error"]["code"] == "VERIFICATION_FAILED"
    assert body["error"]["details"]["violations"][0]["type"] == "SEQUENCE_GAP"
    assert body["error"]["details"]["violations"][0]["event_sequence"] == 6
    assert "frames" not in body


def store_events_after(store: DynamoDBChainStore, events: list[Event]) -> None:
    """Append events as one more batch of an existing session, whatever their sequence numbers claim."""
    tail = store.tail(events[0]["session_id"])
    assert tail is not None
    lines = tuple(canonicalize(event) for event in events)
    batch = StoredBatch(
        session_id=events[0]["session_id"],
        first_sequence=tail.last_sequence + 1,
        lines=lines,
        event_ids=tuple(event["event_id"] for event in events),
        event_hashes=tuple(event["event_hash"] for event in events),
        owner=OWNER,
        request_digest=sha256_hex(b"\n".join(lines)),
        accepted_at=T0,
    )
    store.put_batch(batch)
    store.advance_head(batch)


# --- export -----------------------------------------------------------------------------------------------------


def test_export_route_answers_201_with_a_verifiable_locked_export(
    export_handler: ModuleType, sealed: list[Event], s3: Any
) -> None:
    session_id = sealed[0]["session_id"]

    status, body = call(
        export_handler,
        http_event("POST", f"/v1/sessions/{session_id}/exports", body={"format": "json", "withhold_payloads": [3]}),
    )

    assert status == 201
    assert set(body) == {
        "export_id",
        "format",
        "bucket",
        "key",
        "version_id",
        "sha256",
        "url",
        "expires_in",
        "evidence_class",
    }
    assert body["key"] == f"exports/{session_id}/{body['export_id']}.json"
    assert body["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
    assert "X-Amz-Signature=" in body["url"]
    document = s3.get_object(Bucket=BUCKET, Key=body["key"], VersionId=body["version_id"])["Body"].read()
    trust = TrustStore()
    trust.pin(default_signer().key_id)
    assert verify_bytes(document, trust=trust).evidence_class == "AUTHORITATIVE_EVIDENCE"


def test_pdf_export_route(export_handler: ModuleType, sealed: list[Event], s3: Any) -> None:
    status, body = call(
        export_handler, http_event("POST", f"/v1/sessions/{sealed[0]['session_id']}/exports", body={"format": "pdf"})
    )

    assert status == 201
    assert body["key"].endswith(".pdf")
    assert s3.get_object(Bucket=BUCKET, Key=body["key"])["Body"].read().startswith(b"%PDF-")


def test_html_export_route_writes_the_viewer_of_the_stored_document(
    export_handler: ModuleType, sealed: list[Event], s3: Any
) -> None:
    session_id = sealed[0]["session_id"]

    status, body = call(
        export_handler, http_event("POST", f"/v1/sessions/{session_id}/exports", body={"format": "html"})
    )

    assert status == 201
    assert (body["format"], body["evidence_class"]) == ("html", "AUTHORITATIVE_EVIDENCE")
    assert body["key"] == f"exports/{session_id}/{body['export_id']}.html"
    stored = s3.get_object(Bucket=BUCKET, Key=body["key"], VersionId=body["version_id"])
    assert stored["ContentType"] == "text/html; charset=utf-8"
    page = stored["Body"].read()
    assert hashlib.sha256(page).hexdigest() == body["sha256"]
    document = s3.get_object(Bucket=BUCKET, Key=f"exports/{session_id}/{body['export_id']}.json")["Body"].read()
    assert page == render_viewer(document)  # the page embeds exactly the locked export document beside it


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"format": "xml"},
        {"format": "json", "withhold_payloads": "yes"},
        {"format": "json", "withhold_payloads": [True]},
        {"format": "json", "withhold_payloads": [-1]},
        {"format": "json", "withhold_payloads": [1.0]},
        {"format": "json", "signed": True},
        "not json",
        '{"format": "json", "format": "pdf"}',
    ],
)
def test_bad_export_requests_are_400_and_write_nothing(
    export_handler: ModuleType, sealed: list[Event], s3: Any, request_body: Any
) -> None:
    status, body = call(
        export_handler, http_event("POST", f"/v1/sessions/{sealed[0]['session_id']}/exports", body=request_body)
    )

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert _export_objects(s3) == []


def test_export_of_an_unknown_session_is_404_and_writes_nothing(export_handler: ModuleType, s3: Any) -> None:
    status, body = call(
        export_handler, http_event("POST", f"/v1/sessions/{UNKNOWN_SESSION}/exports", body={"format": "json"})
    )

    assert status == 404
    assert body["error"]["code"] == "SESSION_NOT_FOUND"
    assert _export_objects(s3) == []


def test_archive_outage_during_replay_is_503(
    replay_handler: ModuleType, dynamodb_store: DynamoDBChainStore, sealed: list[Event]
) -> None:
    session_id = sealed[0]["session_id"]
    head = dynamodb_store.get_head(session_id)
    assert head is not None
    assert head.archive is not None
    unreachable = ArchiveRef(
        "agentops-bucket-that-is-gone", head.archive.key, head.archive.version_id, head.archive.sha256
    )
    dynamodb_store.mark_sealed(session_id, unreachable, T0, "AUTHORITATIVE_EVIDENCE", ())

    status, body = call(replay_handler, http_event("GET", f"/v1/sessions/{session_id}/replay"))

    assert status == 503
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_export_bucket_outage_is_503(sealed: list[Event], s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVE_BUCKET", "agentops-bucket-that-is-gone")
    handler = load_handler_module("export")

    status, body = call(
        handler, http_event("POST", f"/v1/sessions/{sealed[0]['session_id']}/exports", body={"format": "json"})
    )

    assert status == 503
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert _export_objects(s3) == []
