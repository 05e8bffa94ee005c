"""``agentops-log-audit``: audit a downloaded copy of the evidence log (LOG.md section 6).

It verifies ``LOG_DIR/checkpoint`` under the pinned log keys, rebuilds the tree from the entry bundles and checks
every hash tile and the root against it, checks that no session id repeats, and with ``--previous-checkpoint`` that
the tree it rebuilt had the earlier checkpoint's root at the earlier size. With ``--archives DIR`` (a copy of the
bucket's ``sessions/``) it checks each leaf's archive ``<session_id>.jsonl``: present, SHA-256 equal to the leaf's
``archive_sha256``, a sealed chain that verifies under the trusted keys and matches the leaf; then it lists the
archives no leaf names. One tab-separated line per finding (subject, status, detail), in the style of
``agentops-verify``, then ``N/M logged sessions present and intact``. The command line is ``_logaudit_cli``.

Memory does not grow with the number of sessions: entry bundles are streamed, the tree is kept as its right edge
(``TileBuilder``: at most 255 hashes per level and one bundle), each archive is streamed through the chain verifier,
and the session ids seen (for repeats and for unlogged archives) go to a temporary SQLite database on disk
(about 30 bytes per session), of which at most ``SQLITE_CACHE_KIB`` (``_logindex``) is held in memory. No tile or
entry bundle is read past the size it can have, however large the file in the copy is.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import re
import stat
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _rules as rules
from ._chain import ChainVerifier
from ._ecdsa import PublicKey
from ._errors import EvidenceLogError, MalformedJSONError
from ._json import loads
from ._keys import TrustStore
from ._leaf import LogLeaf, SealedChainFacts
from ._logindex import SessionIndex
from ._merkle import HASH_SIZE
from ._note import Checkpoint, verify_checkpoint
from ._tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileBuilder,
    TileError,
    entry_bundle_path,
    split_entry_bundle,
    tile_path,
)

OK = "OK"
MISSING = "MISSING"
MODIFIED = "MODIFIED"
INVALID = "INVALID"
UNLOGGED = "UNLOGGED"

ARCHIVE_SUFFIX = ".jsonl"
_ARCHIVE_NAME = re.compile(rf"({rules.UUID.pattern}){re.escape(ARCHIVE_SUFFIX)}")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_ESCAPE_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


@dataclass(frozen=True)
class AuditLine:
    """One finding: ``subject`` is a session id, an archive file name, or a log object (``checkpoint``, a tile path,
    ``leaf <index>``, ``tree``); ``status`` one of OK, MISSING, MODIFIED, INVALID, UNLOGGED."""

    subject: str
    status: str
    detail: str
    session_id: str | None = None
    leaf_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "status": self.status,
            "detail": self.detail,
            "session_id": self.session_id,
            "leaf_index": self.leaf_index,
        }

    def text(self) -> str:
        """One line of three tab-separated fields: a control character in a file name or message is escaped, so a
        name in the audited copy cannot add a line or a field of its own."""
        return f"{self.subject.translate(_ESCAPE_CONTROLS)}\t{self.status}\t{self.detail.translate(_ESCAPE_CONTROLS)}"


@dataclass
class AuditTotals:
    """Counts kept while the audit runs; final once ``LogAudit.lines()`` is exhausted."""

    logged: int = 0
    intact: int = 0
    unlogged: int = 0
    failures: int = 0
    archives_checked: bool = False
    tiles_checked: int = 0

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def summary(self) -> str:
        if not self.archives_checked:
            return f"{self.logged} logged sessions (archives not checked: no --archives)"
        return f"{self.intact}/{self.logged} logged sessions present and intact"


@dataclass
class LogAudit:
    """The audit of one downloaded log. ``lines()`` yields the findings as it goes; ``totals`` is then final.

    ``checkpoint`` and ``previous_checkpoint`` are note bytes; ``log_keys`` the pinned checkpoint keys; ``trust``
    the keys seal signatures must verify under (``--trusted-key``, else the log keys)."""

    log_dir: Path
    checkpoint: bytes
    log_keys: Sequence[PublicKey]
    trust: TrustStore
    previous_checkpoint: bytes | None = None
    archives: Path | None = None
    totals: AuditTotals = field(default_factory=AuditTotals)

    def lines(self) -> Iterator[AuditLine]:
        self.totals.archives_checked = self.archives is not None
        for line in self._lines():
            if line.status != OK:
                self.totals.failures += 1
            yield line

    def _lines(self) -> Iterator[AuditLine]:
        try:
            checkpoint = verify_checkpoint(self.checkpoint, self.log_keys)
        except EvidenceLogError as error:
            yield AuditLine("checkpoint", INVALID, str(error))
            return
        root = base64.b64encode(checkpoint.root_hash).decode("ascii")
        yield AuditLine("checkpoint", OK, f"{checkpoint.origin}, {checkpoint.size} leaves, root {root}")
        previous = yield from self._previous(checkpoint)
        index = SessionIndex()
        try:
            complete = yield from self._rebuild(checkpoint, previous, index)
            if complete and self.archives is not None:
                yield from self._unlogged(self.archives, index)
        finally:
            index.close()

    def _previous(self, checkpoint: Checkpoint) -> Generator[AuditLine, None, Checkpoint | None]:
        if self.previous_checkpoint is None:
            return None
        try:
            previous = verify_checkpoint(self.previous_checkpoint, self.log_keys)
        except EvidenceLogError as error:
            yield AuditLine("previous checkpoint", INVALID, str(error))
            return None
        if previous.origin != checkpoint.origin:
            yield AuditLine("previous checkpoint", INVALID, f"its origin {previous.origin} is not {checkpoint.origin}")
            return None
        if previous.size > checkpoint.size:
            detail = f"its size {previous.size} is larger than the checkpoint's {checkpoint.size}"
            yield AuditLine("previous checkpoint", INVALID, detail)
            return None
        return previous

    def _rebuild(
        self, checkpoint: Checkpoint, previous: Checkpoint | None, index: SessionIndex
    ) -> Generator[AuditLine, None, bool]:
        """Stream the entry bundles into a ``TileBuilder``, checking each tile and leaf; True when every bundle
        was read (so the root and the partial tiles could be checked). The previous checkpoint's root is compared
        when the rebuilt tree reaches its size, and reported after the tree's own root."""
        builder = TileBuilder()
        consistency = self._consistency(builder, previous)
        tile_problems = 0
        for bundle in range((checkpoint.size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, checkpoint.size - bundle * TILE_WIDTH)
            path = entry_bundle_path(bundle, width)
            most = width * (2 + MAX_ENTRY_SIZE)
            data, reason = self._read(path, most)
            if data is None:
                yield AuditLine(path, MISSING, f"{reason}; the tree cannot be rebuilt past leaf {builder.size}")
                return False
            try:
                if len(data) > most:
                    raise TileError(f"is longer than {width} entries can be ({most} bytes)")
                entries = split_entry_bundle(data)
                if len(entries) != width:
                    raise TileError(f"holds {len(entries)} entries, not {width}")
            except EvidenceLogError as error:
                yield AuditLine(path, INVALID, f"{error}; the tree cannot be rebuilt past leaf {builder.size}")
                return False
            for entry in entries:
                leaf_index = builder.size
                for tile in builder.append(entry):
                    for problem in self._check_tile(tile):
                        tile_problems += 1
                        yield problem
                yield from self._check_leaf(leaf_index, entry, index)
                consistency = consistency or self._consistency(builder, previous)
        for tile in builder.partial_tiles():
            for problem in self._check_tile(tile):
                tile_problems += 1
                yield problem
        if builder.root() != checkpoint.root_hash:
            yield AuditLine("tree", INVALID, f"the {checkpoint.size} entries do not hash to the checkpoint's root")
        else:
            yield AuditLine("tree", OK, f"the {checkpoint.size} entries hash to the checkpoint's root")
        if consistency is not None:
            yield consistency
        if not tile_problems:
            yield AuditLine("tiles", OK, f"{self.totals.tiles_checked} tiles and entry bundles match the entries")
        return True

    @staticmethod
    def _consistency(builder: TileBuilder, previous: Checkpoint | None) -> AuditLine | None:
        """Whether the tree rebuilt so far is the previous checkpoint's, once it has reached its size."""
        if previous is None or builder.size != previous.size:
            return None
        if builder.root() == previous.root_hash:
            return AuditLine("previous checkpoint", OK, f"the log extends the checkpoint of size {previous.size}")
        return AuditLine(
            "previous checkpoint", INVALID, f"the log's first {previous.size} entries do not hash to its root"
        )

    def _check_tile(self, tile: Tile) -> Iterator[AuditLine]:
        """The stored tile must be the rebuilt one; stored partial versions of it, up to its width, its prefixes."""
        self.totals.tiles_checked += 1
        stored, reason = self._read(tile.path, len(tile.data))
        if stored is None:
            yield AuditLine(tile.path, MISSING, reason)
        elif stored != tile.data:
            yield AuditLine(tile.path, MODIFIED, "differs from the tile rebuilt from the entries")
        full_path = tile_path(tile.level, tile.index) if tile.level is not None else entry_bundle_path(tile.index)
        partials = self._log_path(full_path + ".p")
        if not partials.is_dir():
            return
        for name in sorted(os.listdir(partials)):
            if _WIDTH.fullmatch(name) is None or int(name) >= tile.width:
                continue  # not a partial of this tile, or of a size beyond the checkpoint
            path = f"{full_path}.p/{name}"
            self.totals.tiles_checked += 1
            prefix = _prefix(tile, int(name))
            stored, reason = self._read(path, len(prefix))
            if stored is None:
                yield AuditLine(path, MISSING, reason)
            elif stored != prefix:
                yield AuditLine(path, MODIFIED, "is not the start of the tile rebuilt from the entries")

    def _check_leaf(self, leaf_index: int, entry: bytes, index: SessionIndex) -> Iterator[AuditLine]:
        self.totals.logged += 1
        try:
            leaf = LogLeaf.from_bytes(entry)
        except EvidenceLogError as error:
            yield AuditLine(f"leaf {leaf_index}", INVALID, str(error), leaf_index=leaf_index)
            return
        earlier = index.add(leaf.session_id, leaf_index)
        if earlier is not None:
            yield AuditLine(
                f"leaf {leaf_index}",
                INVALID,
                f"session {leaf.session_id} is already leaf {earlier}",
                session_id=leaf.session_id,
                leaf_index=leaf_index,
            )
            return  # its archive was checked at the earlier leaf; a repeat is not a second intact session
        if self.archives is not None:
            line = self._check_archive(self.archives, leaf, leaf_index)
            if line.status == OK:
                self.totals.intact += 1
            yield line

    def _check_archive(self, archives: Path, leaf: LogLeaf, leaf_index: int) -> AuditLine:
        name = leaf.session_id + ARCHIVE_SUFFIX

        def line(status: str, detail: str) -> AuditLine:
            return AuditLine(leaf.session_id, status, detail, session_id=leaf.session_id, leaf_index=leaf_index)

        verifier = ChainVerifier(self.trust)
        last_event = b""
        try:
            with open_regular_file(archives / name) as stream:
                # Hashed in chunks first: the lines of a file that is not the archived one (a copy can hold one line
                # of any length) are never read; a second digest, over the lines verified, must agree.
                digest = hashlib.file_digest(stream, "sha256").hexdigest()
                if digest != leaf.archive_sha256:
                    return line(MODIFIED, f"{name} has SHA-256 {digest}, the leaf says {leaf.archive_sha256}")
                stream.seek(0)
                verified = hashlib.sha256()
                for event_line in stream:
                    verified.update(event_line)
                    verifier.add_line(event_line)
                    if event_line.strip():
                        last_event = event_line
        except OSError as error:
            return line(MISSING, f"{name}: {error.strerror or error}")
        if verified.hexdigest() != digest:
            return line(MODIFIED, f"{name} changed while it was being audited")
        report = verifier.finish(source=name)
        violation = report.first_violation
        if violation is not None:
            where = violation.location()
            return line(INVALID, f"{name}: {violation.type}{' ' + where if where else ''}: {violation.message}")
        if report.seal_signed and not report.seal_key_trusted:
            return line(INVALID, f"{name}: its seal is signed by {report.seal_key_id}, which is not a trusted key")
        try:
            facts = SealedChainFacts.from_report(report, _seal_payload(last_event))
        except EvidenceLogError as error:
            return line(INVALID, f"{name}: {error}")
        differences = leaf.differences(facts)
        if differences:
            return line(INVALID, f"{name}: the leaf states {', '.join(differences)} differently from the chain")
        return line(OK, f"leaf {leaf_index}, {report.event_count} events")

    def _unlogged(self, archives: Path, index: SessionIndex) -> Iterator[AuditLine]:
        with os.scandir(archives) as entries:
            for entry in entries:
                match = _ARCHIVE_NAME.fullmatch(entry.name)
                if match is None or not entry.is_file() or not index.is_logged(match.group(1)):
                    index.add_unlogged(os.fsencode(entry.name))
        for raw_name in index.unlogged():
            self.totals.unlogged += 1
            name = raw_name.decode("utf-8", "backslashreplace")
            match = _ARCHIVE_NAME.fullmatch(name)
            session_id = match.group(1) if match is not None else None
            yield AuditLine(name, UNLOGGED, "no leaf of the log names this archive", session_id=session_id)

    def _log_path(self, path: str) -> Path:
        return self.log_dir.joinpath(*path.split("/"))

    def _read(self, path: str, size: int) -> tuple[bytes | None, str]:
        """The object at ``path``, or its first ``size + 1`` bytes when it is longer than the ``size`` it can have
        (a copy may hold a file of any length; what is read stays bounded)."""
        try:
            with open_regular_file(self._log_path(path)) as stored:
                return stored.read(size + 1), ""
        except OSError as error:
            return None, f"cannot be read: {error.strerror or error}"


def _prefix(tile: Tile, width: int) -> bytes:
    """The bytes of the partial version of ``tile`` that held its first ``width`` entries or hashes."""
    if tile.level is not None:
        return tile.data[: width * HASH_SIZE]
    offset = 0
    for _ in range(width):
        offset += 2 + int.from_bytes(tile.data[offset : offset + 2], "big")
    return tile.data[:offset]


def _seal_payload(line: bytes) -> dict[str, Any]:
    """The payload of the chain's last event (its seal, once the chain has verified)."""
    try:
        event = loads(line)
    except MalformedJSONError:
        return {}
    payload = event.get("payload") if isinstance(event, dict) else None
    return payload if isinstance(payload, dict) else {}


def open_regular_file(path: Path) -> io.BufferedReader:
    """``path`` opened for reading, or ``OSError`` when it is not a regular file: in a copy anyone could have made, a
    FIFO named like an archive or a tile would make the audit wait for a writer for ever, and a device such as
    /dev/zero never ends. Opened without blocking, so that a FIFO is seen for what it is before anything waits."""
    no_wait = getattr(os, "O_NONBLOCK", 0)  # not on Windows, which has no FIFOs to wait on
    descriptor = os.open(path, os.O_RDONLY | no_wait)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if no_wait:
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
