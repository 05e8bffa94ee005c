"""Creating an S3 object exactly once, streamed: the write path the archive and the exports share.

``If-None-Match: *`` makes S3 refuse the write when the key already holds an object, so a retry or a racing writer
can never add a second version. A body that fits in one part goes up in one ``PutObject``; a longer one as a
multipart upload, part by part, so memory stays bounded by about two parts whatever the length. Any failure aborts
the upload, so nothing partial ever becomes visible. AWS errors other than "exists" propagate as botocore raised
them, for the caller's adapter to translate into its own domain errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_PART_SIZE = 8 * 1024 * 1024  # S3 parts must be >= 5 MiB except the last
ALREADY_EXISTS_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class ObjectExistsError(Exception):
    """The key already holds an object; nothing was written."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def parts_of(chunks: Iterable[bytes], part_size: int, digest: Any) -> Iterator[bytes]:
    """Group ``chunks`` into parts of at least ``part_size`` bytes (the last may be smaller), feeding every byte to
    ``digest`` on the way."""
    buffer = bytearray()
    for chunk in chunks:
        digest.update(chunk)
        buffer += chunk
        if len(buffer) >= part_size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def create_once(
    s3: Any,
    bucket: str,
    key: str,
    *,
    parts: Iterator[bytes],
    attributes: dict[str, Any],
    before_commit: Callable[[], None] = lambda: None,
) -> str:
    """Write the concatenation of ``parts`` as a new object and return its version id. ``before_commit`` runs once
    every part has been read, before the object becomes visible (for a last check of what was streamed); whatever
    it or ``parts`` raises aborts the write and propagates. Raises ``ObjectExistsError`` when the key is taken."""
    first = next(parts, b"")
    second = next(parts, None)
    if second is None:
        before_commit()
        try:
            created = s3.put_object(Bucket=bucket, Key=key, Body=first, IfNoneMatch="*", **attributes)
        except ClientError as error:
            if error_code(error) in ALREADY_EXISTS_CODES:
                raise ObjectExistsError(f"s3://{bucket}/{key} exists already") from error
            raise
        version_id: str = created["VersionId"]
        return version_id
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **attributes)["UploadId"]
    try:
        target = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        uploaded = [
            _upload_part(s3, target, number, body)
            for number, body in enumerate(itertools.chain((first, second), parts), start=1)
        ]
        before_commit()
        completed = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": uploaded}, IfNoneMatch="*"
        )
    except ClientError as error:
        _abort(s3, bucket, key, upload_id)
        if error_code(error) in ALREADY_EXISTS_CODES:
            raise ObjectExistsError(f"s3://{bucket}/{key} exists already") from error
        raise
    except BaseException:
        _abort(s3, bucket, key, upload_id)
        raise
    multipart_version_id: str = completed["VersionId"]
    return multipart_version_id


def _upload_part(s3: Any, target: dict[str, str], number: int, body: bytes) -> dict[str, Any]:
    response = s3.upload_part(**target, PartNumber=number, Body=body, ChecksumAlgorithm="SHA256")
    return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": response["ChecksumSHA256"]}


def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    """Best effort: an upload left behind is removed by the bucket's AbortIncompleteMultipartUpload rule."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError):
        return
