"""The evidence log on the server (LOG.md sections 2 to 5): the sealer publishes it, the API serves proofs from it.

The tree, tiles, leaves and note format are the verifier library's; this module decides what goes into the log and
when, over three small interfaces: ``LogStateStore`` (the log's state and each session's place in it, in the table),
``LogObjects`` (tiles, entry bundles and the checkpoint under ``log/`` in the Object Lock bucket, and the archives the
leaves describe) and the sealer's ``Signer``. Adapters: ``aws.evidence_log_dynamodb``, ``aws.evidence_log_s3`` and
``evidence_log_memory``.

Storage (docs/architecture.md "Evidence log"):

- ``log/tile/...`` and ``log/tile/entries/...``: C2SP tlog-tiles, written once (``If-None-Match``); a rewrite must
  carry the same bytes. ``log/checkpoint``: the latest signed checkpoint, replaced at each publication with
  ``If-Match`` on the version it replaces; the bucket keeps every version, locked.
- In the table, ``LOG``/``STATE``: the log's size, root hash and the session ids of the leaves assigned since the
  published checkpoint (``batch_start`` .. ``size - 1``). Per session, ``S#<id>``/``LOG``: first the durable
  "archived, not yet logged" marker (in the sparse ``LogPending`` index), then its leaf index.

This module holds what both sides share: the storage layout's names, the errors, the log's state and the interfaces.
The sealer's side is ``evidence_log_publisher``, the API's side ``evidence_log_reader``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from agentops_verify import HASH_SIZE

from agentops_server.store import StoreUnavailableError

LOG_PREFIX = "log/"
CHECKPOINT_PATH = "checkpoint"
ALARM_LOG_INTEGRITY = "LOG_INTEGRITY"
# One state write is one DynamoDB transaction of at most 100 items: the state and up to 99 sessions.
MAX_LEAVES_PER_PUBLICATION = 99
# Leaves assigned but not yet under a checkpoint, which the state item lists; bounded far below its 400 KB.
MAX_UNPUBLISHED_LEAVES = 2000


# --- errors ---------------------------------------------------------------------------------------------------------
class LogError(Exception):
    """Base class of the evidence log's errors on the server."""


class LogIntegrityError(LogError):
    """The stored log disagrees with itself or with its last checkpoint (a forged state, an edited or missing tile,
    a foreign object at a log path). Publication stops and the integrity alarm is raised; nothing is signed."""


class LogObjectConflictError(LogIntegrityError):
    """A write-once log object exists with other bytes. It is never overwritten."""


class LogObjectMissingError(LogError):
    """A log object that should exist does not."""


class LogUnavailableError(LogError, StoreUnavailableError):
    """S3 failed or timed out; nothing is known to be written. The next run retries (the API answers 503)."""


class LogStateConflictError(LogError):
    """The state write lost: another sealer advanced the log first, or some of the sessions have a leaf already."""

    def __init__(self, message: str, already_logged: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.already_logged = frozenset(already_logged)


# --- what the log is stored in ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogState:
    """The log as decided: ``size`` leaves with root ``root_hash``; ``batch`` are the session ids of leaves
    ``batch_start`` .. ``size - 1``, the ones the last state write assigned beyond the checkpoint it had read."""

    size: int
    root_hash: bytes
    batch_start: int
    batch: tuple[str, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.batch_start <= self.size or len(self.batch) != self.size - self.batch_start:
            raise LogIntegrityError(
                f"the log state lists {len(self.batch)} sessions from leaf {self.batch_start} for size {self.size}"
            )
        if len(self.root_hash) != HASH_SIZE:
            raise LogIntegrityError(f"the log state's root hash is {len(self.root_hash)} bytes long")


@dataclass(frozen=True)
class PendingSession:
    """A session archived but not yet logged; ``queued_at`` (RFC 3339, fixed width) orders the log."""

    session_id: str
    queued_at: str


@dataclass(frozen=True)
class StoredCheckpoint:
    """``log/checkpoint`` as read: the signed note and the version tag a conditional replacement names."""

    note: bytes
    version_tag: str


class LeafIndex(Protocol):
    def leaf_index(self, session_id: str) -> int | None:
        """The session's leaf index as the table records it (untrusted: callers check it against the tiles)."""
        ...


class LogStateStore(LeafIndex, Protocol):
    def log_state(self) -> LogState | None:
        """The state, read strongly consistently; None before the first leaf."""
        ...

    def advance_log(self, previous: LogState | None, new: LogState, logged: Sequence[str]) -> None:
        """One conditional write: the state becomes ``new``, and ``logged[i]`` gets leaf index ``previous.size + i``
        and leaves the pending index, iff the state is still ``previous`` and none of ``logged`` has a leaf index.
        Otherwise ``LogStateConflictError`` naming the sessions already logged; nothing is written."""
        ...

    def enqueue_for_log(self, session_id: str, queued_at: str) -> None:
        """The durable "archived, not yet logged" marker. Does nothing when the session has a marker or a leaf."""
        ...

    def pending_for_log(self, limit: int) -> list[PendingSession]:
        """Up to ``limit`` marked sessions, oldest first (an index: may lag the markers by a moment)."""
        ...

    def requeue_for_log(self, session_id: str, queued_at: str) -> None:
        """Move a session's marker behind the others (``queued_at`` becomes its time); nothing when it has none."""
        ...


class LogReadObjects(Protocol):
    def read(self, path: str) -> bytes:
        """The object ``log/<path>``; ``LogObjectMissingError`` when absent, ``LogUnavailableError`` on failure."""
        ...

    def latest_checkpoint(self) -> StoredCheckpoint | None: ...


class LogObjects(LogReadObjects, Protocol):
    def write_once(self, path: str, data: bytes) -> None:
        """Create ``log/<path>`` unless it exists; existing with the same bytes is success, with other bytes
        ``LogObjectConflictError``."""
        ...

    def replace_checkpoint(self, note: bytes, replaces: StoredCheckpoint | None) -> bool:
        """Write ``log/checkpoint`` iff its current version is ``replaces`` (none when None); False otherwise."""
        ...

    def archived_chain(self, session_id: str) -> Iterator[bytes] | None:
        """The bytes of the session's archive object (``sessions/<id>.jsonl``) in chunks; None when absent."""
        ...


@dataclass(frozen=True)
class Publication:
    """What one run published: the checkpoint's size and root, and the sessions it added."""

    size: int
    root_hash: bytes
    appended: tuple[str, ...]
