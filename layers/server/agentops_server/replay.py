"""The replay use case (API.md, GET /v1/sessions/{id}/replay): verify first, then serve frames page by page.

A session is verified as a whole, streaming, by the verifier library before any frame is served; a chain that fails
gets no frames at all (HTTP 422 VERIFICATION_FAILED). Sealed sessions are read from their archive
object (the authoritative copy, ELS section 8), open ones from the chain store.

Paging a long session must not redo that work per page (DESIGN.md, Scale). The verification of one archive version is
remembered in a process-level LRU keyed by (bucket, key, version_id, sha256), together with the byte offset of every
``INDEX_STRIDE``-th line found while streaming it, so a later page is one ranged GET of about ``limit`` lines. An
archive version never changes (Object Lock), and the first read checks the object's SHA-256 against the one the sealer
recorded, so the key names exactly the bytes that were verified.

An open session grows while it is replayed. Its verifier (the library's incremental ``ChainVerifier``) is kept per
session with the number of lines it has read; a later request feeds it only the lines appended since, which is sound
because stored batches are never rewritten (one conditional write each, store.py). A change in the set of trusted
keys starts the verification over.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from agentops_verify import ChainVerifier, TrustStore, load_pem_public_key

from agentops_server.archive_reader import JSON_WHITESPACE, ArchiveLines
from agentops_server.errors import ApiError
from agentops_server.frames import build_page
from agentops_server.store import ArchiveRef, ChainStore, SessionHead, SigningKeyRecord

# Byte offsets are kept for every 64th line: about 1,600 integers for a 100,000-event session, and a page of 200
# frames then reads at most 63 lines it does not return.
INDEX_STRIDE = 64
DEFAULT_CACHE_ENTRIES = 64
# An open session's verifier remembers a fingerprint of every event id (about 8 MB per 100,000 events), so fewer of
# them are kept than verified archive versions (a report and an offset index each).
DEFAULT_OPEN_SESSION_ENTRIES = 8
# Report keys that describe single events; the replay body carries the warnings separately and no violations.
_PER_EVENT_REPORT_KEYS = ("violations", "warnings")


def session_not_found(session_id: str) -> ApiError:
    return ApiError("SESSION_NOT_FOUND", "No session with this id.", {"session_id": session_id})


def verification_failed(report: dict[str, Any]) -> ApiError:
    """422: the chain does not verify, so nothing of it is replayed; the details carry the violations."""
    return ApiError(
        "VERIFICATION_FAILED",
        "The session's chain does not verify; no frames are served.",
        {"violations": report.get("violations", []), "verification": _summary(report)},
    )


def archive_mismatch(archive: ArchiveRef) -> dict[str, Any]:
    """The violation for an archive version whose bytes are not the ones the sealer verified and recorded."""
    return {
        "type": "LOAD_ERROR",
        "message": "the archive object's SHA-256 differs from the one recorded at sealing",
        "event_sequence": None,
        "event_id": None,
        "context": {"key": archive.key, "version_id": archive.version_id, "expected_sha256": archive.sha256},
    }


def session_mismatch(session_id: str, report: dict[str, Any]) -> dict[str, Any]:
    """A failing report for a chain that verifies but belongs to another session than the one asked for."""
    return {
        **report,
        "status": "FAIL",
        "violations": [
            {
                "type": "SESSION_MISMATCH",
                "message": f"the stored chain is session {report.get('session_id')}, not {session_id}",
                "event_sequence": 0,
                "event_id": None,
                "context": {"requested": session_id, "found": report.get("session_id")},
            }
        ],
    }


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in _PER_EVENT_REPORT_KEYS}


class ArchiveReader(Protocol):
    def iter_chunks(self, archive: ArchiveRef) -> Iterator[bytes]: ...

    def read_range(self, archive: ArchiveRef, start: int, end: int) -> bytes: ...


@dataclass(frozen=True)
class VerifiedChain:
    """What one full verification pass leaves behind for the pages that follow."""

    report: dict[str, Any]
    passed: bool
    event_count: int  # events (lines) in the chain, the seal included
    line_offsets: tuple[int, ...] = ()  # archive only: offset of line k * INDEX_STRIDE, then the object's length


@dataclass
class _OpenSessionProgress:
    """A verifier part-way through an open session: it has read the first ``line_count`` stored lines."""

    verifier: ChainVerifier
    key_ids: frozenset[str]
    line_count: int = 0


class VerificationCache:
    """A small thread-safe LRU kept for the life of the Lambda process and shared by its requests: verified archive
    versions by version key, or the verifiers of open sessions by session id."""

    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def take(self, key: tuple[Any, ...]) -> Any:
        """Remove and return an entry, so that one request at a time extends a mutable verifier."""
        with self._lock:
            return self._entries.pop(key, None)

    def put(self, key: tuple[Any, ...], entry: Any) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


class ReplayService:
    def __init__(
        self,
        store: ChainStore,
        archive_reader: ArchiveReader,
        cache: VerificationCache | None = None,
        open_sessions: VerificationCache | None = None,
    ) -> None:
        self._store = store
        self._archive = archive_reader
        self._cache = cache if cache is not None else VerificationCache()
        self._open_sessions = (
            open_sessions if open_sessions is not None else VerificationCache(DEFAULT_OPEN_SESSION_ENTRIES)
        )

    def replay(self, session_id: str, from_sequence: int, limit: int) -> dict[str, Any]:
        """The replay body of API.md for one page; ``ApiError`` SESSION_NOT_FOUND (404) or VERIFICATION_FAILED
        (422)."""
        head = self._store.get_head(session_id)
        if head is None:
            raise session_not_found(session_id)
        if head.archive is not None:
            verified = self._verified_archive(head.archive)
            lines = self._archive_lines(head.archive, verified, from_sequence, limit)
        else:
            verified = self._verified_store_chain(head)
            lines = self._store.iter_lines(session_id, from_sequence)
        if not verified.passed:
            raise verification_failed(verified.report)
        if verified.report.get("session_id") != session_id:
            raise verification_failed(session_mismatch(session_id, verified.report))
        page = build_page(lines, from_sequence, limit, verified.event_count)
        return {
            "session_id": session_id,
            "verification": _summary(verified.report),
            "frames": page.frames,
            "warnings": verified.report.get("warnings", []),
            "next_from_sequence": page.next_from_sequence,
        }

    # --- sealed sessions: the archive object ------------------------------------------------------------------

    def _verified_archive(self, archive: ArchiveRef) -> VerifiedChain:
        key = (archive.bucket, archive.key, archive.version_id, archive.sha256)
        cached: VerifiedChain | None = self._cache.get(key)
        if cached is not None:
            return cached
        verifier = _new_verifier(self._store.signing_keys())
        indexer = ArchiveLines(self._archive.iter_chunks(archive), INDEX_STRIDE)
        for line in indexer:
            verifier.add_line(line)
        report = verifier.finish()
        if indexer.sha256 != archive.sha256:
            # Not the bytes the sealer verified and recorded: whatever the chain says now, it is not that evidence.
            raise verification_failed(
                {"session_id": report.session_id, "status": "FAIL", "violations": [archive_mismatch(archive)]}
            )
        verified = VerifiedChain(report.to_dict(), report.passed, indexer.line_count, tuple(indexer.offsets))
        self._cache.put(key, verified)
        return verified

    def _archive_lines(
        self, archive: ArchiveRef, verified: VerifiedChain, from_sequence: int, limit: int
    ) -> Iterator[bytes]:
        """The lines of a page through one ranged GET that starts at the indexed line at or before the page."""
        if not verified.passed or from_sequence >= verified.event_count:
            return iter(())
        offsets = verified.line_offsets
        first_block = from_sequence // INDEX_STRIDE
        last_block = min(-(-(from_sequence + limit) // INDEX_STRIDE), len(offsets) - 1)
        data = self._archive.read_range(archive, offsets[first_block], offsets[last_block])
        return (line for line in data.split(b"\n") if line.strip(JSON_WHITESPACE))

    # --- open sessions: the chain store -----------------------------------------------------------------------

    def _verified_store_chain(self, head: SessionHead) -> VerifiedChain:
        keys = self._store.signing_keys()
        key_ids = frozenset(record.signer_key_id for record in keys)
        key = (head.session_id,)
        progress: _OpenSessionProgress | None = self._open_sessions.take(key)
        if progress is None or progress.key_ids != key_ids:
            progress = _OpenSessionProgress(_new_verifier(keys), key_ids)
        for line in self._store.iter_lines(head.session_id, progress.line_count):
            progress.verifier.add_line(line)
            progress.line_count += 1
        if progress.line_count == 0:
            raise session_not_found(head.session_id)  # a head whose first batch never landed holds no events
        report = progress.verifier.finish()
        self._open_sessions.put(key, progress)
        return VerifiedChain(report.to_dict(), report.passed, progress.line_count)


def _new_verifier(keys: Iterable[SigningKeyRecord]) -> ChainVerifier:
    # Every key this deployment ever signed with (ELS section 8) is trusted, as the sealer classifies with them.
    return ChainVerifier(TrustStore(load_pem_public_key(record.public_key_pem) for record in keys))
