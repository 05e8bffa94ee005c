"""The session ids an audit of the evidence log has seen (LOG.md section 6), kept on disk so memory stays flat."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

SQLITE_CACHE_KIB = 4096


class SessionIndex:
    """The session ids of the leaves read so far, in a private temporary SQLite database (deleted when closed).

    SQLite keeps at most ``SQLITE_CACHE_KIB`` of it in memory and the rest in its temporary file, so memory stays
    flat however many sessions the log holds; the file grows by about 30 bytes per session."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")
        self._db.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE logged (session BLOB PRIMARY KEY, leaf_index INTEGER NOT NULL) WITHOUT ROWID")
        self._db.execute("CREATE TABLE unlogged (name BLOB PRIMARY KEY) WITHOUT ROWID")

    def add(self, session_id: str, leaf_index: int) -> int | None:
        """Record a leaf's session; the index of an earlier leaf of the same session, if there is one."""
        key = uuid.UUID(session_id).bytes
        try:
            self._db.execute("INSERT INTO logged VALUES (?, ?)", (key, leaf_index))
        except sqlite3.IntegrityError:
            row = self._db.execute("SELECT leaf_index FROM logged WHERE session = ?", (key,)).fetchone()
            return int(row[0])
        return None

    def is_logged(self, session_id: str) -> bool:
        key = uuid.UUID(session_id).bytes
        return self._db.execute("SELECT 1 FROM logged WHERE session = ?", (key,)).fetchone() is not None

    def add_unlogged(self, name: bytes) -> None:
        """Record a file name as the file system gives it (bytes: a copy may hold names that are not UTF-8)."""
        self._db.execute("INSERT OR IGNORE INTO unlogged VALUES (?)", (name,))

    def unlogged(self) -> Iterator[bytes]:
        for (name,) in self._db.execute("SELECT name FROM unlogged ORDER BY name"):
            yield bytes(name)

    def close(self) -> None:
        self._db.close()
