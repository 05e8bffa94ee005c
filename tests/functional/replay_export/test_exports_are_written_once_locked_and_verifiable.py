"""Exports over moto S3: written once under exports/ in the Object Lock bucket, locked, linked, and verifiable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.aws.s3_export_store import S3ExportStore
from agentops_server.errors import ApiError
from agentops_server.export import ExportService, ExportSourceChangedError, Withholding
from agentops_server.memory import InMemoryChainStore
from agentops_server.pdf import render_pdf
from agentops_server.store import SigningKeyRecord
from agentops_verify import TrustStore, canonicalize, loads, sha256_hex, verify_bytes
from botocore.config import Config

from tests.functional.conftest import BUCKET, REGION
from tests.functional.replay_export.conftest import (
    publish_default_key,
    published_keys,
    seal_into_archive,
    store_events,
)
from tests.support.chains import Event, build_chain
from tests.support.keys import TestSigner, default_signer

NOW = datetime(2026, 1, 3, 9, 15, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def _service(store: InMemoryChainStore, s3: Any, export_ids: list[str] | None = None) -> ExportService:
    ids = iter(export_ids or ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"])
    return ExportService(
        store=store,
        archive_reader=S3ArchiveReader(s3),
        # As the handler does: presigned links use SigV4 (the only scheme S3 accepts in every region).
        exports=S3ExportStore(boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4")), BUCKET),
        clock=FixedClock(),
        trusted_keys=published_keys(s3),
        new_export_id=lambda: next(ids),
    )


def _download(s3: Any, body: dict[str, Any]) -> bytes:
    data: bytes = s3.get_object(Bucket=body["bucket"], Key=body["key"], VersionId=body["version_id"])["Body"].read()
    return data


def _export_objects(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/").get("Contents", [])]


def _pinned() -> TrustStore:
    trust = TrustStore()
    trust.pin(default_signer().key_id)
    return trust


@pytest.fixture
def sealed(store: InMemoryChainStore, s3: Any) -> list[Event]:
    events = build_chain(40)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    return events


def test_json_export_is_written_locked_and_linked(store: InMemoryChainStore, s3: Any, sealed: list[Event]) -> None:
    session_id = sealed[0]["session_id"]

    body = _service(store, s3).export(session_id, "json", Withholding())

    assert body["key"] == f"exports/{session_id}/11111111-1111-4111-8111-111111111111.json"
    assert body["bucket"] == BUCKET
    assert body["format"] == "json"
    assert body["expires_in"] == 900
    assert body["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
    document = _download(s3, body)
    assert sha256_hex(document) == body["sha256"]
    assert canonicalize(loads(document)) == document
    head = s3.head_object(Bucket=BUCKET, Key=body["key"], VersionId=body["version_id"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > NOW
    assert body["key"] in body["url"]
    assert "X-Amz-Signature=" in body["url"]
    assert "X-Amz-Expires=900" in body["url"]


def test_exported_document_is_the_archived_chain_and_verifies(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    body = _service(store, s3).export(sealed[0]["session_id"], "json", Withholding())
    document = _download(s3, body)

    report = verify_bytes(document, trust=_pinned())

    assert loads(document)["events"] == sealed
    assert loads(document)["generated_at"] == "2026-01-03T09:15:00.000000Z"
    assert report.passed
    assert report.evidence_class == "AUTHORITATIVE_EVIDENCE"


def test_selective_disclosure_export_verifies_with_the_same_class(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    body = _service(store, s3).export(sealed[0]["session_id"], "json", Withholding.from_request([2, 3, 17]))

    report = verify_bytes(_download(s3, body), trust=_pinned())

    assert report.passed
    assert report.evidence_class == body["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
    assert [warning.type for warning in report.warnings] == ["PAYLOAD_WITHHELD"]


def test_pdf_export_writes_the_rendering_beside_its_json_document(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    session_id = sealed[0]["session_id"]

    body = _service(store, s3).export(session_id, "pdf", Withholding())

    json_key = f"exports/{session_id}/11111111-1111-4111-8111-111111111111.json"
    assert body["key"] == json_key.replace(".json", ".pdf")
    assert sorted(_export_objects(s3)) == [json_key, body["key"]]
    pdf = _download(s3, body)
    assert pdf.startswith(b"%PDF-")
    document = s3.get_object(Bucket=BUCKET, Key=json_key)["Body"].read()
    assert pdf == render_pdf(document)


def test_open_session_exports_from_the_store_as_unsealed(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(9, end=False, seal=None)
    store_events(store, events)
    publish_default_key(s3)

    body = _service(store, s3).export(events[0]["session_id"], "json", Withholding())

    document = loads(_download(s3, body))
    assert document["seal"] is None
    assert document["public_keys"] == []
    assert document["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert verify_bytes(_download(s3, body)).evidence_class == "PARTIAL_AUTHORITATIVE_EVIDENCE"


def test_every_export_is_a_new_object(store: InMemoryChainStore, s3: Any, sealed: list[Event]) -> None:
    service = _service(store, s3)

    first = service.export(sealed[0]["session_id"], "json", Withholding())
    second = service.export(sealed[0]["session_id"], "json", Withholding())

    assert first["key"] != second["key"]
    assert len(_export_objects(s3)) == 2


def test_an_export_id_is_never_written_twice(store: InMemoryChainStore, s3: Any, sealed: list[Event]) -> None:
    same_id = "33333333-3333-4333-8333-333333333333"
    service = _service(store, s3, [same_id, same_id])
    first = service.export(sealed[0]["session_id"], "json", Withholding())

    with pytest.raises(Exception, match="exists already"):
        service.export(sealed[0]["session_id"], "json", Withholding.from_request(True))

    assert _download(s3, first) == s3.get_object(Bucket=BUCKET, Key=first["key"])["Body"].read()
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=first["key"]).get("Versions", [])
    assert len(versions) == 1


def test_withholding_a_missing_sequence_number_is_400_and_writes_nothing(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    with pytest.raises(ApiError) as refused:
        _service(store, s3).export(sealed[0]["session_id"], "json", Withholding.from_request([5, 4000]))

    assert refused.value.code == "VALIDATION_ERROR"
    assert _export_objects(s3) == []


def test_unknown_session_is_404_and_writes_nothing(store: InMemoryChainStore, s3: Any) -> None:
    with pytest.raises(ApiError) as refused:
        _service(store, s3).export("6f1d1f4e-6f4b-4f0e-9a53-5d0f3f1c2a10", "json", Withholding())

    assert refused.value.code == "SESSION_NOT_FOUND"
    assert _export_objects(s3) == []


def test_a_chain_that_does_not_verify_is_not_exported(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(9, end=False, seal=None)
    tampered = [*events[:4], {**events[4], "payload": {**events[4]["payload"], "status": "edited"}}, *events[5:]]
    store_events(store, tampered)

    with pytest.raises(ApiError) as refused:
        _service(store, s3).export(events[0]["session_id"], "pdf", Withholding())

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "PAYLOAD_HASH_MISMATCH"
    assert _export_objects(s3) == []


def test_a_large_export_streams_as_a_multipart_upload_and_still_verifies(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(9000)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    part_size = 5 * 1024 * 1024  # the smallest part S3 takes, so a 6 MB document needs two
    service = ExportService(
        store=store,
        archive_reader=S3ArchiveReader(s3),
        exports=S3ExportStore(s3, BUCKET, part_size=part_size),
        clock=FixedClock(),
        trusted_keys=published_keys(s3),
    )

    body = service.export(events[0]["session_id"], "json", Withholding.from_request([10, 20]))

    document = _download(s3, body)
    assert len(document) > part_size
    assert sha256_hex(document) == body["sha256"]
    assert canonicalize(loads(document)) == document
    # (The lock itself is the bucket's default retention; moto applies it to single puts only, see the test above.)
    assert verify_bytes(document, trust=_pinned()).evidence_class == "AUTHORITATIVE_EVIDENCE"


def test_a_chain_that_changes_between_the_two_reads_is_not_published(s3: Any) -> None:
    events = build_chain(12, end=False, seal=None)

    class ChangingStore(InMemoryChainStore):
        """The second read of the chain returns an edited event (what a bug or a race in storage would look like)."""

        reads = 0

        def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
            self.reads += 1
            for line in super().iter_lines(session_id, from_sequence):
                yield line.replace(b"What is 2+2?", b"What is 3+3?") if self.reads > 1 else line

    store = ChangingStore()
    store_events(store, events)

    with pytest.raises(ExportSourceChangedError):
        _service(store, s3).export(events[0]["session_id"], "json", Withholding())

    assert _export_objects(s3) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_export_of_a_chain_sealed_by_an_untrusted_key_is_refused_and_writes_nothing(
    store: InMemoryChainStore, s3: Any
) -> None:
    # Someone who can write the table stores a CHAIN_SEAL signed with its own key.
    attacker = TestSigner()
    events = build_chain(8, signer=attacker)
    store_events(store, events)
    published = [SigningKeyRecord(default_signer().key_id, "ECDSA_P256_SHA256", default_signer().public_key_pem, NOW)]
    service = ExportService(
        store=store,
        archive_reader=S3ArchiveReader(s3),
        exports=S3ExportStore(s3, BUCKET),
        clock=FixedClock(),
        trusted_keys=lambda: published,
    )

    with pytest.raises(ApiError) as refused:
        service.export(events[0]["session_id"], "pdf", Withholding())

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "UNTRUSTED_SEAL_KEY"
    assert refused.value.details["violations"][0]["context"] == {"signer_key_id": attacker.key_id}
    assert _export_objects(s3) == []
