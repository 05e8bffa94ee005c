"""Where exports are kept: ``exports/<session_id>/<export_id>.<json|pdf|html>`` in the Object Lock bucket.

Each export is written once and never overwritten (``If-None-Match: *``; the export id is fresh for every synchronous
request, and names the request for an asynchronous one, whose retries find and reuse what an earlier attempt wrote).
Its COMPLIANCE retention is the bucket's default retention, as for the archives, so the export role needs no
``s3:PutObjectRetention`` and cannot shorten or extend anything. A document is streamed: one ``PutObject`` when it is
smaller than a part, else a multipart upload of ``part_size`` parts, so memory stays bounded by about two parts
whatever the session's length. IAM: ``s3:PutObject`` on ``exports/*`` (parts and completion included), and
``s3:GetObject``/``s3:GetObjectVersion`` on ``exports/*`` (reading a document back to render it, presigned links).

This module is the interface; the S3 implementation is ``agentops_server.aws.s3_export_store``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

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
    evidence_class: str | None = None  # as written with the object (None: an export written before it was)


class ExportStore(Protocol):
    def put(
        self, session_id: str, export_id: str, file_format: str, chunks: Iterable[bytes], evidence_class: str
    ) -> StoredExport:
        """Write the export once, its evidence class with it (in the same locked version, never in the table)."""

    def read(self, stored: StoredExport) -> bytes: ...

    def presigned_url(self, stored: StoredExport, expires_in: int) -> str: ...

    def find(self, session_id: str, export_id: str, file_format: str) -> StoredExport | None:
        """The object already written under this export's key (its one version, hashed, and the class written with
        it), or None."""


def export_key(session_id: str, export_id: str, file_format: str) -> str:
    return f"{EXPORTS_PREFIX}{session_id}/{export_id}.{file_format}"
