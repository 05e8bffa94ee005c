"""How the archive writer cuts a chain into S3 requests, checked against a recording S3 double (no AWS)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from agentops_server.archive import ArchiveUnavailableError
from agentops_server.aws.s3_archive import S3Archive
from botocore.exceptions import ClientError

PART_SIZE = 1000


class RecordingS3:
    """Enough of an S3 client for ``S3Archive.write_session``: records what would be sent."""

    def __init__(self, fail_part: int | None = None) -> None:
        self.calls: list[str] = []
        self.parts: list[bytes] = []
        self.single_body: bytes | None = None
        self.fail_part = fail_part

    def head_object(self, **arguments: Any) -> Any:
        self.calls.append("head_object")
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    def put_object(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append("put_object")
        assert arguments["IfNoneMatch"] == "*"
        self.single_body = arguments["Body"]
        return {"VersionId": "v1"}

    def create_multipart_upload(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append("create_multipart_upload")
        return {"UploadId": "u1"}

    def upload_part(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append("upload_part")
        if arguments["PartNumber"] == self.fail_part:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "try again"}}, "UploadPart")
        self.parts.append(arguments["Body"])
        return {"ETag": f'"{arguments["PartNumber"]}"', "ChecksumSHA256": "c2hh"}

    def complete_multipart_upload(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append("complete_multipart_upload")
        assert arguments["IfNoneMatch"] == "*"
        assert [part["PartNumber"] for part in arguments["MultipartUpload"]["Parts"]] == list(
            range(1, len(self.parts) + 1)
        )
        return {"VersionId": "v1"}

    def abort_multipart_upload(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append("abort_multipart_upload")
        return {}


def lines(count: int, width: int = 95) -> list[bytes]:
    return [f"{n:08d}".encode().ljust(width, b"x") for n in range(count)]


def body_of(chain: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in chain)


def test_a_chain_that_fits_in_one_part_is_one_put() -> None:
    s3 = RecordingS3()
    chain = lines(5)
    S3Archive(s3, "bucket", part_size=PART_SIZE).write_session(
        "s", iter(chain), hashlib.sha256(body_of(chain)).hexdigest()
    )
    assert s3.calls == ["head_object", "put_object"]
    assert s3.single_body == body_of(chain)


def test_a_long_chain_is_cut_at_line_ends_into_parts_of_at_least_the_part_size() -> None:
    s3 = RecordingS3()
    chain = lines(55)  # 96 bytes per line: 5,280 bytes, five full parts and a short last one
    S3Archive(s3, "bucket", part_size=PART_SIZE).write_session(
        "s", iter(chain), hashlib.sha256(body_of(chain)).hexdigest()
    )
    assert b"".join(s3.parts) == body_of(chain)
    assert all(len(part) >= PART_SIZE for part in s3.parts[:-1])
    assert all(part.endswith(b"\n") for part in s3.parts)
    assert s3.calls[-1] == "complete_multipart_upload"


def test_the_chain_is_read_lazily_part_by_part() -> None:
    s3 = RecordingS3()
    chain = lines(55)
    read_before_upload: list[int] = []

    def streamed() -> Iterator[bytes]:
        for line in chain:
            read_before_upload.append(len(s3.parts))
            yield line

    S3Archive(s3, "bucket", part_size=PART_SIZE).write_session(
        "s", streamed(), hashlib.sha256(body_of(chain)).hexdigest()
    )
    # The last lines were read after earlier parts had gone out: the whole chain was never buffered.
    assert read_before_upload[-1] >= len(s3.parts) - 2


def test_a_failed_part_aborts_the_upload_and_is_reported_as_retryable() -> None:
    s3 = RecordingS3(fail_part=3)
    chain = lines(55)
    with pytest.raises(ArchiveUnavailableError):
        S3Archive(s3, "bucket", part_size=PART_SIZE).write_session(
            "s", iter(chain), hashlib.sha256(body_of(chain)).hexdigest()
        )
    assert s3.calls[-1] == "abort_multipart_upload"
    assert "complete_multipart_upload" not in s3.calls
