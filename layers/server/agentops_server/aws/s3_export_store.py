"""``ExportStore`` over the S3 Object Lock bucket: each export written once (``agentops_server.aws.s3_once``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.aws.s3_once import DEFAULT_PART_SIZE, ObjectExistsError, create_once, error_code, parts_of
from agentops_server.export_store import (
    CONTENT_TYPES,
    ExportExistsError,
    ExportUnavailableError,
    StoredExport,
    export_key,
)

EVIDENCE_CLASS_METADATA = "evidence-class"  # x-amz-meta-evidence-class


class S3ExportStore:
    def __init__(self, s3_client: Any, bucket: str, part_size: int = DEFAULT_PART_SIZE) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._part_size = part_size

    def put(
        self, session_id: str, export_id: str, file_format: str, chunks: Iterable[bytes], evidence_class: str
    ) -> StoredExport:
        """Write the concatenation of ``chunks`` once. An exception raised by ``chunks`` aborts the upload (nothing
        becomes visible) and propagates."""
        key = export_key(session_id, export_id, file_format)
        digest = hashlib.sha256()
        # S3 requires a checksum on every write to an Object Lock bucket. The class is user metadata of the locked
        # version: what the status route of an asynchronous export shows, never a table item.
        attributes = {
            "ContentType": CONTENT_TYPES[file_format],
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {EVIDENCE_CLASS_METADATA: evidence_class},
        }
        try:
            parts = parts_of(chunks, self._part_size, digest)
            version_id = create_once(self._s3, self._bucket, key, parts=parts, attributes=attributes)
        except ObjectExistsError as error:
            raise ExportExistsError(str(error)) from error
        except ClientError as error:
            raise ExportUnavailableError(f"writing s3://{self._bucket}/{key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ExportUnavailableError(f"writing s3://{self._bucket}/{key} failed: {error}") from error
        return StoredExport(self._bucket, key, version_id, digest.hexdigest(), evidence_class)

    def read(self, stored: StoredExport) -> bytes:
        try:
            response = self._s3.get_object(Bucket=stored.bucket, Key=stored.key, VersionId=stored.version_id)
            data: bytes = response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise ExportUnavailableError(f"GetObject s3://{stored.bucket}/{stored.key} failed: {error}") from error
        return data

    def find(self, session_id: str, export_id: str, file_format: str) -> StoredExport | None:
        key = export_key(session_id, export_id, file_format)
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            digest = hashlib.sha256()
            for chunk in response["Body"].iter_chunks(self._part_size):
                digest.update(chunk)
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise ExportUnavailableError(f"GetObject s3://{self._bucket}/{key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ExportUnavailableError(f"GetObject s3://{self._bucket}/{key} failed: {error}") from error
        evidence_class = response.get("Metadata", {}).get(EVIDENCE_CLASS_METADATA)
        return StoredExport(self._bucket, key, str(response["VersionId"]), digest.hexdigest(), evidence_class)

    def presigned_url(self, stored: StoredExport, expires_in: int) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": stored.bucket, "Key": stored.key, "VersionId": stored.version_id},
            ExpiresIn=expires_in,
        )
        return url
