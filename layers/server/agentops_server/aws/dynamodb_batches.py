"""Batch items of the DynamoDB chain store: the chain itself (docs/architecture.md "DynamoDB table").

- batch ``B#<first_seq:012d>``: one conditional ``PutItem`` (``attribute_not_exists(sk)``) holding the batch's
  canonical event lines, LF-joined and LZMA2-compressed, plus the little an append needs to know about the chain's end
  (count, last event hash, owner, flags, the session's canonical bytes so far in ``total_bytes``). Event ids and
  hashes are read back from the lines themselves, never stored twice.
- chunk ``C#<first_seq>#<sha256 prefix>#<n>``: a batch whose compressed lines exceed one item is split into
  content-addressed chunk items written before the batch item, so the batch item stays the single decision.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Iterator

from agentops_server.aws.dynamodb_table import (
    ConditionFailedError,
    DynamoDBTable,
    Item,
    item_key,
    n,
    parsed,
    s,
    session_pk,
)
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.store import ChainTip, SequenceConflictError, StoredBatch, StoreUnavailableError

BATCH_PREFIX = "B#"
CHUNK_PREFIX = "C#"
MAX_BATCH_EVENTS = 500  # API.md; bounds how far before a sequence number the batch holding it can start
INLINE_LIMIT = 350_000  # compressed bytes kept in the batch item itself (DynamoDB items are at most 400 KB)
# Raw LZMA2, preset 6, 1 MiB dictionary (a whole batch). Measured on realistic 1 KB agent events, 50 per batch
# (benchmarks/ingest_cost.py): 9.5 KB per batch against 11.6 KB for zlib level 6 and 11.4 KB for level 9, i.e.
# two write units fewer per batch for about 7 ms of CPU, which costs a tenth of the units it saves. Raw format: the
# xz container's 60 bytes of headers and checks buy nothing here (the item is the unit of integrity).
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
_SUMMARY_ATTRIBUTES = "pk, sk, first_seq, event_count, last_hash, #owner, accepted_at, ends, seal, total_bytes"


def encode_lines(lines: tuple[bytes, ...]) -> bytes:
    """The stored form of a batch's canonical lines: LF-joined, compressed."""
    return lzma.compress(b"\n".join(lines), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)


def decode_lines(blob: bytes) -> tuple[bytes, ...]:
    return tuple(lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS).split(b"\n"))


def batch_sk(first_sequence: int) -> str:
    return f"{BATCH_PREFIX}{first_sequence:012d}"


class BatchItems:
    """Writes and reads a session's batches; every read is strongly consistent (batches are the authority)."""

    def __init__(self, table: DynamoDBTable) -> None:
        self._table = table

    def put(self, batch: StoredBatch) -> None:
        """Store ``batch`` iff no batch starts at its first sequence number; else ``SequenceConflictError``."""
        blob = encode_lines(batch.lines)
        item: Item = {
            "pk": s(session_pk(batch.session_id)),
            "sk": s(batch_sk(batch.first_sequence)),
            "first_seq": n(batch.first_sequence),
            "event_count": n(len(batch.lines)),
            "last_hash": s(batch.last_event_hash),
            "owner": s(batch.owner),
            "digest": s(batch.request_digest),
            "accepted_at": s(format_timestamp(batch.accepted_at)),
            "total_bytes": n(batch.session_bytes),
        }
        if batch.ends_session:
            item["ends"] = {"BOOL": True}
        if batch.is_seal:
            item["seal"] = {"BOOL": True}
        if len(blob) <= INLINE_LIMIT:
            item["events"] = {"B": blob}
        else:
            item["chunks"] = n(self._put_chunks(batch, blob))
            item["blob_sha"] = s(hashlib.sha256(blob).hexdigest())
        try:
            self._table.call("put_item", Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ConditionFailedError as failed:
            raise SequenceConflictError(f"a batch already starts at {batch.first_sequence}") from failed

    def _put_chunks(self, batch: StoredBatch, blob: bytes) -> int:
        # Content-addressed keys: a racing writer with other content writes other keys, so nothing is overwritten;
        # chunks of a batch that loses the race are unreferenced and never read.
        prefix = _chunk_prefix(batch.first_sequence, hashlib.sha256(blob).hexdigest())
        pieces = [blob[start : start + INLINE_LIMIT] for start in range(0, len(blob), INLINE_LIMIT)]
        for number, piece in enumerate(pieces):
            self._table.call(
                "put_item",
                Item={"pk": s(session_pk(batch.session_id)), "sk": s(f"{prefix}{number:04d}"), "data": {"B": piece}},
            )
        return len(pieces)

    def tip(self, session_id: str) -> ChainTip | None:
        response = self._table.call(
            "query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
            ExpressionAttributeValues={":pk": s(session_pk(session_id)), ":batch": s(BATCH_PREFIX)},
            ExpressionAttributeNames={"#owner": "owner"},
            ProjectionExpression=_SUMMARY_ATTRIBUTES,
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return parsed(items[0], lambda item: _tip_from_item(session_id, item)) if items else None

    def tail(self, session_id: str) -> StoredBatch | None:
        response = self._table.call(
            "query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
            ExpressionAttributeValues={":pk": s(session_pk(session_id)), ":batch": s(BATCH_PREFIX)},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return self._batch_from_item(session_id, items[0]) if items else None

    def get(self, session_id: str, first_sequence: int) -> StoredBatch | None:
        response = self._table.call(
            "get_item", Key=item_key(session_pk(session_id), batch_sk(first_sequence)), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._batch_from_item(session_id, item)

    def covering(self, session_id: str, from_sequence: int, to_sequence: int | None = None) -> Iterator[StoredBatch]:
        """Batches holding any sequence number in ``[from_sequence, to_sequence)``, in order, one page at a time."""
        start = max(0, from_sequence - MAX_BATCH_EVENTS + 1)
        end = batch_sk(to_sequence - 1) if to_sequence is not None else BATCH_PREFIX + "~"
        items = self._table.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={
                ":pk": s(session_pk(session_id)),
                ":from": s(batch_sk(start)),
                ":to": s(end),
            },
            ConsistentRead=True,
        )
        for item in items:
            last = parsed(item, lambda item: int(item["first_seq"]["N"]) + int(item["event_count"]["N"]) - 1)
            if last >= from_sequence:
                yield self._batch_from_item(session_id, item)

    def lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
        for batch in self.covering(session_id, from_sequence):
            skip = max(0, from_sequence - batch.first_sequence)
            yield from batch.lines[skip:]

    def _batch_from_item(self, session_id: str, item: Item) -> StoredBatch:
        blob = parsed(item, lambda item: item["events"]["B"]) if "events" in item else self._read_chunks(item)
        return parsed(item, lambda item: _batch(session_id, item, blob))

    def _read_chunks(self, item: Item) -> bytes:
        pk, expected_sha, first, count = parsed(
            item,
            lambda item: (
                item["pk"]["S"],
                item["blob_sha"]["S"],
                int(item["first_seq"]["N"]),
                int(item["chunks"]["N"]),
            ),
        )
        pieces = [
            parsed(chunk, lambda chunk: chunk["data"]["B"])
            for chunk in self._table.query_all(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": s(pk), ":prefix": s(_chunk_prefix(first, expected_sha))},
                ConsistentRead=True,
            )
        ]
        blob = b"".join(pieces)
        if len(pieces) != count or hashlib.sha256(blob).hexdigest() != expected_sha:
            raise StoreUnavailableError(f"batch {item['sk']['S']} of {pk} has missing or damaged chunks")
        return blob


def _chunk_prefix(first_sequence: int, blob_sha: str) -> str:
    return f"{CHUNK_PREFIX}{first_sequence:012d}#{blob_sha[:16]}#"


def _tip_from_item(session_id: str, item: Item) -> ChainTip:
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
        # Batches stored before sizes were kept count as 0 bytes: the cap then applies to what came after them.
        session_bytes=int(item.get("total_bytes", {"N": "0"})["N"]),
    )


def _batch(session_id: str, item: Item, blob: bytes) -> StoredBatch:
    lines = decode_lines(blob)
    # The ids and hashes are read back from the canonical lines: stored once, never rebuilt from DynamoDB types.
    parsed_lines = [json.loads(line) for line in lines]
    tip = _tip_from_item(session_id, item)
    return StoredBatch(
        session_id=session_id,
        first_sequence=tip.first_sequence,
        lines=lines,
        event_ids=tuple(event["event_id"] for event in parsed_lines),
        event_hashes=tuple(event["event_hash"] for event in parsed_lines),
        owner=tip.owner,
        request_digest=item["digest"]["S"],
        accepted_at=tip.accepted_at,
        ends_session=tip.ends_session,
        is_seal=tip.is_seal,
        session_bytes=tip.session_bytes,
    )
