"""The DynamoDB ``ChainStore`` (docs/architecture.md "DynamoDB table").

Layout, chosen by ``benchmarks/ingest_cost.py`` (writes are billed per started KB, so bytes are the cost):

- batch ``B#<first_seq:012d>``: one conditional ``PutItem`` (``attribute_not_exists(sk)``) holding the batch's
  canonical event lines, LF-joined and LZMA2-compressed, plus the little an append needs to know about the chain's end
  (count, last event hash, owner, flags). Event ids and hashes are read back from the lines themselves, never stored
  twice. A batch whose compressed lines exceed one item is split into content-addressed chunk items
  ``C#<first_seq>#<sha256 prefix>#<n>`` written before the batch item, so the batch item stays the single decision.
- head ``HEAD``: owner, status, timestamps, seal outcome and the sparse ``SealDue`` keys. It is written when the
  status changes, not on every batch: the next sequence number and last hash come from the chain's tip, which is the
  authority anyway, so a plain append costs no head write and no index write.
- event-id index ``I#<segment:08d>``: the first 4 bytes of each event id (a v4 UUID's random bits) at position
  ``sequence % 240``; 240 fingerprints keep a segment under 1 KB, one write unit. Written after the batch, so it may
  lag the chain after a crash; readers fill the gap from the batches and writers repair it.
- signing key ``pk=KEY``, ``sk=<signer_key_id>``.
- session listing (API.md ``GET /v1/sessions``): the head carries, from its creation on, the keys of two sparse
  KEYS_ONLY indexes. ``SessionsByStart``: ``list_pk = LIST#<shard>``, ``list_sk = <started_at>#<session_id>``;
  ``SessionsByAgent``: ``agent_pk = AGENT#<sha256 of the agent id>#<shard>`` with the same ``list_sk``. The keys never
  change, and the later head updates touch no projected attribute, so each index costs one write per session. The
  shard (of ``LIST_SHARDS``, from a hash of the session id) spreads the creations of one moment over several index
  partitions; a listing reads every shard newest first and merges them (``list_sessions``).

Errors are translated by code: ``ConditionalCheckFailedException`` becomes the domain outcome of the call, throttling
codes ``StoreThrottledError``, anything else (and timeouts) ``StoreUnavailableError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.store import (
    STATUS_ENDED,
    STATUS_OPEN,
    STATUS_SEALED,
    STATUS_SEALING,
    ArchiveRef,
    ChainTip,
    ListPosition,
    SequenceConflictError,
    SessionExistsError,
    SessionHead,
    SessionListPage,
    SessionListQuery,
    SigningKeyRecord,
    StoredBatch,
    StoreThrottledError,
    StoreUnavailableError,
)

HEAD_SK = "HEAD"
KEYS_PK = "KEY"
SEAL_DUE_INDEX = "SealDue"
LIST_INDEX = "SessionsByStart"
AGENT_INDEX = "SessionsByAgent"
# An index partition takes about 1,000 writes a second; one write per session each, so four shards list up to about
# 4,000 new sessions a second, and a page costs four small queries.
LIST_SHARDS = 4
# A listing filtered by status reads each shard in pages of this many index entries, at most LIST_SHARD_PAGES of
# them per request; a sparse status then gives a short page with a next position instead of a long request.
LIST_FILTERED_PAGE = 200
LIST_SHARD_PAGES = 3
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
BATCH_GET_ATTEMPTS = 5  # unprocessed keys (throttling) are asked for again, with a short backoff, this many times
DUE_SHARDS = 4  # SealDue partitions; a session's shard is fixed by its id
SEGMENT_SIZE = 240  # event-id fingerprints per index segment: 960 bytes + keys < 1 KB (one write unit)
FINGERPRINT_BYTES = 4
MAX_BATCH_EVENTS = 500  # API.md; bounds how far before a sequence number the batch holding it can start
FULL_SEGMENT_CACHE_EVENTS = 400_000  # event ids of full index segments a container keeps (about 40 MB)
INLINE_LIMIT = 350_000  # compressed bytes kept in the batch item itself (DynamoDB items are at most 400 KB)
# Raw LZMA2, preset 6, 1 MiB dictionary (a whole batch). Measured on realistic 1 KB agent events, 50 per batch
# (benchmarks/ingest_cost.py): 9.5 KB per batch against 11.6 KB for zlib level 6 and 11.4 KB for level 9, i.e.
# two write units fewer per batch for about 7 ms of CPU, which costs a tenth of the units it saves. Raw format: the
# xz container's 60 bytes of headers and checks buy nothing here (the item is the unit of integrity).
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)
_SUMMARY_ATTRIBUTES = "sk, first_seq, event_count, last_hash, #owner, accepted_at, ends, seal"


class _ConditionFailedError(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


@dataclass
class _Segments:
    """The event-id index of one session as last read: fingerprints by segment number."""

    session_id: str
    blobs: dict[int, bytes]

    @property
    def coverage(self) -> int:
        """Sequence numbers ``[0, coverage)`` are indexed (the segments are filled in order)."""
        covered = 0
        for number in range(len(self.blobs) + 1):
            blob = self.blobs.get(number)
            if blob is None:
                return covered
            covered = number * SEGMENT_SIZE + len(blob) // FINGERPRINT_BYTES
            if len(blob) < SEGMENT_SIZE * FINGERPRINT_BYTES:
                return covered
        return covered


@dataclass(frozen=True)
class _ListShard:
    """One partition of a listing index: ``LIST#<shard>`` or ``AGENT#<hash>#<shard>``."""

    index: str
    partition_key: str
    partition: str


@dataclass
class _FullSegments:
    """A session's full index segments (0..n-1), which never change again, and the set of their fingerprints."""

    blobs: dict[int, bytes]
    prints: set[bytes]


def encode_lines(lines: tuple[bytes, ...]) -> bytes:
    """The stored form of a batch's canonical lines: LF-joined, compressed."""
    return lzma.compress(b"\n".join(lines), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)


def decode_lines(blob: bytes) -> tuple[bytes, ...]:
    return tuple(lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS).split(b"\n"))


def fingerprint(event_id: str) -> bytes:
    return bytes.fromhex(event_id[:8])


class DynamoDBChainStore:
    def __init__(self, client: Any, table_name: str, seal_idle_seconds: int = 3600) -> None:
        self._client = client
        self._table = table_name
        self._idle = timedelta(seconds=seal_idle_seconds)
        # The index segments read by the last used_event_ids, reused by the advance_head of the same append. A
        # stale copy is harmless: segment writes are conditional on the length they extend.
        self._segments: _Segments | None = None
        # Full (immutable) index segments by session, least recently used first; bounded in cached event ids.
        self._full_segments: OrderedDict[str, _FullSegments] = OrderedDict()
        self._full_segment_events = 0
        self._cache_lock = threading.Lock()  # Lambda runs one request at a time; the local stack and tools may not

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _call(self, operation: Callable[..., dict[str, Any]], **arguments: Any) -> dict[str, Any]:
        try:
            return operation(TableName=self._table, **arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailedError(error.response.get("Item")) from error
            if code in _THROTTLING_CODES:
                raise StoreThrottledError(code) from error
            raise StoreUnavailableError(code or "unknown DynamoDB error") from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error

    def _query_all(self, **arguments: Any) -> Iterator[dict[str, Any]]:
        while True:
            page = self._call(self._client.query, **arguments)
            yield from page.get("Items", [])
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            arguments["ExclusiveStartKey"] = last_key

    # --- sessions -----------------------------------------------------------------------------------------------
    def create_session(
        self, session_id: str, owner: str, started_at: datetime, agent_id: str | None = None
    ) -> SessionHead:
        # Indexed from creation: a crash between this and the first batch must not hide the session from the
        # sealer, which finds the truth with tail().
        item = {
            "pk": _s(_pk(session_id)),
            "sk": _s(HEAD_SK),
            "owner": _s(owner),
            "status": _s(STATUS_OPEN),
            "started_at": _s(format_timestamp(started_at)),
            "last_activity_at": _s(format_timestamp(started_at)),
            "due_shard": _s(_due_shard(session_id)),
            "due_at": _s(format_timestamp(started_at + self._idle)),
        }
        item.update(_listing_attributes(session_id, started_at, agent_id))
        try:
            self._call(
                self._client.put_item,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailedError as failed:
            existing = failed.item or self._head_item(session_id) or {}
            raise SessionExistsError(existing.get("owner", {}).get("S", "")) from failed
        return _head_from_item(session_id, item, None)

    def _head_item(self, session_id: str) -> dict[str, Any] | None:
        response = self._call(self._client.get_item, Key=_key(_pk(session_id), HEAD_SK), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def get_head(self, session_id: str) -> SessionHead | None:
        item = self._head_item(session_id)
        if item is None:
            return None
        return _head_from_item(session_id, item, self.tip(session_id))

    def advance_head(self, batch: StoredBatch) -> None:
        """Index the batch's event ids, then record a status change. The next sequence number, last hash and last
        activity are not written: ``get_head`` reads them from the tip."""
        self._index(batch)
        if batch.is_seal:
            self._update_head_status(batch.session_id, STATUS_SEALING, (STATUS_OPEN, STATUS_ENDED), {})
        elif batch.ends_session:
            ended_at = format_timestamp(batch.accepted_at)
            # Ended: due for sealing at once (due_at = the end), shard unchanged.
            self._update_head_status(
                batch.session_id,
                STATUS_ENDED,
                (STATUS_OPEN,),
                {"ended_at": ended_at, "last_activity_at": ended_at, "due_at": ended_at},
            )

    def _update_head_status(
        self, session_id: str, status: str, from_statuses: tuple[str, ...], attributes: dict[str, str]
    ) -> None:
        names = {"#status": "status"} | {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {":status": _s(status)} | {f":a{i}": _s(value) for i, value in enumerate(attributes.values())}
        values |= {f":from{i}": _s(previous) for i, previous in enumerate(from_statuses)}
        allowed = ", ".join(f":from{i}" for i in range(len(from_statuses)))
        assignments = ", ".join(["#status = :status", *(f"#a{i} = :a{i}" for i in range(len(attributes)))])
        try:
            self._call(
                self._client.update_item,
                Key=_key(_pk(session_id), HEAD_SK),
                UpdateExpression=f"SET {assignments}",
                ConditionExpression=f"attribute_exists(pk) AND #status IN ({allowed})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except _ConditionFailedError:
            return  # already at this status or later: statuses never move back

    # --- the chain ----------------------------------------------------------------------------------------------
    def put_batch(self, batch: StoredBatch) -> None:
        blob = encode_lines(batch.lines)
        item: dict[str, Any] = {
            "pk": _s(_pk(batch.session_id)),
            "sk": _s(_batch_sk(batch.first_sequence)),
            "first_seq": _n(batch.first_sequence),
            "event_count": _n(len(batch.lines)),
            "last_hash": _s(batch.last_event_hash),
            "owner": _s(batch.owner),
            "digest": _s(batch.request_digest),
            "accepted_at": _s(format_timestamp(batch.accepted_at)),
        }
        if batch.ends_session:
            item["ends"] = {"BOOL": True}
        if batch.is_seal:
            item["seal"] = {"BOOL": True}
        if len(blob) <= INLINE_LIMIT:
            item["events"] = {"B": blob}
        else:
            item["chunks"] = _n(self._put_chunks(batch, blob))
            item["blob_sha"] = _s(hashlib.sha256(blob).hexdigest())
        try:
            self._call(self._client.put_item, Item=item, ConditionExpression="attribute_not_exists(sk)")
        except _ConditionFailedError as failed:
            raise SequenceConflictError(f"a batch already starts at {batch.first_sequence}") from failed

    def _put_chunks(self, batch: StoredBatch, blob: bytes) -> int:
        # Content-addressed keys: a racing writer with other content writes other keys, so nothing is overwritten;
        # chunks of a batch that loses the race are unreferenced and never read.
        prefix = _chunk_prefix(batch.first_sequence, hashlib.sha256(blob).hexdigest())
        pieces = [blob[start : start + INLINE_LIMIT] for start in range(0, len(blob), INLINE_LIMIT)]
        for number, piece in enumerate(pieces):
            self._call(
                self._client.put_item,
                Item={"pk": _s(_pk(batch.session_id)), "sk": _s(f"{prefix}{number:04d}"), "data": {"B": piece}},
            )
        return len(pieces)

    def tip(self, session_id: str) -> ChainTip | None:
        response = self._call(
            self._client.query,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
            ExpressionAttributeValues={":pk": _s(_pk(session_id)), ":batch": _s("B#")},
            ExpressionAttributeNames={"#owner": "owner"},
            ProjectionExpression=_SUMMARY_ATTRIBUTES,
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return _tip_from_item(session_id, items[0]) if items else None

    def tail(self, session_id: str) -> StoredBatch | None:
        response = self._call(
            self._client.query,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
            ExpressionAttributeValues={":pk": _s(_pk(session_id)), ":batch": _s("B#")},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return self._batch_from_item(session_id, items[0]) if items else None

    def get_batch(self, session_id: str, first_sequence: int) -> StoredBatch | None:
        response = self._call(
            self._client.get_item, Key=_key(_pk(session_id), _batch_sk(first_sequence)), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._batch_from_item(session_id, item)

    def _batches_from(
        self, session_id: str, from_sequence: int, to_sequence: int | None = None
    ) -> Iterator[StoredBatch]:
        """Batches holding any sequence number in ``[from_sequence, to_sequence)``, in order, one page at a time."""
        start = max(0, from_sequence - MAX_BATCH_EVENTS + 1)
        end = _batch_sk(to_sequence - 1) if to_sequence is not None else "B#~"
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={
                ":pk": _s(_pk(session_id)),
                ":from": _s(_batch_sk(start)),
                ":to": _s(end),
            },
            ConsistentRead=True,
        )
        for item in items:
            first = int(item["first_seq"]["N"])
            if first + int(item["event_count"]["N"]) > from_sequence:
                yield self._batch_from_item(session_id, item)

    def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
        for batch in self._batches_from(session_id, from_sequence):
            skip = max(0, from_sequence - batch.first_sequence)
            yield from batch.lines[skip:]

    def _batch_from_item(self, session_id: str, item: dict[str, Any]) -> StoredBatch:
        blob = item["events"]["B"] if "events" in item else self._read_chunks(session_id, item)
        lines = decode_lines(blob)
        # The ids and hashes are read back from the canonical lines: stored once, never rebuilt from DynamoDB types.
        parsed = [json.loads(line) for line in lines]
        tip = _tip_from_item(session_id, item)
        return StoredBatch(
            session_id=session_id,
            first_sequence=tip.first_sequence,
            lines=lines,
            event_ids=tuple(event["event_id"] for event in parsed),
            event_hashes=tuple(event["event_hash"] for event in parsed),
            owner=tip.owner,
            request_digest=item["digest"]["S"],
            accepted_at=tip.accepted_at,
            ends_session=tip.ends_session,
            is_seal=tip.is_seal,
        )

    def _read_chunks(self, session_id: str, item: dict[str, Any]) -> bytes:
        expected_sha = item["blob_sha"]["S"]
        prefix = _chunk_prefix(int(item["first_seq"]["N"]), expected_sha)
        pieces = [
            chunk["data"]["B"]
            for chunk in self._query_all(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": _s(_pk(session_id)), ":prefix": _s(prefix)},
                ConsistentRead=True,
            )
        ]
        blob = b"".join(pieces)
        if len(pieces) != int(item["chunks"]["N"]) or hashlib.sha256(blob).hexdigest() != expected_sha:
            raise StoreUnavailableError(f"batch {item['sk']['S']} of {session_id} has missing or damaged chunks")
        return blob

    # --- event-id index -----------------------------------------------------------------------------------------
    def _read_segments(self, session_id: str) -> _Segments:
        """The session's index, reading from DynamoDB only the segments not known to be full. A full segment never
        changes again (writes only extend a segment of the length they read), so the container keeps them: a warm
        container reads one segment per append however long the session is."""
        cached = self._full_segments.get(session_id)
        known = cached.blobs if cached is not None else {}
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={
                ":pk": _s(_pk(session_id)),
                ":from": _s(_segment_sk(len(known))),
                ":to": _s("I#~"),
            },
            ConsistentRead=True,
        )
        blobs = dict(known)
        blobs.update({int(item["sk"]["S"][2:]): item["f"]["B"] for item in items})
        segments = _Segments(session_id, blobs)
        self._remember_full(segments)
        self._segments = segments
        return segments

    def _remember_full(self, segments: _Segments) -> None:
        with self._cache_lock:
            known = self._full_segments.setdefault(segments.session_id, _FullSegments({}, set()))
            while len(segments.blobs.get(len(known.blobs), b"")) == SEGMENT_SIZE * FINGERPRINT_BYTES:
                blob = segments.blobs[len(known.blobs)]
                known.prints.update(blob[offset : offset + FINGERPRINT_BYTES] for offset in range(0, len(blob), 4))
                known.blobs[len(known.blobs)] = blob
                self._full_segment_events += SEGMENT_SIZE
            self._full_segments.move_to_end(segments.session_id)
            while self._full_segment_events > FULL_SEGMENT_CACHE_EVENTS and len(self._full_segments) > 1:
                _, evicted = self._full_segments.popitem(last=False)
                self._full_segment_events -= len(evicted.blobs) * SEGMENT_SIZE

    def used_event_ids(
        self, session_id: str, event_ids: Iterable[str], known_next_sequence: int | None = None
    ) -> set[str]:
        wanted: dict[bytes, list[str]] = {}
        for event_id in event_ids:
            wanted.setdefault(fingerprint(event_id), []).append(event_id)
        if not wanted:
            return set()
        segments = self._read_segments(session_id)
        full = self._full_segments.get(session_id)
        used: set[str] = set()
        candidates: set[int] = set()
        for number, blob in segments.blobs.items():
            in_full = full is not None and number < len(full.blobs)
            for print_ in wanted:
                if in_full and full is not None and print_ not in full.prints:
                    continue  # the common case on a long session: one set lookup instead of a scan per segment
                position = blob.find(print_)
                while position != -1:
                    if position % FINGERPRINT_BYTES == 0:
                        candidates.add(number * SEGMENT_SIZE + position // FINGERPRINT_BYTES)
                    position = blob.find(print_, position + 1)
        # A fingerprint hit is checked exactly against the stored batch holding that sequence number.
        checked: set[int] = set()
        for sequence in sorted(candidates):
            if sequence in checked:
                continue
            for batch in self._batches_from(session_id, sequence, sequence + 1):
                checked.update(range(batch.first_sequence, batch.last_sequence + 1))
                used.update(event_id for event_id in batch.event_ids if fingerprint(event_id) in wanted)
        # Events past the index (it lags the chain after a crash) are compared directly.
        coverage = segments.coverage
        if known_next_sequence is None or coverage < known_next_sequence:
            for batch in self._batches_from(session_id, coverage, known_next_sequence):
                used.update(event_id for event_id in batch.event_ids if fingerprint(event_id) in wanted)
        return {event_id for ids in wanted.values() for event_id in ids if event_id in used}

    def _index(self, batch: StoredBatch) -> None:
        """Extend the event-id index through ``batch``, first filling any gap a crash left before it."""
        for _attempt in range(3):
            segments = self._segments
            if segments is None or segments.session_id != batch.session_id:
                segments = self._read_segments(batch.session_id)
            coverage = segments.coverage
            if coverage > batch.last_sequence:
                return
            ids: list[str] = []
            if coverage < batch.first_sequence:
                for missing in self._batches_from(batch.session_id, coverage, batch.first_sequence):
                    skip = max(0, coverage - missing.first_sequence)
                    ids.extend(missing.event_ids[skip:])
            ids.extend(batch.event_ids[max(0, coverage - batch.first_sequence) :])
            try:
                self._extend_index(segments, coverage, ids)
                return
            except _ConditionFailedError:
                self._segments = None  # another writer extended it first: read again and retry
        raise StoreUnavailableError(f"event-id index of {batch.session_id} kept changing")

    def _extend_index(self, segments: _Segments, coverage: int, event_ids: list[str]) -> None:
        sequence = coverage
        remaining = event_ids
        while remaining:
            number, offset = divmod(sequence, SEGMENT_SIZE)
            room = SEGMENT_SIZE - offset
            taken, remaining = remaining[:room], remaining[room:]
            old = segments.blobs.get(number, b"")
            new = old + b"".join(fingerprint(event_id) for event_id in taken)
            condition = "attribute_not_exists(sk)" if not old else "size(f) = :old_length"
            arguments: dict[str, Any] = {}
            if old:
                arguments["ExpressionAttributeValues"] = {":old_length": _n(len(old))}
            self._call(
                self._client.put_item,
                Item={"pk": _s(_pk(segments.session_id)), "sk": _s(_segment_sk(number)), "f": {"B": new}},
                ConditionExpression=condition,
                **arguments,
            )
            segments.blobs[number] = new
            sequence += len(taken)
        self._remember_full(segments)

    # --- sealing ------------------------------------------------------------------------------------------------
    def due_for_sealing(self, now: datetime, limit: int) -> list[str]:
        """Due sessions, oldest first. An open session's ``due_at`` is a lower bound (appends do not move it, which
        would cost an index write per batch): a candidate that turns out to be active gets its real due time now."""
        cutoff = format_timestamp(now)
        candidates: list[tuple[str, str]] = []
        for shard in range(DUE_SHARDS):
            for item in self._query_all(
                IndexName=SEAL_DUE_INDEX,
                KeyConditionExpression="due_shard = :shard AND due_at <= :now",
                ExpressionAttributeValues={":shard": _s(str(shard)), ":now": _s(cutoff)},
            ):
                candidates.append((item["due_at"]["S"], item["pk"]["S"][2:]))
        due: list[str] = []
        for due_at, session_id in sorted(candidates):
            if len(due) >= limit:
                break
            if self._confirm_due(session_id, due_at, now):
                due.append(session_id)
        return due

    def _confirm_due(self, session_id: str, indexed_due_at: str, now: datetime) -> bool:
        item = self._head_item(session_id)
        if item is None or "due_at" not in item:
            return False
        status = item["status"]["S"]
        if status != STATUS_OPEN:
            return status in (STATUS_ENDED, STATUS_SEALING)
        tip = self.tip(session_id)
        if tip is not None and (tip.ends_session or tip.is_seal):
            return True  # the head missed the end (a crash after the write): the sealer repairs it
        last_activity = parse_timestamp(item["last_activity_at"]["S"])
        if tip is not None:
            last_activity = max(last_activity, tip.accepted_at)
        real_due = last_activity + self._idle
        if real_due <= now:
            return True
        # A failed condition means the session ended or was refreshed meanwhile: the index is right already.
        with contextlib.suppress(_ConditionFailedError):
            self._call(
                self._client.update_item,
                Key=_key(_pk(session_id), HEAD_SK),
                UpdateExpression="SET due_at = :due, last_activity_at = :activity",
                ConditionExpression="#status = :open AND due_at = :indexed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":due": _s(format_timestamp(real_due)),
                    ":activity": _s(format_timestamp(last_activity)),
                    ":open": _s(STATUS_OPEN),
                    ":indexed": _s(indexed_due_at),
                },
            )
        return False

    def mark_sealing(self, session_id: str) -> None:
        self._update_head_status(session_id, STATUS_SEALING, (STATUS_OPEN, STATUS_ENDED), {})

    def mark_sealed(
        self,
        session_id: str,
        archive: ArchiveRef,
        sealed_at: datetime,
        evidence_class: str,
        partial_reasons: tuple[str, ...],
    ) -> None:
        self._call(
            self._client.update_item,
            Key=_key(_pk(session_id), HEAD_SK),
            UpdateExpression=(
                "SET #status = :sealed, #archive = :archive, sealed_at = if_not_exists(sealed_at, :sealed_at), "
                "evidence_class = :class, partial_reasons = :reasons REMOVE due_shard, due_at"
            ),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status", "#archive": "archive"},
            ExpressionAttributeValues={
                ":sealed": _s(STATUS_SEALED),
                ":archive": {
                    "M": {
                        "bucket": _s(archive.bucket),
                        "key": _s(archive.key),
                        "version_id": _s(archive.version_id),
                        "sha256": _s(archive.sha256),
                    }
                },
                ":sealed_at": _s(format_timestamp(sealed_at)),
                ":class": _s(evidence_class),
                ":reasons": {"L": [_s(reason) for reason in partial_reasons]},
            },
        )

    def refuse_seal(self, session_id: str, reason: str) -> None:
        self._call(
            self._client.update_item,
            Key=_key(_pk(session_id), HEAD_SK),
            UpdateExpression="SET seal_refused_reason = :reason REMOVE due_shard, due_at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":reason": _s(reason)},
        )

    # --- signing keys -------------------------------------------------------------------------------------------
    def record_signing_key(self, record: SigningKeyRecord) -> None:
        try:
            self._call(
                self._client.put_item,
                Item={
                    "pk": _s(KEYS_PK),
                    "sk": _s(record.signer_key_id),
                    "algorithm": _s(record.algorithm),
                    "public_key_pem": _s(record.public_key_pem),
                    "first_used_at": _s(format_timestamp(record.first_used_at)),
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except _ConditionFailedError:
            return  # the first record of a key wins: it keeps first_used_at

    def signing_keys(self) -> list[SigningKeyRecord]:
        records = [
            SigningKeyRecord(
                signer_key_id=item["sk"]["S"],
                algorithm=item["algorithm"]["S"],
                public_key_pem=item["public_key_pem"]["S"],
                first_used_at=parse_timestamp(item["first_used_at"]["S"]),
            )
            for item in self._query_all(
                KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": _s(KEYS_PK)}, ConsistentRead=True
            )
        ]
        return sorted(records, key=lambda record: (record.first_used_at, record.signer_key_id))

    # --- listing ------------------------------------------------------------------------------------------------
    def list_sessions(self, query: SessionListQuery) -> SessionListPage:
        """Each shard is read newest first until it holds ``limit`` admitted heads, ends, or its page budget is spent;
        the shards' heads are merged. A shard left unfinished is read down to its frontier (the last index entry it
        examined), so only heads at or above the highest frontier are certain to be in order: the page stops there,
        and the next one starts there."""
        lower, upper = _list_bounds(query)
        if lower > upper:
            return SessionListPage((), None)
        if query.agent_id is None:
            shards = [_ListShard(LIST_INDEX, "list_pk", f"LIST#{shard}") for shard in range(LIST_SHARDS)]
        else:
            agent_id = query.agent_id
            shards = [_ListShard(AGENT_INDEX, "agent_pk", _agent_partition(agent_id, n)) for n in range(LIST_SHARDS)]
        found: list[SessionHead] = []
        frontiers: list[ListPosition] = []
        for shard in shards:
            heads, frontier = self._list_shard(shard, lower, upper, query)
            found.extend(heads)
            if frontier is not None:
                frontiers.append(frontier)
        found.sort(key=ListPosition.of, reverse=True)
        floor = max(frontiers) if frontiers else None
        if floor is not None:
            found = [head for head in found if ListPosition.of(head) >= floor]
        page = tuple(found[: query.limit])
        if len(found) > query.limit or (floor is not None and len(page) == query.limit):
            return SessionListPage(page, ListPosition.of(page[-1]))
        return SessionListPage(page, floor)

    def _list_shard(
        self, shard: _ListShard, lower: str, upper: str, query: SessionListQuery
    ) -> tuple[list[SessionHead], ListPosition | None]:
        """The admitted heads of one shard, newest first, and its frontier (None when the shard was read to its
        end). Index entries are only candidates: every head is read and checked with ``query.admits``."""
        arguments: dict[str, Any] = {
            "IndexName": shard.index,
            "KeyConditionExpression": "#partition = :partition AND list_sk BETWEEN :lower AND :upper",
            "ExpressionAttributeNames": {"#partition": shard.partition_key},
            "ExpressionAttributeValues": {
                ":partition": _s(shard.partition),
                ":lower": _s(lower),
                ":upper": _s(upper),
            },
            "ScanIndexForward": False,
            # One more than needed: the previous page's last head is within the bounds and read again.
            "Limit": 1 + (query.limit if query.status is None else LIST_FILTERED_PAGE),
        }
        admitted: list[SessionHead] = []
        pages = 0
        while True:
            response = self._call(self._client.query, **arguments)
            pages += 1
            session_ids = [item["pk"]["S"][2:] for item in response.get("Items", [])]
            admitted.extend(head for head in self._heads_of(session_ids) if query.admits(head))
            last_key: dict[str, Any] | None = response.get("LastEvaluatedKey")
            if not last_key:
                return admitted, None
            if len(admitted) >= query.limit or pages == LIST_SHARD_PAGES:
                return admitted, _position_of_list_sk(last_key["list_sk"]["S"])
            arguments["ExclusiveStartKey"] = last_key

    def _heads_of(self, session_ids: list[str]) -> list[SessionHead]:
        """The heads of these sessions as recorded (the chain's tip is not read), in the order given."""
        items: dict[str, dict[str, Any]] = {}
        for start in range(0, len(session_ids), BATCH_GET_LIMIT):
            keys = [_key(_pk(session_id), HEAD_SK) for session_id in session_ids[start : start + BATCH_GET_LIMIT]]
            request: dict[str, Any] = {self._table: {"Keys": keys}}
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._call_batch_get(request)
                for item in response.get("Responses", {}).get(self._table, []):
                    items[item["pk"]["S"][2:]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            if request:
                raise StoreThrottledError("BatchGetItem left keys unprocessed")
        found = [session_id for session_id in session_ids if session_id in items]
        return [_head_from_item(session_id, items[session_id], None) for session_id in found]

    def _call_batch_get(self, request_items: dict[str, Any]) -> dict[str, Any]:
        # BatchGetItem names its table inside the request, so it does not go through _call's TableName.
        try:
            response: dict[str, Any] = self._client.batch_get_item(RequestItems=request_items)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _THROTTLING_CODES:
                raise StoreThrottledError(code) from error
            raise StoreUnavailableError(code or "unknown DynamoDB error") from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error
        return response


# --- item encoding ----------------------------------------------------------------------------------------------
def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _pk(session_id: str) -> str:
    return f"S#{session_id}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": _s(pk), "sk": _s(sk)}


def _batch_sk(first_sequence: int) -> str:
    return f"B#{first_sequence:012d}"


def _segment_sk(number: int) -> str:
    return f"I#{number:08d}"


def _chunk_prefix(first_sequence: int, blob_sha: str) -> str:
    return f"C#{first_sequence:012d}#{blob_sha[:16]}#"


def _due_shard(session_id: str) -> str:
    return str(int(session_id[:8], 16) % DUE_SHARDS)


def _list_time(moment: datetime) -> str:
    """``format_timestamp`` with a four-digit year whatever the year, so every ``list_sk`` sorts in time order."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc:-%m-%dT%H:%M:%S.%f}Z"


def _list_sk(started_at: datetime, session_id: str) -> str:
    return f"{_list_time(started_at)}#{session_id}"


def _position_of_list_sk(list_sk: str) -> ListPosition:
    started_at, session_id = list_sk.split("#")
    return ListPosition(parse_timestamp(started_at), session_id)


def _list_shard(session_id: str) -> int:
    # A hash, not the id's own digits: session ids are chosen by clients.
    return int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16) % LIST_SHARDS


def _agent_partition(agent_id: str, shard: int) -> str:
    # Hashed: an agent id may be longer than a key may be (2 KB) and may contain "#".
    return f"AGENT#{hashlib.sha256(agent_id.encode('utf-8', 'surrogatepass')).hexdigest()}#{shard}"


def _listing_attributes(session_id: str, started_at: datetime, agent_id: str | None) -> dict[str, Any]:
    """The head's keys in the listing indexes (module docstring), written once, at creation."""
    shard = _list_shard(session_id)
    attributes = {"list_pk": _s(f"LIST#{shard}"), "list_sk": _s(_list_sk(started_at, session_id))}
    if agent_id is not None:
        attributes |= {"agent_id": _s(agent_id), "agent_pk": _s(_agent_partition(agent_id, shard))}
    return attributes


def _list_bounds(query: SessionListQuery) -> tuple[str, str]:
    """Inclusive ``list_sk`` bounds for the index query; ``query.admits`` settles the exclusive edges. "#" sorts
    before every character of a session id and "~" after, so ``<time>#`` and ``<time>#~`` fence off one instant."""
    lower = f"{_list_time(query.started_after)}#~" if query.started_after is not None else "0"
    uppers = ["~"]
    if query.started_before is not None:
        uppers.append(f"{_list_time(query.started_before)}#")
    if query.older_than is not None:
        uppers.append(_list_sk(query.older_than.started_at, query.older_than.session_id))
    return lower, min(uppers)


def _tip_from_item(session_id: str, item: dict[str, Any]) -> ChainTip:
    first = int(item["first_seq"]["N"])
    return ChainTip(
        session_id=session_id,
        first_sequence=first,
        last_sequence=first + int(item["event_count"]["N"]) - 1,
        last_event_hash=item["last_hash"]["S"],
        owner=item["owner"]["S"],
        accepted_at=parse_timestamp(item["accepted_at"]["S"]),
        ends_session=item.get("ends", {}).get("BOOL", False),
        is_seal=item.get("seal", {}).get("BOOL", False),
    )


def _optional_time(item: dict[str, Any], name: str) -> datetime | None:
    return parse_timestamp(item[name]["S"]) if name in item else None


def _head_from_item(session_id: str, item: dict[str, Any], tip: ChainTip | None) -> SessionHead:
    last_activity = parse_timestamp(item["last_activity_at"]["S"])
    archive = item.get("archive", {}).get("M")
    return SessionHead(
        session_id=session_id,
        owner=item["owner"]["S"],
        status=item["status"]["S"],
        next_sequence_number=0 if tip is None else tip.last_sequence + 1,
        last_event_hash=None if tip is None else tip.last_event_hash,
        started_at=parse_timestamp(item["started_at"]["S"]),
        last_activity_at=last_activity if tip is None else max(last_activity, tip.accepted_at),
        ended_at=_optional_time(item, "ended_at"),
        sealed_at=_optional_time(item, "sealed_at"),
        archive=None
        if archive is None
        else ArchiveRef(
            bucket=archive["bucket"]["S"],
            key=archive["key"]["S"],
            version_id=archive["version_id"]["S"],
            sha256=archive["sha256"]["S"],
        ),
        evidence_class=item.get("evidence_class", {}).get("S"),
        partial_reasons=tuple(reason["S"] for reason in item.get("partial_reasons", {}).get("L", [])),
        seal_refused_reason=item.get("seal_refused_reason", {}).get("S"),
        agent_id=item.get("agent_id", {}).get("S"),
    )
