"""The event-id index of the DynamoDB chain store: which event ids a session already holds, exactly, in one read.

Items ``I#<segment:08d>`` hold the first 4 bytes of each event id (a v4 UUID's random bits) at position
``sequence % 240``; 240 fingerprints keep a segment under 1 KB, one write unit. A segment is written after the batch
it indexes, so the index may lag the chain after a crash: readers compare events past it directly with the batches,
and the next ``extend_through`` fills the gap from them. A fingerprint hit is checked exactly against the stored
batch holding that sequence number.

Caching (the container's copy, ``_KnownIndex`` per session, least recently used first, bounded in fingerprints): a
full segment never changes again (a write only extends a segment of the length it read), so a warm container reads
only the open segment per append and checks ids against a set of the full segments' fingerprints, however long the
session is. The set is built only where ids are checked: the sealer, which only extends the index by the seal, keeps
4 bytes per event. The open segment is kept as last read or written: ``used`` refreshes it, ``extend_through`` starts
from it, and a stale copy only makes the conditional write fail and be retried after a fresh read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from agentops_server.aws.dynamodb_batches import BatchItems
from agentops_server.aws.dynamodb_table import ConditionFailedError, DynamoDBTable, n, parsed, s, session_pk
from agentops_server.store import StoredBatch, StoreUnavailableError

SEGMENT_PREFIX = "I#"
SEGMENT_SIZE = 240  # event-id fingerprints per index segment: 960 bytes + keys < 1 KB (one write unit)
FINGERPRINT_BYTES = 4
FULL_SEGMENT_BYTES = SEGMENT_SIZE * FINGERPRINT_BYTES
CACHED_FINGERPRINTS = 400_000  # fingerprints of full segments a container keeps (about 40 MB)
_EXTEND_ATTEMPTS = 3


def fingerprint(event_id: str) -> bytes:
    return bytes.fromhex(event_id[:8])


def segment_sk(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:08d}"


@dataclass
class _FullSegmentPrints:
    """The fingerprints of a session's full segments ``0 .. segments - 1`` as a set, for one lookup per id. Built
    only where ids are checked (ingest), not where the index is only extended (the sealer's seal)."""

    segments: int = 0
    prints: set[bytes] = field(default_factory=set)

    def fill(self, blobs: dict[int, bytes], full: int) -> None:
        while self.segments < full:
            blob = blobs[self.segments]
            self.prints.update(blob[offset : offset + FINGERPRINT_BYTES] for offset in range(0, len(blob), 4))
            self.segments += 1


@dataclass
class _KnownIndex:
    """This container's copy of one session's index: segments by number; ``0 .. full - 1`` are full (never change
    again)."""

    blobs: dict[int, bytes] = field(default_factory=dict)
    full: int = 0
    full_prints: _FullSegmentPrints = field(default_factory=_FullSegmentPrints)  # shared by a session's copies

    @property
    def coverage(self) -> int:
        """Sequence numbers ``[0, coverage)`` are indexed (segments are filled in order)."""
        covered = self.full * SEGMENT_SIZE
        for number in range(self.full, len(self.blobs) + 1):
            blob = self.blobs.get(number)
            if blob is None:
                return covered
            covered = number * SEGMENT_SIZE + len(blob) // FINGERPRINT_BYTES
            if len(blob) < FULL_SEGMENT_BYTES:
                return covered
        return covered

    def count_full_segments(self) -> int:
        """Advance ``full`` past the segments that have become full; the number of fingerprints that adds."""
        before = self.full
        while len(self.blobs.get(self.full, b"")) == FULL_SEGMENT_BYTES:
            self.full += 1
        return (self.full - before) * SEGMENT_SIZE


class EventIdIndex:
    def __init__(self, table: DynamoDBTable, batches: BatchItems) -> None:
        self._table = table
        self._batches = batches
        self._known: OrderedDict[str, _KnownIndex] = OrderedDict()
        self._cached_fingerprints = 0
        self._lock = threading.Lock()  # Lambda runs one request at a time; the local stack and tools may not

    def used(self, session_id: str, event_ids: Iterable[str], known_next_sequence: int | None = None) -> set[str]:
        """Which of ``event_ids`` the session holds (``ChainStore.used_event_ids``)."""
        wanted: dict[bytes, list[str]] = {}
        for event_id in event_ids:
            wanted.setdefault(fingerprint(event_id), []).append(event_id)
        if not wanted:
            return set()
        known = self._read(session_id)
        with self._lock:
            known.full_prints.fill(known.blobs, known.full)
            printed, prints = known.full_prints.segments, known.full_prints.prints
        candidates: set[int] = set()
        for number, blob in known.blobs.items():
            for print_ in wanted:
                if number < printed and print_ not in prints:
                    continue  # the common case on a long session: one set lookup instead of a scan per segment
                position = blob.find(print_)
                while position != -1:
                    if position % FINGERPRINT_BYTES == 0:
                        candidates.add(number * SEGMENT_SIZE + position // FINGERPRINT_BYTES)
                    position = blob.find(print_, position + 1)
        used: set[str] = set()
        checked: set[int] = set()
        for sequence in sorted(candidates):
            if sequence in checked:
                continue
            for batch in self._batches.covering(session_id, sequence, sequence + 1):
                checked.update(range(batch.first_sequence, batch.last_sequence + 1))
                used.update(event_id for event_id in batch.event_ids if fingerprint(event_id) in wanted)
        coverage = known.coverage
        if known_next_sequence is None or coverage < known_next_sequence:
            for batch in self._batches.covering(session_id, coverage, known_next_sequence):
                used.update(event_id for event_id in batch.event_ids if fingerprint(event_id) in wanted)
        return {event_id for ids in wanted.values() for event_id in ids if event_id in used}

    def extend_through(self, batch: StoredBatch) -> None:
        """Index the event ids up to ``batch``'s last, first filling any gap a crash left before it."""
        with self._lock:
            known = self._known.get(batch.session_id)
        for _attempt in range(_EXTEND_ATTEMPTS):
            if known is None:
                known = self._read(batch.session_id)
            coverage = known.coverage
            if coverage > batch.last_sequence:
                return
            ids: list[str] = []
            if coverage < batch.first_sequence:
                for missing in self._batches.covering(batch.session_id, coverage, batch.first_sequence):
                    ids.extend(missing.event_ids[max(0, coverage - missing.first_sequence) :])
            ids.extend(batch.event_ids[max(0, coverage - batch.first_sequence) :])
            try:
                self._write(batch.session_id, known, coverage, ids)
                return
            except ConditionFailedError:
                known = None  # another writer extended it first: read again and retry
        raise StoreUnavailableError(f"event-id index of {batch.session_id} kept changing")

    def _read(self, session_id: str) -> _KnownIndex:
        """The index as stored now: only segments not known to be full are read."""
        with self._lock:
            cached = self._known.get(session_id)
            fresh = (
                _KnownIndex(blobs=dict(cached.blobs), full=cached.full, full_prints=cached.full_prints)
                if cached
                else _KnownIndex()
            )
        items = self._table.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={
                ":pk": s(session_pk(session_id)),
                ":from": s(segment_sk(fresh.full)),
                ":to": s(SEGMENT_PREFIX + "~"),
            },
            ConsistentRead=True,
        )
        for item in items:
            number, blob = parsed(item, lambda item: (int(item["sk"]["S"][len(SEGMENT_PREFIX) :]), item["f"]["B"]))
            fresh.blobs[number] = blob
        self._remember(session_id, fresh)
        return fresh

    def _write(self, session_id: str, known: _KnownIndex, coverage: int, event_ids: list[str]) -> None:
        sequence = coverage
        remaining = event_ids
        blobs = dict(known.blobs)
        while remaining:
            number, offset = divmod(sequence, SEGMENT_SIZE)
            taken, remaining = remaining[: SEGMENT_SIZE - offset], remaining[SEGMENT_SIZE - offset :]
            old = blobs.get(number, b"")
            new = old + b"".join(fingerprint(event_id) for event_id in taken)
            condition = "attribute_not_exists(sk)" if not old else "size(f) = :old_length"
            arguments = {"ExpressionAttributeValues": {":old_length": n(len(old))}} if old else {}
            self._table.call(
                "put_item",
                Item={"pk": s(session_pk(session_id)), "sk": s(segment_sk(number)), "f": {"B": new}},
                ConditionExpression=condition,
                **arguments,
            )
            blobs[number] = new
            sequence += len(taken)
        self._remember(session_id, _KnownIndex(blobs=blobs, full=known.full, full_prints=known.full_prints))

    def _remember(self, session_id: str, known: _KnownIndex) -> None:
        with self._lock:
            cached = self._known.get(session_id)
            if cached is not None and cached.full > known.full:  # another thread learnt more meanwhile
                blobs = dict(cached.blobs)
                for number, blob in known.blobs.items():
                    if len(blob) > len(blobs.get(number, b"")):
                        blobs[number] = blob
                known = _KnownIndex(blobs=blobs, full=cached.full, full_prints=cached.full_prints)
            self._cached_fingerprints += known.count_full_segments()
            self._known[session_id] = known
            self._known.move_to_end(session_id)
            while self._cached_fingerprints > CACHED_FINGERPRINTS and len(self._known) > 1:
                _, evicted = self._known.popitem(last=False)
                self._cached_fingerprints -= evicted.full * SEGMENT_SIZE
