"""``ArchiveReader`` over S3: an archived version by exact version id, streamed whole or as one ranged GET.

IAM: ``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.archive_reader import ArchiveReadError
from agentops_server.store import ArchiveRef

STREAM_CHUNK_SIZE = 1024 * 1024


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
