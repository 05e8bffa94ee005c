"""Where exports are kept: ``exports/<session_id>/<export_id>.<json|pdf>`` in the Object Lock bucket.

Each export is written once and never overwritten (``If-None-Match: *``; the export id is fresh for every request).
Its COMPLIANCE retention is the bucket's default retention, as for the archives, so the export role needs no
``s3:PutObjectRetention`` and cannot shorten or extend anything. A document is streamed: one ``PutObject`` when it is
smaller than a part, else a multipart upload of ``part_size`` parts, so memory stays bounded by about two parts
whatever the session's length. IAM: ``s3:PutObject`` on ``exports/*`` (parts and completion included), and
``s3:GetObject``/``s3:GetObjectVersion`` on ``exports/*`` (reading a document back to render it, presigned links).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.store import StoreUnavailableError

EXPORTS_PREFIX = "exports/"
CONTENT_TYPES = {"json": "application/json", "pdf": "application/pdf"}
DEFAULT_PART_SIZE = 8 * 1024 * 1024  # S3 parts must be >= 5 MiB except the last
_ALREADY_EXISTS_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


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
        parts = _parts(chunks, self._part_size, digest)
        first = next(parts, b"")
        second = next(parts, None)
        # S3 requires a checksum on every write to an Object Lock bucket.
        attributes = {"ContentType": CONTENT_TYPES[file_format], "ChecksumAlgorithm": "SHA256"}
        if second is None:
            version_id = self._put_object(key, first, attributes)
        else:
            version_id = self._multipart(key, itertools.chain((first, second), parts), attributes)
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

    def _put_object(self, key: str, body: bytes, attributes: dict[str, Any]) -> str:
        try:
            created = self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, IfNoneMatch="*", **attributes)
        except ClientError as error:
            raise self._write_error(key, error) from error
        except BotoCoreError as error:
            raise ExportUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error}") from error
        version_id: str = created["VersionId"]
        return version_id

    def _multipart(self, key: str, parts: Iterable[bytes], attributes: dict[str, Any]) -> str:
        try:
            upload_id = self._s3.create_multipart_upload(Bucket=self._bucket, Key=key, **attributes)["UploadId"]
        except (ClientError, BotoCoreError) as error:
            raise ExportUnavailableError(f"CreateMultipartUpload s3://{self._bucket}/{key} failed: {error}") from error
        try:
            uploaded = []
            for number, body in enumerate(parts, start=1):
                response = self._s3.upload_part(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                )
                uploaded.append(
                    {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": response["ChecksumSHA256"]}
                )
            completed = self._s3.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": uploaded}, IfNoneMatch="*"
            )
        except ClientError as error:
            self._abort(key, upload_id)
            raise self._write_error(key, error) from error
        except BotoCoreError as error:
            self._abort(key, upload_id)
            raise ExportUnavailableError(f"uploading s3://{self._bucket}/{key} failed: {error}") from error
        except BaseException:  # the document's own chunks failed: nothing may become visible
            self._abort(key, upload_id)
            raise
        version_id: str = completed["VersionId"]
        return version_id

    def _abort(self, key: str, upload_id: str) -> None:
        # Best effort: the bucket's AbortIncompleteMultipartUpload rule removes anything left behind.
        try:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            return

    def _write_error(self, key: str, error: ClientError) -> ExportStoreError:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _ALREADY_EXISTS_CODES:
            return ExportExistsError(f"s3://{self._bucket}/{key} exists already")
        return ExportUnavailableError(f"writing s3://{self._bucket}/{key} failed: {code}")


def _parts(chunks: Iterable[bytes], part_size: int, digest: Any) -> Iterator[bytes]:
    """Group ``chunks`` into parts of at least ``part_size`` bytes (the last may be smaller), hashing every byte."""
    buffer = bytearray()
    for chunk in chunks:
        digest.update(chunk)
        buffer += chunk
        if len(buffer) >= part_size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
