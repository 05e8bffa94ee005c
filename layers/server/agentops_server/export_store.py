"""Where exports are kept: ``exports/<session_id>/<export_id>.<json|pdf>`` in the Object Lock bucket.

Each export is written once and never overwritten (``If-None-Match: *``; the export id is fresh for every request).
Its COMPLIANCE retention is the bucket's default retention, as for the archives, so the export role needs no
``s3:PutObjectRetention`` and cannot shorten or extend anything. IAM: ``s3:PutObject`` on ``exports/*``, and
``s3:GetObject``/``s3:GetObjectVersion`` on ``exports/*`` for the presigned link.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.store import StoreUnavailableError

EXPORTS_PREFIX = "exports/"
CONTENT_TYPES = {"json": "application/json", "pdf": "application/pdf"}


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
    def put(self, session_id: str, export_id: str, file_format: str, body: bytes) -> StoredExport: ...

    def presigned_url(self, stored: StoredExport, expires_in: int) -> str: ...


def export_key(session_id: str, export_id: str, file_format: str) -> str:
    return f"{EXPORTS_PREFIX}{session_id}/{export_id}.{file_format}"


class S3ExportStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def put(self, session_id: str, export_id: str, file_format: str, body: bytes) -> StoredExport:
        key = export_key(session_id, export_id, file_format)
        digest = hashlib.sha256(body)
        try:
            created = self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=CONTENT_TYPES[file_format],
                IfNoneMatch="*",
                # S3 requires a checksum on every write to an Object Lock bucket.
                ChecksumAlgorithm="SHA256",
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                raise ExportExistsError(f"s3://{self._bucket}/{key} exists already") from error
            raise ExportUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {code}") from error
        except BotoCoreError as error:
            raise ExportUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error}") from error
        return StoredExport(self._bucket, key, created["VersionId"], digest.hexdigest())

    def presigned_url(self, stored: StoredExport, expires_in: int) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": stored.bucket, "Key": stored.key, "VersionId": stored.version_id},
            ExpiresIn=expires_in,
        )
        return url
