"""The replay use case (API.md, GET /v1/sessions/{id}/replay): verify first, then serve frames page by page.

A session is verified as a whole, streaming, by the verifier library before any frame is served; a chain that fails
gets no frames at all (HTTP 422 VERIFICATION_FAILED). Sealed sessions are read from their archive object (the
authoritative copy, ELS section 8), open ones from the chain store.

What a page shows comes from the bytes it serves (ELS section 8, rev 2). Paging a long session must not redo the
verification per page (DESIGN.md, Scale), so a verification is remembered together with a SHA-256 of every run of
``INDEX_STRIDE`` lines it read (``BlockDigests``), and a page is served only from lines whose runs hash to exactly
what was verified; when they do not (the stored bytes changed since), the request verifies the whole chain again and
serves the page from that pass, which answers 422 when the edited chain no longer verifies.

- Sealed sessions: the verification of one archive version is kept in a process-level LRU keyed by (bucket, key,
  version_id, the SHA-256 of the bytes read, trusted key ids), with the byte offset of every ``INDEX_STRIDE``-th line,
  so a later page is one ranged GET of about ``limit`` lines. The head's recorded SHA-256 is only what the bytes must
  match: bytes that hash otherwise are not that evidence (LOAD_ERROR), whatever the chain in them says.
- Open sessions grow while they are replayed. The library's incremental ``ChainVerifier`` is kept per session with
  the number of lines it has read; a later request feeds it only the lines appended since, and the page it serves is
  checked against the digests as above. A change in the set of trusted keys starts the verification over.

Trusted keys come from a ``KeySource`` given to the service: the deployment's published keys (ELS section 8). Each key
is identified by the fingerprint of its own DER, never by the id a record claims.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentops_verify import (
    FAIL,
    NON_AUTHORITATIVE_EVIDENCE,
    ChainVerifier,
    KeyFormatError,
    PublicKey,
    TrustStore,
    load_pem_public_key,
)

from agentops_server.archive_reader import JSON_WHITESPACE, ArchiveLines, ArchiveReader
from agentops_server.errors import ApiError
from agentops_server.frames import MAX_PAGE_BYTES, build_page
from agentops_server.store import ArchiveRef, ChainStore, SessionHead

logger = logging.getLogger(__name__)

# Byte offsets and digests are kept for every 64th line: about 1,600 of each for a 100,000-event session, and a page
# of 200 frames then reads and hashes at most 126 lines it does not return.
INDEX_STRIDE = 64
DEFAULT_CACHE_ENTRIES = 64
# An open session's verifier remembers a fingerprint of every event id (about 8 MB per 100,000 events), so fewer of
# them are kept than verified archive versions (a report, an offset index and digests each).
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


def archive_mismatch(archive: ArchiveRef, session_id: str | None) -> dict[str, Any]:
    """The failing report of an archive version whose bytes are not the ones the sealer verified and recorded."""
    return {
        "session_id": session_id,
        "status": FAIL,
        "evidence_class": NON_AUTHORITATIVE_EVIDENCE,
        "violations": [
            {
                "type": "LOAD_ERROR",
                "message": "the archive object's SHA-256 differs from the one recorded at sealing",
                "event_sequence": None,
                "event_id": None,
                "context": {"key": archive.key, "version_id": archive.version_id, "expected_sha256": archive.sha256},
            }
        ],
    }


def session_mismatch(session_id: str, report: dict[str, Any]) -> dict[str, Any]:
    """A failing report for a chain that verifies but belongs to another session than the one asked for."""
    return {
        **report,
        "status": FAIL,
        "evidence_class": NON_AUTHORITATIVE_EVIDENCE,
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


# --- trusted keys ---------------------------------------------------------------------------------------------------


class PublishedKey(Protocol):
    """A public key as a key source hands it out; only the PEM is read."""

    @property
    def public_key_pem(self) -> str: ...


# The deployment's published keys (ELS section 8, rev 2: from KMS and the locked bucket, never from table records).
KeySource = Callable[[], Iterable[PublishedKey]]


@dataclass(frozen=True)
class TrustedKeys:
    """The keys one request trusts, parsed and identified by their own fingerprint (ELS section 5)."""

    keys: tuple[PublicKey, ...] = ()

    @classmethod
    def of(cls, published: Iterable[PublishedKey]) -> TrustedKeys:
        """The keys whose PEM parses; an unreadable one is logged and left out, which can only lower a class."""
        keys: dict[str, PublicKey] = {}
        for entry in published:
            try:
                key = load_pem_public_key(entry.public_key_pem)
            except KeyFormatError as error:
                logger.warning("a published key is not a usable P-256 key and is not trusted: %s", error)
                continue
            keys.setdefault(key.key_id, key)
        return cls(tuple(keys[key_id] for key_id in sorted(keys)))

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(key.key_id for key in self.keys)

    def get(self, key_id: str) -> PublicKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)

    def trust_store(self) -> TrustStore:
        return TrustStore(self.keys)


# --- what was verified, and pages checked against it -----------------------------------------------------------------


class BlockDigests:
    """SHA-256 over each run of ``INDEX_STRIDE`` lines (each followed by LF) in the order they were verified; the last
    run may be shorter. Appending lines extends it, as an open session grows."""

    def __init__(self) -> None:
        self._complete: list[bytes] = []
        self._current = hashlib.sha256()
        self._pending = 0

    def add(self, line: bytes) -> None:
        self._current.update(line)
        self._current.update(b"\n")
        self._pending += 1
        if self._pending == INDEX_STRIDE:
            self._complete.append(self._current.digest())
            self._current = hashlib.sha256()
            self._pending = 0

    def snapshot(self) -> tuple[bytes, ...]:
        return (*self._complete, self._current.digest()) if self._pending else tuple(self._complete)


@dataclass(frozen=True)
class VerifiedChain:
    """What one verification pass leaves behind for the pages that follow."""

    report: dict[str, Any]
    passed: bool
    event_count: int  # events (lines) in the chain, the seal included
    block_digests: tuple[bytes, ...]  # BlockDigests of the lines verified
    line_offsets: tuple[int, ...] = ()  # archive only: offset of line k * INDEX_STRIDE, then the object's length


@dataclass
class PageWindow:
    """Collects the lines of one page (positions ``first`` .. ``end`` - 1) while a pass reads the chain. It stops
    taking lines once they pass ``max_bytes``, keeping the one that crossed it so that ``build_page`` sees where the
    page stops: memory stays bounded by one response whatever the payload sizes."""

    first: int
    end: int
    max_bytes: int = MAX_PAGE_BYTES
    lines: list[bytes] = field(default_factory=list)
    _used: int = 0

    def offer(self, position: int, line: bytes) -> None:
        if self.first <= position < self.end and self._used <= self.max_bytes:
            self.lines.append(line)
            self._used += len(line)

    @property
    def full(self) -> bool:
        return self._used > self.max_bytes or self.first + len(self.lines) >= self.end


def read_checked_page(lines: Iterable[bytes], verified: VerifiedChain, window: PageWindow) -> bool:
    """Fill ``window`` from ``lines``, which start at the first line of the run holding ``window.first``, hashing
    every run they pass through against the digests of the verification. False as soon as one differs, or when the
    lines end early: then the bytes are not the ones verified and nothing read here may be served."""
    block = window.first // INDEX_STRIDE
    position = block * INDEX_STRIDE
    stop = min(verified.event_count, -(-window.end // INDEX_STRIDE) * INDEX_STRIDE)
    if position >= stop:
        return True  # past the verified chain: an empty page
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line)
        digest.update(b"\n")
        window.offer(position, line)
        position += 1
        if position % INDEX_STRIDE == 0 or position == stop:
            if digest.digest() != verified.block_digests[block]:
                return False
            if position == stop or window.full:
                return True
            block += 1
            digest = hashlib.sha256()
    return False


class VerificationCache:
    """A small thread-safe LRU kept for the life of the Lambda process and shared by its requests: verified archive
    versions, or the verifiers of open sessions."""

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
        """Remove and return an entry (so that one request at a time extends a mutable verifier, and a verification
        whose bytes changed is forgotten)."""
        with self._lock:
            return self._entries.pop(key, None)

    def put(self, key: tuple[Any, ...], entry: Any) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


# --- sealed sessions: archive versions ------------------------------------------------------------------------------


class VerifiedArchives:
    """Archive versions verified with the verifier library, once per process and trusted key set, and pages read
    back from them against what was verified. Shared by replay and the session head."""

    def __init__(self, reader: ArchiveReader, cache: VerificationCache | None = None) -> None:
        self._reader = reader
        self._cache = cache if cache is not None else VerificationCache()

    def verified(self, archive: ArchiveRef, trust: TrustedKeys) -> VerifiedChain:
        """The verification of this version's bytes (read now, or cached under their SHA-256)."""
        cached: VerifiedChain | None = self._cache.get(self._key(archive, trust))
        return cached if cached is not None else self._verify(archive, trust, None)

    def page(self, archive: ArchiveRef, trust: TrustedKeys, first: int, end: int) -> tuple[VerifiedChain, list[bytes]]:
        """The verification and the lines of positions ``first`` .. ``end`` - 1 (within the page's byte cap), every
        one of them bytes that were verified."""
        key = self._key(archive, trust)
        cached: VerifiedChain | None = self._cache.get(key)
        if cached is not None:
            window = PageWindow(first, end)
            if self._read_checked(archive, cached, window):
                return cached, window.lines
            self._cache.take(key)
            logger.warning(
                "archive %s version %s read back other bytes: verifying again", archive.key, archive.version_id
            )
        window = PageWindow(first, end)
        return self._verify(archive, trust, window), window.lines

    @staticmethod
    def _key(archive: ArchiveRef, trust: TrustedKeys) -> tuple[Any, ...]:
        # Entries are stored only for bytes whose SHA-256 is archive.sha256: the key names the bytes verified.
        return (archive.bucket, archive.key, archive.version_id, archive.sha256, trust.ids)

    def _verify(self, archive: ArchiveRef, trust: TrustedKeys, window: PageWindow | None) -> VerifiedChain:
        verifier = ChainVerifier(trust.trust_store())
        digests = BlockDigests()
        indexer = ArchiveLines(self._reader.iter_chunks(archive), INDEX_STRIDE)
        for position, line in enumerate(indexer):
            verifier.add_line(line)
            digests.add(line)
            if window is not None:
                window.offer(position, line)
        report = verifier.finish()
        if indexer.sha256 != archive.sha256:
            # Not the bytes the sealer verified and recorded: whatever the chain says now, it is not that evidence.
            if window is not None:
                window.lines.clear()
            return VerifiedChain(archive_mismatch(archive, report.session_id), False, 0, ())
        verified = VerifiedChain(
            report.to_dict(), report.passed, indexer.line_count, digests.snapshot(), tuple(indexer.offsets)
        )
        self._cache.put(self._key(archive, trust), verified)
        return verified

    def _read_checked(self, archive: ArchiveRef, verified: VerifiedChain, window: PageWindow) -> bool:
        """The page's runs of lines through one ranged GET, checked against the digests."""
        if not verified.passed or window.first >= verified.event_count:
            return True  # nothing of it is served
        offsets = verified.line_offsets
        first_block = window.first // INDEX_STRIDE
        last_block = min(-(-min(window.end, verified.event_count) // INDEX_STRIDE), len(offsets) - 1)
        data = self._reader.read_range(archive, offsets[first_block], offsets[last_block])
        lines = (line for line in data.split(b"\n") if line.strip(JSON_WHITESPACE))
        return read_checked_page(lines, verified, window)


# --- open sessions: the chain store ---------------------------------------------------------------------------------


@dataclass
class _OpenSessionProgress:
    """A verifier part-way through an open session: it has read the first ``line_count`` stored lines."""

    verifier: ChainVerifier
    key_ids: frozenset[str]
    digests: BlockDigests = field(default_factory=BlockDigests)
    line_count: int = 0

    def read(self, lines: Iterable[bytes], window: PageWindow | None) -> None:
        for line in lines:
            self.verifier.add_line(line)
            self.digests.add(line)
            if window is not None:
                window.offer(self.line_count, line)
            self.line_count += 1

    def snapshot(self) -> VerifiedChain:
        report = self.verifier.finish()
        return VerifiedChain(report.to_dict(), report.passed, self.line_count, self.digests.snapshot())


class ReplayService:
    def __init__(
        self,
        store: ChainStore,
        archives: VerifiedArchives,
        trusted_keys: KeySource,
        open_sessions: VerificationCache | None = None,
    ) -> None:
        self._store = store
        self._archives = archives
        self._trusted_keys = trusted_keys
        self._open_sessions = (
            open_sessions if open_sessions is not None else VerificationCache(DEFAULT_OPEN_SESSION_ENTRIES)
        )

    def replay(self, session_id: str, from_sequence: int, limit: int) -> dict[str, Any]:
        """The replay body of API.md for one page; ``ApiError`` SESSION_NOT_FOUND (404) or VERIFICATION_FAILED
        (422)."""
        head = self._store.get_head(session_id)
        if head is None:
            raise session_not_found(session_id)
        trust = TrustedKeys.of(self._trusted_keys())
        end = from_sequence + limit
        if head.archive is not None:
            verified, lines = self._archives.page(head.archive, trust, from_sequence, end)
        else:
            verified, lines = self._open_session_page(head, trust, from_sequence, end)
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

    def _open_session_page(
        self, head: SessionHead, trust: TrustedKeys, first: int, end: int
    ) -> tuple[VerifiedChain, list[bytes]]:
        session_id = head.session_id
        key = (session_id,)
        progress: _OpenSessionProgress | None = self._open_sessions.take(key)
        if progress is not None and progress.key_ids == trust.ids:
            progress.read(self._store.iter_lines(session_id, progress.line_count), None)
            verified = progress.snapshot()
            window = PageWindow(first, end)
            run_start = first // INDEX_STRIDE * INDEX_STRIDE
            if verified.passed and read_checked_page(self._store.iter_lines(session_id, run_start), verified, window):
                self._open_sessions.put(key, progress)
                return verified, window.lines
            if verified.passed:
                logger.warning("stored lines of session %s differ from the ones verified: verifying again", session_id)
        progress = _OpenSessionProgress(ChainVerifier(trust.trust_store()), trust.ids)
        window = PageWindow(first, end)
        progress.read(self._store.iter_lines(session_id), window)
        if progress.line_count == 0:
            raise session_not_found(session_id)  # a head whose first batch never landed holds no events
        verified = progress.snapshot()
        if verified.passed:
            # A failing chain is verified afresh by every request, so an edit that is undone is seen at once.
            self._open_sessions.put(key, progress)
        return verified, window.lines
