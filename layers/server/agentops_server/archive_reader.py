"""Reading archived chains back from the Object Lock bucket, by exact version: whole (streamed) or a byte range.

Replay reads a sealed session from its archive object (the authoritative copy, ELS section 8), never from DynamoDB.
The first read streams the whole version once (to verify it and index it); later pages fetch only the bytes they
need with a ranged GET. IAM: ``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.archive import ArchiveUnavailableError
from agentops_server.store import ArchiveRef, StoreUnavailableError

STREAM_CHUNK_SIZE = 1024 * 1024
# RFC 8259 whitespace: a line of nothing else is blank (ELS section 2); anything else is for the verifier to judge.
JSON_WHITESPACE = b" \t\r\n"


class ArchiveReadError(ArchiveUnavailableError, StoreUnavailableError):
    """Reading an archive version failed or timed out. A storage outage like any other to the API (503, nothing was
    written, retry the same request)."""


class S3ArchiveReader:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def iter_chunks(self, archive: ArchiveRef) -> Iterator[bytes]:
        """The whole archived version, in chunks of at most ``STREAM_CHUNK_SIZE`` bytes."""
        body = self._get(archive)["Body"]
        try:
            yield from body.iter_chunks(STREAM_CHUNK_SIZE)
        except BotoCoreError as error:
            raise ArchiveReadError(f"reading s3://{archive.bucket}/{archive.key} failed: {error}") from error
        finally:
            body.close()

    def read_range(self, archive: ArchiveRef, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the archived version (``end`` exclusive, as Python slices)."""
        response = self._get(archive, Range=f"bytes={start}-{end - 1}")
        try:
            data: bytes = response["Body"].read()
        except BotoCoreError as error:
            raise ArchiveReadError(f"reading s3://{archive.bucket}/{archive.key} failed: {error}") from error
        return data

    def _get(self, archive: ArchiveRef, **extra: Any) -> Any:
        try:
            return self._s3.get_object(Bucket=archive.bucket, Key=archive.key, VersionId=archive.version_id, **extra)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise ArchiveReadError(f"GetObject s3://{archive.bucket}/{archive.key} failed: {code}") from error
        except BotoCoreError as error:
            raise ArchiveReadError(f"GetObject s3://{archive.bucket}/{archive.key} failed: {error}") from error


class ArchiveLines:
    """The lines of an archive object read as a stream of chunks. Hashes every byte and, given a stride, records the
    byte offset of every ``stride``-th non-blank line (then the object's length), so a reader can later fetch any line
    range with one ranged GET. Lines split on LF only and blank lines are skipped, as the verifier reads JSON Lines
    (ELS section 2). Iterate once."""

    def __init__(self, chunks: Iterable[bytes], stride: int | None = None) -> None:
        self._chunks = iter(chunks)
        self._stride = stride
        self._digest = hashlib.sha256()
        self._position = 0
        self.line_count = 0
        self.offsets: list[int] = []

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        pending_start = 0
        for chunk in self._chunks:
            self._digest.update(chunk)
            data = pending + chunk
            start = 0
            while True:
                end = data.find(b"\n", start)
                if end < 0:
                    break
                line = data[start:end]
                if line.strip(JSON_WHITESPACE):
                    yield self._indexed(line, pending_start + start)
                start = end + 1
            pending_start += start
            pending = data[start:]
            self._position = pending_start + len(pending)
        if pending.strip(JSON_WHITESPACE):
            yield self._indexed(pending, pending_start)
        self.offsets.append(self._position)

    def _indexed(self, line: bytes, offset: int) -> bytes:
        if self._stride is not None and self.line_count % self._stride == 0:
            self.offsets.append(offset)
        self.line_count += 1
        return line

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()
