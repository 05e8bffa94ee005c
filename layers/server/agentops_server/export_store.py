"""Where exports are kept: ``exports/<session_id>/<export_id>.<json|pdf|html>`` in the Object Lock bucket.

Each export is written once and never overwritten (``If-None-Match: *``; the export id is fresh for every request).
Its COMPLIANCE retention is the bucket's default retention, as for the archives, so the export role needs no
``s3:PutObjectRetention`` and cannot shorten or extend anything. A document is streamed: one ``PutObject`` when it is
smaller than a part, else a multipart upload of ``part_size`` parts, so memory stays bounded by about two parts
whatever the session's length. IAM: ``s3:PutObject`` on ``exports/*`` (parts and completion included), and
``s3:GetObject``/``s3:GetObjectVersion`` on ``exports/*`` (reading a document back to render it, presigned links).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.aws.s3_once import DEFAULT_PART_SIZE, ObjectExistsError, create_once, error_code, parts_of
from agentops_server.store import StoreUnavailableError
from agentops_server.viewer import MEDIA_TYPE

EXPORTS_PREFIX = "exports/"
CONTENT_TYPES = {"json": "application/json", "pdf": "application/pdf", "html": MEDIA_TYPE}


class ExportStoreError(Exception):
    """Base class of export storage errors."""


class ExportUnavailableError(ExportStoreError, StoreUnavailableError):
    """S3 failed; nothing usable was written and the request may be retried (503; a retry gets a new export id)."""


class ExportExistsError(ExportStoreError):
    """An object already holds this export key: it is never overwritten."""


@dataclass(frozen=True)
class StoredExport:
    bucket: str
    key: str
    version_id: str
    sha256: str


class ExportStore(Protocol):
    def put(self, session_id: str, export_id: str, file_format: str, chunks: Iterable[bytes]) -> StoredExport: ...

    def read(self, stored: StoredExport) -> bytes: ...

    def presigned_url(self, stored: StoredExport, expires_in: int) -> str: ...


def export_key(session_id: str, export_id: str, file_format: str) -> str:
    return f"{EXPORTS_PREFIX}{session_id}/{export_id}.{file_format}"


class S3ExportStore:
    def __init__(self, s3_client: Any, bucket: str, part_size: int = DEFAULT_PART_SIZE) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._part_size = part_size

    def put(self, session_id: str, export_id: str, file_format: str, chunks: Iterable[bytes]) -> StoredExport:
        """Write the concatenation of ``chunks`` once. An exception raised by ``chunks`` aborts the upload (nothing
        becomes visible) and propagates."""
        key = export_key(session_id, export_id, file_format)
        digest = hashlib.sha256()
        # S3 requires a checksum on every write to an Object Lock bucket.
        attributes = {"ContentType": CONTENT_TYPES[file_format], "ChecksumAlgorithm": "SHA256"}
        try:
            parts = parts_of(chunks, self._part_size, digest)
            version_id = create_once(self._s3, self._bucket, key, parts=parts, attributes=attributes)
        except ObjectExistsError as error:
            raise ExportExistsError(str(error)) from error
        except ClientError as error:
            raise ExportUnavailableError(f"writing s3://{self._bucket}/{key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ExportUnavailableError(f"writing s3://{self._bucket}/{key} failed: {error}") from error
        return StoredExport(self._bucket, key, version_id, digest.hexdigest())

    def read(self, stored: StoredExport) -> bytes:
        try:
            response = self._s3.get_object(Bucket=stored.bucket, Key=stored.key, VersionId=stored.version_id)
            data: bytes = response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise ExportUnavailableError(f"GetObject s3://{stored.bucket}/{stored.key} failed: {error}") from error
        return data

    def presigned_url(self, stored: StoredExport, expires_in: int) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": stored.bucket, "Key": stored.key, "VersionId": stored.version_id},
            ExpiresIn=expires_in,
        )
        return url
