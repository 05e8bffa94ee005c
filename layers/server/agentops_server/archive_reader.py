"""Reading archived chains back, by exact version: the reader interface, its error, and the line splitter.

Replay reads a sealed session from its archive object (the authoritative copy, ELS section 8), never from DynamoDB.
The first read streams the whole version once (to verify it and index it); later pages fetch only the bytes they
need with a ranged read. The S3 implementation is ``agentops_server.aws.s3_archive_reader``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Protocol

from agentops_server.archive import ArchiveUnavailableError
from agentops_server.store import ArchiveRef, StoreUnavailableError

# RFC 8259 whitespace: a line of nothing else is blank (ELS section 2); anything else is for the verifier to judge.
JSON_WHITESPACE = b" \t\r\n"


class ArchiveReadError(ArchiveUnavailableError, StoreUnavailableError):
    """Reading an archive version failed or timed out. A storage outage like any other to the API (503, nothing was
    written, retry the same request)."""


class ArchiveReader(Protocol):
    """Reads one archived version: whole, as a stream of chunks, or a byte range ``[start, end)``."""

    def iter_chunks(self, archive: ArchiveRef) -> Iterator[bytes]: ...

    def read_range(self, archive: ArchiveRef, start: int, end: int) -> bytes: ...


class ArchiveLines:
    """The lines of an archive object read as a stream of chunks. Hashes every byte and, given a stride, records the
    byte offset of every ``stride``-th non-blank line (then the object's length), so a reader can later fetch any line
    range with one ranged GET. Lines split on LF only and blank lines are skipped, as the verifier reads JSON Lines
    (ELS section 2). Iterate once."""

    def __init__(self, chunks: Iterable[bytes], stride: int | None = None) -> None:
        self._chunks = iter(chunks)
        self._stride = stride
        self._digest = hashlib.sha256()
        self._position = 0
        self.line_count = 0
        self.offsets: list[int] = []

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        pending_start = 0
        for chunk in self._chunks:
            self._digest.update(chunk)
            data = pending + chunk
            start = 0
            while True:
                end = data.find(b"\n", start)
                if end < 0:
                    break
                line = data[start:end]
                if line.strip(JSON_WHITESPACE):
                    yield self._indexed(line, pending_start + start)
                start = end + 1
            pending_start += start
            pending = data[start:]
            self._position = pending_start + len(pending)
        if pending.strip(JSON_WHITESPACE):
            yield self._indexed(pending, pending_start)
        self.offsets.append(self._position)

    def _indexed(self, line: bytes, offset: int) -> bytes:
        if self._stride is not None and self.line_count % self._stride == 0:
            self.offsets.append(offset)
        self.line_count += 1
        return line

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()
