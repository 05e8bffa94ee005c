"""The evidence log's objects in the Object Lock bucket (``evidence_log.LogObjects`` over S3).

- Tiles and entry bundles (``log/tile/...``) are created with ``If-None-Match: *``, so no object under ``log/`` ever
  gets a second version from us; when one exists already, its bytes must be the ones being written (a rerun), else
  it is ``LogObjectConflictError``. Their COMPLIANCE retention is the bucket's default, like the archives'.
- ``log/checkpoint`` is replaced with ``If-Match`` on the version read (``If-None-Match: *`` for the first one): a
  slower sealer can never put an older checkpoint over a newer one. Each version stays locked in the bucket.
- A delete marker on ``log/checkpoint`` (which Object Lock does not prevent, but the bucket policy does) would hide
  the log's history: it is reported as an integrity failure, never written over.

IAM: ``s3:GetObject`` and ``s3:PutObject`` on ``log/*``, ``s3:GetObject`` on ``sessions/*`` (rebuilding a leaf after
a crash), and ``s3:ListBucket`` on the bucket so a missing object answers 404 rather than 403. The API's reader needs
only ``s3:GetObject`` on ``log/*`` and ``s3:ListBucket``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.archive import session_archive_key
from agentops_server.aws.s3_once import ALREADY_EXISTS_CODES, error_code
from agentops_server.evidence_log import (
    CHECKPOINT_PATH,
    LOG_PREFIX,
    LogIntegrityError,
    LogObjectConflictError,
    LogObjectMissingError,
    LogUnavailableError,
    StoredCheckpoint,
)

CHECKPOINT_CONTENT_TYPE = "text/plain; charset=utf-8"
TILE_CONTENT_TYPE = "application/octet-stream"
STREAM_CHUNK_SIZE = 1024 * 1024
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3LogObjects:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def read(self, path: str) -> bytes:
        response = self._get(LOG_PREFIX + path)
        if response is None:
            raise LogObjectMissingError(f"s3://{self._bucket}/{LOG_PREFIX}{path} does not exist")
        return _body(response, self._bucket, LOG_PREFIX + path)

    def write_once(self, path: str, data: bytes) -> None:
        key = LOG_PREFIX + path
        try:
            # A checksum header is what S3 demands of every write to an Object Lock bucket.
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=TILE_CONTENT_TYPE,
                ChecksumAlgorithm="SHA256",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error_code(error) not in ALREADY_EXISTS_CODES:
                raise LogUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error_code(error)}") from error
            if self.read(path) != data:
                raise LogObjectConflictError(
                    f"s3://{self._bucket}/{key} exists with other bytes than the log's; not overwritten"
                ) from error
        except BotoCoreError as error:
            raise LogUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error}") from error

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        key = LOG_PREFIX + CHECKPOINT_PATH
        response = self._get(key)
        if response is None:
            return None
        return StoredCheckpoint(note=_body(response, self._bucket, key), version_tag=response["ETag"])

    def replace_checkpoint(self, note: bytes, replaces: StoredCheckpoint | None) -> bool:
        key = LOG_PREFIX + CHECKPOINT_PATH
        condition = {"IfNoneMatch": "*"} if replaces is None else {"IfMatch": replaces.version_tag}
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=note,
                ContentType=CHECKPOINT_CONTENT_TYPE,
                ChecksumAlgorithm="SHA256",
                **condition,
            )
        except ClientError as error:
            if error_code(error) in ALREADY_EXISTS_CODES or error_code(error) in _NOT_FOUND_CODES:
                return False  # replaced (or created) by another run since it was read
            raise LogUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise LogUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error}") from error
        return True

    def archived_chain(self, session_id: str) -> Iterator[bytes] | None:
        key = session_archive_key(session_id)
        response = self._get(key)
        if response is None:
            return None
        return _chunks(response["Body"], self._bucket, key)

    def _get(self, key: str) -> dict[str, Any] | None:
        """The object's GetObject response; None when it does not exist. A delete marker is an integrity failure."""
        try:
            response: dict[str, Any] = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error_code(error) not in _NOT_FOUND_CODES:
                raise LogUnavailableError(f"GetObject s3://{self._bucket}/{key} failed: {error_code(error)}") from error
            if _is_delete_marker(error) or self._hidden_by_delete_marker(key):
                raise LogIntegrityError(f"s3://{self._bucket}/{key} is hidden by a delete marker") from error
            return None
        except BotoCoreError as error:
            raise LogUnavailableError(f"GetObject s3://{self._bucket}/{key} failed: {error}") from error
        return response

    def _hidden_by_delete_marker(self, key: str) -> bool:
        """S3 says so on the GetObject answer already; moto only on HeadObject's, so ask that when a key is missing
        (a rare case: before the first checkpoint, or an attack)."""
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            return _is_delete_marker(error)
        except BotoCoreError as error:
            raise LogUnavailableError(f"HeadObject s3://{self._bucket}/{key} failed: {error}") from error
        return False


def _is_delete_marker(error: ClientError) -> bool:
    return bool(error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-delete-marker") == "true")


def _body(response: dict[str, Any], bucket: str, key: str) -> bytes:
    try:
        data: bytes = response["Body"].read()
    except BotoCoreError as error:
        raise LogUnavailableError(f"reading s3://{bucket}/{key} failed: {error}") from error
    return data


def _chunks(body: Any, bucket: str, key: str) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(STREAM_CHUNK_SIZE)
    except BotoCoreError as error:
        raise LogUnavailableError(f"reading s3://{bucket}/{key} failed: {error}") from error
    finally:
        body.close()
