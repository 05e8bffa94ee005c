"""``Archive`` over an S3 Object Lock bucket (layout and interface: ``agentops_server.archive``).

Write once, at most one version: ``write_session`` first looks for the object (``HeadObject``) and, when it is
there, returns it if its SHA-256 is the expected one (a retry) and raises ``ArchiveConflictError`` otherwise; it never
writes a second version. When the object is absent it creates it with ``If-None-Match: *`` (on ``PutObject``, or on
``CompleteMultipartUpload`` for a chain longer than one part), so two sealers racing for the same session cannot both
create a version: S3 (and moto) reject the loser with 412, and the loser then compares the winner's object as above.
Before creating, the bytes streamed from the store are hashed and must match the SHA-256 of the chain the sealer
verified, so a copy edited between the verification pass and the upload pass is never published. A delete marker
(which Object Lock does not prevent) would hide the version from ``HeadObject``: it is reported as a conflict, never
written over; the seal role has no delete permission, and the bucket policy should deny ``s3:DeleteObject`` on
``sessions/*`` to everyone so that no marker can exist.

Memory: the body is streamed from the store in parts of ``part_size`` bytes (default 8 MiB), never whole; at most two
parts are held at once. moto gap: moto applies neither the bucket's default retention nor lock headers to multipart
uploads, so locally only single-part archives show ``ObjectLockMode``; S3 applies the default retention to both.

IAM needed on the bucket: ``s3:PutObject`` (PutObject, multipart create/part/complete, key files), ``s3:GetObject``
(``HeadObject``, key objects, ``keys/index.json``), ``s3:AbortMultipartUpload`` (cleanup after a failed upload), and
``s3:ListBucket`` on the bucket so that HeadObject of a missing archive answers 404 rather than 403 and the key
objects can be listed (readers of the key set need only ``s3:ListBucket`` for ``keys/`` and ``s3:GetObject``).
Presigned links to an archive version (the chain route) need ``s3:GetObjectVersion``. No delete, no retention or
legal-hold change, no bypass.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from agentops_verify import SIGNATURE_ALGORITHM, KeyFormatError, canonicalize, load_pem_public_key
from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.archive import (
    ALARM_KEY_OBJECT_REFUSED,
    ARCHIVE_CONTENT_TYPE,
    FIRST_USED_METADATA_KEY,
    KEY_OBJECT_SUFFIX,
    KEYS_INDEX_KEY,
    KEYS_PREFIX,
    SHA256_METADATA_KEY,
    ArchiveConflictError,
    ArchiveUnavailableError,
    keys_document,
    public_key_object_key,
    session_archive_key,
)
from agentops_server.aws.s3_once import (
    ALREADY_EXISTS_CODES,
    DEFAULT_PART_SIZE,
    ObjectExistsError,
    create_once,
    error_code,
    parts_of,
)
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.store import ArchiveRef, SigningKeyRecord

logger = logging.getLogger(__name__)

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3Archive:
    """``Archive`` over an S3 bucket with Object Lock enabled (versioning on, COMPLIANCE default retention)."""

    def __init__(self, s3_client: Any, bucket: str, part_size: int = DEFAULT_PART_SIZE) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._part_size = part_size
        # Key objects already read and checked, by name and ETag (a new version of an object has another ETag).
        self._key_objects: dict[tuple[str, str], SigningKeyRecord | None] = {}
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        return self._bucket

    def write_session(self, session_id: str, lines: Iterable[bytes], sha256: str) -> ArchiveRef:
        key = session_archive_key(session_id)
        existing = self._existing_archive(key, sha256)
        if existing is not None:
            return existing
        version_id = self._upload_once(key, lines, sha256)
        if version_id is None:  # another sealer completed first: accept its object only if it is ours byte-for-byte
            existing = self._existing_archive(key, sha256)
            if existing is None:
                raise ArchiveUnavailableError(f"s3://{self._bucket}/{key} refused the write but cannot be read")
            return existing
        return ArchiveRef(bucket=self._bucket, key=key, version_id=version_id, sha256=sha256)

    def archived_sha256(self, session_id: str) -> str | None:
        key = session_archive_key(session_id)
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND_CODES:
                return None
            raise ArchiveUnavailableError(f"HeadObject of {key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ArchiveUnavailableError(f"HeadObject of {key} failed: {error}") from error
        sha256: str | None = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
        return sha256

    def publish_key(self, key: SigningKeyRecord) -> None:
        self._put_if_absent(
            public_key_object_key(key.signer_key_id),
            key.public_key_pem.encode("ascii"),
            "application/x-pem-file",
            {FIRST_USED_METADATA_KEY: format_timestamp(key.first_used_at)},
        )

    def published_keys(self) -> list[SigningKeyRecord]:
        keys = []
        for listed in self._list(KEYS_PREFIX):
            name = listed["Key"]
            if not name.endswith(KEY_OBJECT_SUFFIX):
                continue
            cache_key = (name, listed["ETag"])
            with self._lock:
                known = self._key_objects.get(cache_key)
            if known is None:
                known = self._read_key_object(name, listed["LastModified"])
                with self._lock:
                    self._key_objects[cache_key] = known
            if known is not None:
                keys.append(known)
        return sorted(keys, key=lambda record: (record.first_used_at, record.signer_key_id))

    def publish_key_index(self, keys: Sequence[SigningKeyRecord]) -> None:
        index = canonicalize(keys_document(keys))
        if self._read_if_present(KEYS_INDEX_KEY) != index:
            # A new version per key rotation only: the index grows, older versions stay locked as history.
            self._call(
                "put_object", Bucket=self._bucket, Key=KEYS_INDEX_KEY, Body=index, ContentType="application/json"
            )

    def _read_key_object(self, name: str, last_modified: datetime) -> SigningKeyRecord | None:
        """The key an object holds, or None (logged) when the object is not a valid key under its own name."""
        signer_key_id = name[len(KEYS_PREFIX) : -len(KEY_OBJECT_SUFFIX)]
        response = self._call("get_object", Bucket=self._bucket, Key=name)
        body: bytes = response["Body"].read()
        first_used = response.get("Metadata", {}).get(FIRST_USED_METADATA_KEY)
        try:
            key = load_pem_public_key(body)
            if key.key_id != signer_key_id:
                raise KeyFormatError(f"it holds the key {key.key_id}, not the key it is named after")
            # Objects published before first use was recorded as metadata: their creation time, as close a bound.
            first_used_at = parse_timestamp(first_used) if first_used else last_modified.astimezone(UTC)
        except ValueError as error:  # KeyFormatError is a ValueError, so is a bad first-used-at
            logger.error(
                "key object refused: it is not part of the published key set",
                extra={"alarm": ALARM_KEY_OBJECT_REFUSED, "key_object": name, "problem": str(error)},
            )
            return None
        return SigningKeyRecord(signer_key_id, SIGNATURE_ALGORITHM, body.decode("ascii"), first_used_at)

    def _list(self, prefix: str) -> Iterable[dict[str, Any]]:
        arguments = {"Bucket": self._bucket, "Prefix": prefix}
        while True:
            page = self._call("list_objects_v2", **arguments)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            arguments["ContinuationToken"] = page["NextContinuationToken"]

    def presigned_url(self, archive: ArchiveRef, expires_in: int) -> str:
        """A presigned GET of exactly the archived version (needs ``s3:GetObjectVersion`` on the signer's role)."""
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": archive.bucket, "Key": archive.key, "VersionId": archive.version_id},
            ExpiresIn=expires_in,
        )
        return url

    # --- internals --------------------------------------------------------------------------------------------

    def _existing_archive(self, key: str, sha256: str) -> ArchiveRef | None:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND_CODES:
                headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                if headers.get("x-amz-delete-marker") == "true":
                    # The archive exists but someone hid it; writing now would make a second sealed version.
                    raise ArchiveConflictError(
                        f"s3://{self._bucket}/{key} is hidden by a delete marker; not writing a second version"
                    ) from error
                return None
            raise ArchiveUnavailableError(
                f"HeadObject s3://{self._bucket}/{key} failed: {error_code(error)}"
            ) from error
        except BotoCoreError as error:
            raise ArchiveUnavailableError(f"HeadObject s3://{self._bucket}/{key} failed: {error}") from error
        stored_sha256 = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
        if stored_sha256 != sha256:
            raise ArchiveConflictError(
                f"s3://{self._bucket}/{key} version {head.get('VersionId')} has sha256 {stored_sha256}, "
                f"the sealed chain has {sha256}"
            )
        return ArchiveRef(bucket=self._bucket, key=key, version_id=head["VersionId"], sha256=sha256)

    def _upload_once(self, key: str, lines: Iterable[bytes], sha256: str) -> str | None:
        """Create the object once (``s3_once``); the new version id, or None if the key exists already."""
        digest = hashlib.sha256()
        body = (line + b"\n" for line in lines)  # whole lines: parts end at line ends
        # A checksum header is also what S3 demands of every write to an Object Lock bucket.
        attributes = {
            "ContentType": ARCHIVE_CONTENT_TYPE,
            "Metadata": {SHA256_METADATA_KEY: sha256},
            "ChecksumAlgorithm": "SHA256",
        }
        try:
            return create_once(
                self._s3,
                self._bucket,
                key,
                parts=parts_of(body, self._part_size, digest),
                attributes=attributes,
                before_commit=lambda: _check_digest(key, digest, sha256),
            )
        except ObjectExistsError:
            return None
        except (ClientError, BotoCoreError) as error:
            raise ArchiveUnavailableError(f"archiving s3://{self._bucket}/{key} failed: {error}") from error

    def _put_if_absent(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> None:
        try:
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata, IfNoneMatch="*"
            )
        except ClientError as error:
            if error_code(error) in ALREADY_EXISTS_CODES:
                return
            raise ArchiveUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ArchiveUnavailableError(f"PutObject s3://{self._bucket}/{key} failed: {error}") from error

    def _read_if_present(self, key: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND_CODES:
                return None
            raise ArchiveUnavailableError(f"GetObject s3://{self._bucket}/{key} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ArchiveUnavailableError(f"GetObject s3://{self._bucket}/{key} failed: {error}") from error
        body: bytes = response["Body"].read()
        return body

    def _call(self, operation: str, **arguments: Any) -> Any:
        try:
            return getattr(self._s3, operation)(**arguments)
        except ClientError as error:
            raise ArchiveUnavailableError(f"S3 {operation} failed: {error_code(error)}") from error
        except BotoCoreError as error:
            raise ArchiveUnavailableError(f"S3 {operation} failed: {error}") from error


def _check_digest(key: str, digest: Any, expected_sha256: str) -> None:
    """The bytes streamed for upload must be the bytes the sealer verified: the store is read twice (verify, then
    upload), and a copy edited in between must never be published under the verified digest."""
    if digest.hexdigest() != expected_sha256:
        raise ArchiveConflictError(
            f"the chain read for {key} has sha256 {digest.hexdigest()}, the verified chain {expected_sha256}"
        )
