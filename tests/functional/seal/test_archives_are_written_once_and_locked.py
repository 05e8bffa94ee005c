"""The S3 archive over moto: write once, at most one version, locked, streamed, keys published."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from agentops_server.archive import (
    ALARM_KEY_OBJECT_REFUSED,
    KEYS_INDEX_KEY,
    ArchiveConflictError,
    public_key_object_key,
    session_archive_key,
)
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.store import SigningKeyRecord
from botocore.exceptions import ClientError

from tests.functional.conftest import BUCKET
from tests.functional.seal.conftest import archive_versions
from tests.support.keys import TestSigner

SESSION = "3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"
MIB = 1024 * 1024


def jsonl(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sample_lines(count: int = 5, padding: int = 20) -> list[bytes]:
    return [json.dumps({"sequence_number": n, "pad": "x" * padding}).encode() for n in range(count)]


def read_version(s3: Any, key: str, version_id: str) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version_id)["Body"].read()
    return body


class LateHeadS3:
    """An S3 client whose first HeadObject answers 404: this writer looked before a competing writer finished."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self._heads = 0

    def head_object(self, **arguments: Any) -> Any:
        self._heads += 1
        if self._heads == 1:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return self._s3.head_object(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_archive_holds_each_line_plus_lf_with_its_sha256(s3: Any, archive: S3Archive) -> None:
    lines = sample_lines()
    ref = archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))
    assert (ref.bucket, ref.key, ref.sha256) == (BUCKET, session_archive_key(SESSION), sha256(jsonl(lines)))
    assert read_version(s3, ref.key, ref.version_id) == jsonl(lines)
    head = s3.head_object(Bucket=BUCKET, Key=ref.key, VersionId=ref.version_id)
    assert head["Metadata"] == {"sha256": ref.sha256}


def test_archive_is_locked_in_compliance_mode_until_a_future_date(s3: Any, archive: S3Archive) -> None:
    lines = sample_lines()
    ref = archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))
    head = s3.head_object(Bucket=BUCKET, Key=ref.key, VersionId=ref.version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC)


def test_locked_archive_version_cannot_be_deleted(s3: Any, archive: S3Archive) -> None:
    lines = sample_lines()
    ref = archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=BUCKET, Key=ref.key, VersionId=ref.version_id)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert read_version(s3, ref.key, ref.version_id) == jsonl(lines)


def test_retry_returns_the_same_version_without_writing_again(s3: Any, archive: S3Archive) -> None:
    lines = sample_lines()
    first = archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))

    def must_not_be_read() -> Any:
        raise AssertionError("a retry must not stream the chain again")
        yield  # pragma: no cover - makes this a generator

    again = archive.write_session(SESSION, must_not_be_read(), sha256(jsonl(lines)))
    assert again == first
    assert len(archive_versions(s3, first.key)) == 1


def test_existing_archive_with_other_content_is_never_overwritten(s3: Any, archive: S3Archive) -> None:
    original = sample_lines()
    ref = archive.write_session(SESSION, iter(original), sha256(jsonl(original)))
    forged = [*original[:-1], b'{"forged":true}']
    with pytest.raises(ArchiveConflictError):
        archive.write_session(SESSION, iter(forged), sha256(jsonl(forged)))
    assert [version["VersionId"] for version in archive_versions(s3, ref.key)] == [ref.version_id]
    assert read_version(s3, ref.key, ref.version_id) == jsonl(original)


def test_archive_hidden_by_a_delete_marker_is_not_written_again(s3: Any, archive: S3Archive) -> None:
    lines = sample_lines()
    ref = archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))
    s3.delete_object(Bucket=BUCKET, Key=ref.key)  # no version id: Object Lock allows adding a delete marker
    with pytest.raises(ArchiveConflictError, match="delete marker"):
        archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))
    assert [version["VersionId"] for version in archive_versions(s3, ref.key)] == [ref.version_id]


@pytest.mark.parametrize("line_count", [5, 2_600], ids=["single-put", "multipart"])
def test_two_writers_racing_create_one_version(s3: Any, line_count: int) -> None:
    lines = sample_lines(line_count, padding=4_000)
    digest = sha256(jsonl(lines))
    winner = S3Archive(s3, BUCKET, part_size=5 * MIB).write_session(SESSION, iter(lines), digest)
    loser = S3Archive(LateHeadS3(s3), BUCKET, part_size=5 * MIB).write_session(SESSION, iter(lines), digest)
    assert loser == winner
    assert len(archive_versions(s3, winner.key)) == 1
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_large_chain_streams_as_a_multipart_upload_with_identical_bytes(s3: Any) -> None:
    lines = sample_lines(3_000, padding=4_000)  # about 12 MiB: three parts of 5 MiB
    archive = S3Archive(s3, BUCKET, part_size=5 * MIB)
    ref = archive.write_session(SESSION, iter(lines), sha256(jsonl(lines)))
    assert read_version(s3, ref.key, ref.version_id) == jsonl(lines)
    first_part = s3.head_object(Bucket=BUCKET, Key=ref.key, VersionId=ref.version_id, PartNumber=1)
    assert first_part["PartsCount"] == 3
    assert s3.head_object(Bucket=BUCKET, Key=ref.key)["Metadata"] == {"sha256": ref.sha256}


@pytest.mark.parametrize("line_count", [5, 2_600], ids=["single-put", "multipart"])
def test_chain_changed_since_verification_is_not_archived(s3: Any, line_count: int) -> None:
    verified = sample_lines(line_count, padding=4_000)
    edited = [*verified[:-1], b'{"edited":true}']
    archive = S3Archive(s3, BUCKET, part_size=5 * MIB)
    with pytest.raises(ArchiveConflictError):
        archive.write_session(SESSION, iter(edited), sha256(jsonl(verified)))
    assert archive_versions(s3, session_archive_key(SESSION)) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def key_record(key: TestSigner, day: int) -> SigningKeyRecord:
    return SigningKeyRecord(
        signer_key_id=key.key_id,
        algorithm="ECDSA_P256_SHA256",
        public_key_pem=key.public_key_pem,
        first_used_at=datetime(2026, 1, day, tzinfo=UTC),
    )


def test_published_keys_sit_next_to_the_archives_in_the_keys_api_format(s3: Any, archive: S3Archive) -> None:
    old, new = TestSigner(), TestSigner()
    archive.publish_key(key_record(new, 2))
    archive.publish_key(key_record(old, 1))
    for key in (old, new):
        pem = s3.get_object(Bucket=BUCKET, Key=public_key_object_key(key.key_id))["Body"].read()
        assert pem.decode() == key.public_key_pem
    assert archive.published_keys() == [key_record(old, 1), key_record(new, 2)]
    archive.publish_key_index(archive.published_keys())
    index = json.loads(s3.get_object(Bucket=BUCKET, Key=KEYS_INDEX_KEY)["Body"].read())
    assert index == {
        "keys": [key.key_entry(first_used_at=f"2026-01-0{day}T00:00:00.000000Z") for key, day in ((old, 1), (new, 2))]
    }


def test_a_key_object_is_written_once_and_keeps_its_first_use(s3: Any, archive: S3Archive) -> None:
    key = TestSigner()
    archive.publish_key(key_record(key, 1))
    archive.publish_key(key_record(key, 5))
    assert len(archive_versions(s3, public_key_object_key(key.key_id))) == 1
    assert archive.published_keys() == [key_record(key, 1)]


def test_republishing_the_same_index_adds_no_versions_and_a_new_key_is_appended(s3: Any, archive: S3Archive) -> None:
    first, second = TestSigner(), TestSigner()
    archive.publish_key_index([key_record(first, 1)])
    archive.publish_key_index([key_record(first, 1)])
    assert len(archive_versions(s3, KEYS_INDEX_KEY)) == 1
    archive.publish_key_index([key_record(first, 1), key_record(second, 2)])
    assert len(archive_versions(s3, KEYS_INDEX_KEY)) == 2
    index = json.loads(s3.get_object(Bucket=BUCKET, Key=KEYS_INDEX_KEY)["Body"].read())
    assert [entry["signer_key_id"] for entry in index["keys"]] == [first.key_id, second.key_id]


@pytest.mark.parametrize("content", ["another_keys_pem", "not_a_key"])
def test_key_object_that_is_not_the_key_it_is_named_after_is_not_published(
    s3: Any, archive: S3Archive, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    genuine, other = TestSigner(), TestSigner()
    archive.publish_key(key_record(genuine, 1))
    body = other.public_key_pem.encode() if content == "another_keys_pem" else b"-----BEGIN PUBLIC KEY-----\nAAAA"
    s3.put_object(Bucket=BUCKET, Key=public_key_object_key("sha256:" + "0" * 64), Body=body)
    with caplog.at_level(logging.ERROR, logger="agentops_server.aws.s3_archive"):
        assert archive.published_keys() == [key_record(genuine, 1)]
    assert [getattr(record, "alarm", None) for record in caplog.records] == [ALARM_KEY_OBJECT_REFUSED]
