"""The write-once archive of sealed chains and published keys (ELS section 8) in an S3 Object Lock bucket.

Layout (docs/architecture.md):

- ``sessions/<session_id>.jsonl``: the sealed chain, each line the JCS form of one event followed by LF, with the
  object's SHA-256 in its metadata. Its COMPLIANCE retention comes from the bucket's default retention (ELS section 8:
  "its retention is a deployment parameter"). Sending ``x-amz-object-lock-*`` headers instead would need
  ``s3:PutObjectRetention``, which the seal role must not have; and a retry never creates a second version anyway
  (``agentops_server.aws.s3_archive``), so there is no retain-until date for a retry to disagree with.
- ``keys/<signer_key_id>.pem``: the public key of every key that ever signed a seal, each written once
  (``If-None-Match: *``) from KMS ``GetPublicKey`` before the key signs anything, with the time of that first
  publication as its ``first-used-at`` metadata. These objects are the published key set (ELS section 8, rev 2): an
  object counts only when its PEM is a P-256 key whose ``signer_key_id`` is the object's name, so a key object can
  never answer for another key.
- ``keys/index.json``: the key set in the ``GET /v1/keys`` format, rewritten (a new locked version) when it grows.

This module is the archive's interface and layout, free of AWS; the S3 implementation is
``agentops_server.aws.s3_archive``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from agentops_server.clock import format_timestamp
from agentops_server.store import ArchiveRef, SigningKeyRecord

SESSIONS_PREFIX = "sessions/"
KEYS_PREFIX = "keys/"
KEYS_INDEX_KEY = KEYS_PREFIX + "index.json"
ARCHIVE_CONTENT_TYPE = "application/x-ndjson"
SHA256_METADATA_KEY = "sha256"  # x-amz-meta-sha256: hex SHA-256 of the whole object
FIRST_USED_METADATA_KEY = "first-used-at"  # x-amz-meta-first-used-at of a key object
KEY_OBJECT_SUFFIX = ".pem"
ALARM_KEY_OBJECT_REFUSED = "KEY_OBJECT_REFUSED"


class ArchiveError(Exception):
    """Base class of archive errors."""


class ArchiveUnavailableError(ArchiveError):
    """S3 failed or timed out; no object version was created. The next sealing run retries."""


class ArchiveConflictError(ArchiveError):
    """The session's archive object exists with other content. It is never overwritten: raise an alarm."""


class Archive(Protocol):
    """What the sealer needs from the archive."""

    def write_session(self, session_id: str, lines: Iterable[bytes], sha256: str) -> ArchiveRef:
        """Store the sealed chain once and return its version; a retry with the same content returns the same
        version. ``lines`` are the canonical event lines without LF; it is only consumed when the object is
        written. ``sha256`` is the hex SHA-256 of the object body (every line + LF)."""
        ...

    def archived_sha256(self, session_id: str) -> str | None:
        """The recorded SHA-256 of the session's archive object, or None when there is none."""
        ...

    def publish_key(self, key: SigningKeyRecord) -> None:
        """Write ``keys/<signer_key_id>.pem`` once; an existing object is kept as it is (with its first use)."""
        ...

    def published_keys(self) -> list[SigningKeyRecord]:
        """Every valid key object, oldest first: the deployment's published key set (ELS section 8)."""
        ...

    def publish_key_index(self, keys: Sequence[SigningKeyRecord]) -> None:
        """Write ``keys/index.json`` (``GET /v1/keys`` format) when it differs from ``keys``."""
        ...


def session_archive_key(session_id: str) -> str:
    return f"{SESSIONS_PREFIX}{session_id}.jsonl"


def public_key_object_key(signer_key_id: str) -> str:
    return f"{KEYS_PREFIX}{signer_key_id}.pem"


def keys_document(keys: Sequence[SigningKeyRecord]) -> dict[str, Any]:
    """The ``GET /v1/keys`` body (API.md): oldest key first."""
    ordered = sorted(keys, key=lambda record: (record.first_used_at, record.signer_key_id))
    return {
        "keys": [
            {
                "signer_key_id": record.signer_key_id,
                "algorithm": record.algorithm,
                "public_key_pem": record.public_key_pem,
                "first_used_at": format_timestamp(record.first_used_at),
            }
            for record in ordered
        ]
    }
