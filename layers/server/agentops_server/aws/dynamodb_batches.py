"""Batch items of the DynamoDB chain store: the chain itself (docs/architecture.md "DynamoDB table").

- batch ``B#<first_seq:012d>``: one conditional ``PutItem`` (``attribute_not_exists(sk)``) holding the batch's
  canonical event lines in their stored form (below), LF-joined and LZMA2-compressed, plus the little an append needs
  to know about the chain's end (count, last event hash, owner, flags, the session's canonical bytes so far in
  ``total_bytes``). Event ids and hashes are read back from the lines themselves, never stored twice.
- chunk ``C#<first_seq>#<sha256 prefix>#<n>``: a batch whose compressed lines exceed one item is split into
  content-addressed chunk items written before the batch item, so the batch item stays the single decision.

Stored line form. A canonical line's hash members (ELS section 2) are derivable from the line, and as 64 random hex
digits they were a third of a compressed batch. So each line keeps only the first ``HASH_CHECK_HEX`` digits of its
``payload_hash`` and ``event_hash``, and no ``prev_event_hash``; the batch's first line keeps its full
``prev_event_hash`` and its last line its full ``event_hash``, so a batch still reads without its neighbours and
every batch stays anchored to the chain. Reading rebuilds the canonical line byte for byte: a shortened hash becomes
the hash derived from the stored bytes when the derived hash starts with the stored digits, and otherwise stays as
stored, so the line fails verification at that event as an edited line did before; a missing ``prev_event_hash`` is
the previous rebuilt line's ``event_hash``. Rebuilding decides nothing: the sealer and the readers verify the rebuilt
lines as before, and anything an edit of the table yields by this rule, the editor could have written in full.
Lines stored in full (earlier items) read unchanged.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from agentops_verify import event_hash_of_members, sha256_hex

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
from agentops_server.limits import MAX_EVENT_BYTES
from agentops_server.store import ChainTip, SequenceConflictError, StoredBatch, StoredItemMalformedError

BATCH_PREFIX = "B#"
CHUNK_PREFIX = "C#"
MAX_BATCH_EVENTS = 500  # API.md; bounds how far before a sequence number the batch holding it can start
# The most a stored batch inflates to: ingest accepts at most MAX_BATCH_EVENTS events of at most MAX_EVENT_BYTES in
# canonical form, and the stored line form is never longer. A batch item that inflates further was not written by
# ingest, and the table is attacker-writable.
MAX_INFLATED_BYTES = MAX_BATCH_EVENTS * (MAX_EVENT_BYTES + 1)
_INFLATE_PIECE = 1 << 20  # inflated in pieces of this size, so the check costs at most one piece over the bound
INLINE_LIMIT = 350_000  # compressed bytes kept in the batch item itself (DynamoDB items are at most 400 KB)
# Raw LZMA2, preset 6, 1 MiB dictionary (a whole batch). Measured on realistic 1 KB agent events with varied text, 50
# per batch, in the stored line form (benchmarks/ingest_cost.py): 9.9 KB per batch against 11.5 KB for zlib level 6
# and 11.3 KB for level 9, i.e. one or two write units fewer per batch for a few ms of CPU, which costs a fraction of
# the units it saves. Raw format: the xz container's 60 bytes of headers and checks buy nothing here (the item is the
# unit of integrity).
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
_SUMMARY_ATTRIBUTES = "pk, sk, first_seq, event_count, last_hash, #owner, accepted_at, ends, seal, total_bytes"


HASH_CHECK_HEX = 8  # hex digits of each derivable hash kept per stored line (see the stored line form above)
_HASH_HEX = 64
_HEX_DIGITS = b"0123456789abcdef"
# Top-level members of a canonical line, found by position: JCS sorts the members, and a string value never holds an
# unescaped quote, so the first "event_hash" and "payload" members and the last "payload_hash" one are the
# envelope's own (the members before "payload" and after "payload_hash" are strings and numbers).
_EVENT_HASH = b'"event_hash":"'
_PAYLOAD = b',"payload":'
_PAYLOAD_HASH = b',"payload_hash":"'
_PREV_EVENT_HASH = b',"prev_event_hash":'


@dataclass(frozen=True)
class _HashMembers:
    """Where a line's hash members are: the spans of the two hash values (without quotes), of the payload's value,
    and of the ``prev_event_hash`` value (None when the line has no such member after ``payload_hash``)."""

    event_hash: tuple[int, int]
    payload: tuple[int, int]
    payload_hash: tuple[int, int]
    prev: tuple[int, int] | None

    @classmethod
    def of(cls, line: bytes) -> _HashMembers | None:
        """None for a line not shaped like a chained envelope: it is stored and read whole."""
        event_hash_at = line.find(_EVENT_HASH) + len(_EVENT_HASH)
        event_hash_end = line.find(b'"', event_hash_at)
        payload_at = line.find(_PAYLOAD)
        payload_hash_member = line.rfind(_PAYLOAD_HASH)
        payload_hash_at = payload_hash_member + len(_PAYLOAD_HASH)
        payload_hash_end = line.find(b'"', payload_hash_at)
        if not (
            len(_EVENT_HASH) <= event_hash_at <= event_hash_end < payload_at < payload_hash_member
            and payload_hash_end >= 0
        ):
            return None
        prev = None
        if line.startswith(_PREV_EVENT_HASH, payload_hash_end + 1):
            prev_at = payload_hash_end + 1 + len(_PREV_EVENT_HASH)
            if line.startswith(b"null", prev_at):
                prev = (prev_at, prev_at + 4)
            elif line.startswith(b'"', prev_at) and (prev_end := line.find(b'"', prev_at + 1)) >= 0:
                prev = (prev_at, prev_end + 1)
            else:
                return None
        return cls(
            (event_hash_at, event_hash_end),
            (payload_at + len(_PAYLOAD), payload_hash_member),
            (payload_hash_at, payload_hash_end),
            prev,
        )


def encode_lines(lines: tuple[bytes, ...]) -> bytes:
    """The stored form of a batch's canonical lines: each in its stored line form, LF-joined, compressed."""
    stored = []
    previous_event_hash: bytes | None = None
    for index, line in enumerate(lines):
        members = _HashMembers.of(line)
        if members is None:
            stored.append(line)
            previous_event_hash = None
            continue
        event_hash = _slice(line, members.event_hash)
        payload_hash = _slice(line, members.payload_hash)
        prev_value = None if members.prev is None else _slice(line, members.prev)
        drop_prev = index > 0 and previous_event_hash is not None and prev_value == b'"' + previous_event_hash + b'"'
        prev_member_at = members.payload_hash[1] + 1
        stored.append(
            b"".join(
                (
                    line[: members.event_hash[0]],
                    event_hash if index == len(lines) - 1 else _check_digits(event_hash),
                    line[members.event_hash[1] : members.payload_hash[0]],
                    _check_digits(payload_hash),
                    line[members.payload_hash[1] : prev_member_at],
                    line[members.prev[1] :] if drop_prev and members.prev is not None else line[prev_member_at:],
                )
            )
        )
        previous_event_hash = event_hash
    return lzma.compress(b"\n".join(stored), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)


def decode_lines(blob: bytes) -> tuple[bytes, ...]:
    """The canonical lines of a stored batch, rebuilt from their stored form."""
    rebuilt = []
    previous_event_hash: bytes | None = None
    for stored in _inflate(blob).split(b"\n"):
        canonical, previous_event_hash = _rebuild(stored, previous_event_hash)
        rebuilt.append(canonical)
    return tuple(rebuilt)


def _inflate(blob: bytes) -> bytes:
    """The stored lines of a batch, decompressed; ``ValueError`` past ``MAX_INFLATED_BYTES``, before inflating more
    (a decompression bomb: a few hundred KB that inflate to gigabytes would end the reader's process)."""
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    pieces = [decompressor.decompress(blob, max_length=_INFLATE_PIECE)]
    size = len(pieces[0])
    while not decompressor.eof and not decompressor.needs_input:  # output is waiting: inflate one more piece
        if size > MAX_INFLATED_BYTES:
            raise ValueError(f"the batch inflates past {MAX_INFLATED_BYTES} bytes, more than any batch ingest accepts")
        pieces.append(decompressor.decompress(b"", max_length=_INFLATE_PIECE))
        size += len(pieces[-1])
    if size > MAX_INFLATED_BYTES:
        raise ValueError(f"the batch inflates past {MAX_INFLATED_BYTES} bytes, more than any batch ingest accepts")
    if not decompressor.eof or decompressor.unused_data:
        raise ValueError("the batch's compressed lines do not end where their end marker says")
    return b"".join(pieces)


def _slice(line: bytes, span: tuple[int, int]) -> bytes:
    return line[span[0] : span[1]]


def _check_digits(value: bytes) -> bytes:
    """A full hash's stored form; anything else (check digits already, or not a hash) is stored as it is."""
    is_full_hash = len(value) == _HASH_HEX and not value.strip(_HEX_DIGITS)
    return value[:HASH_CHECK_HEX] if is_full_hash else value


def _rebuild(line: bytes, previous_event_hash: bytes | None) -> tuple[bytes, bytes | None]:
    """The canonical line of one stored line, and its ``event_hash`` value for the next line's ``prev_event_hash``
    (None for a line this rule cannot read: a next line without the member then reads as the chain's first)."""
    members = _HashMembers.of(line)
    if members is None:
        return line, None
    prev_member_at = members.payload_hash[1] + 1
    if members.prev is not None:  # the batch's first line, or one stored whole
        prev_value = _slice(line, members.prev)
        inserted = b""
    else:
        prev_value = b"null" if previous_event_hash is None else b'"' + previous_event_hash + b'"'
        inserted = _PREV_EVENT_HASH + prev_value
    payload_hash = _derived(_slice(line, members.payload_hash), lambda: sha256_hex(_slice(line, members.payload)))

    def derived_event_hash() -> str:
        # The line is canonical, so each member's value bytes are its canonical bytes: hashed as they stand.
        return event_hash_of_members(
            {
                **_scalar_members(line, members.payload[0]),
                "payload_hash": b'"' + payload_hash + b'"',
                "prev_event_hash": prev_value,
            }
        )

    try:
        stored_event_hash = _derived(_slice(line, members.event_hash), derived_event_hash)
    except KeyError:  # a member is missing: not an envelope, left for the verifier to refuse
        stored_event_hash = _slice(line, members.event_hash)
    rebuilt = b"".join(
        (
            line[: members.event_hash[0]],
            stored_event_hash,
            line[members.event_hash[1] : members.payload_hash[0]],
            payload_hash,
            line[members.payload_hash[1] : prev_member_at],
            inserted,
            line[prev_member_at:],
        )
    )
    return rebuilt, stored_event_hash


# The envelope's other hashed members (ELS section 2), and the member each one's search starts from: the two before
# "payload" are its first occurrences, the three after it the last ones (only strings and numbers follow the payload).
_BEFORE_PAYLOAD = (b',"event_id":', b',"event_type":')
_AFTER_PAYLOAD = (b',"sequence_number":', b',"session_id":', b',"timestamp_wall":')


def _scalar_members(line: bytes, payload_at: int) -> dict[str, bytes]:
    """The value bytes of the hashed members other than the payload and the hashes; a missing one is left out."""
    values = {}
    for member in _BEFORE_PAYLOAD + _AFTER_PAYLOAD:
        found = line.find(member, 0, payload_at) if member in _BEFORE_PAYLOAD else line.rfind(member, payload_at)
        if found >= 0:
            start = found + len(member)
            end = line.find(b',"', start)  # never inside a string value: its quotes are escaped
            values[member[2:-2].decode()] = line[start : end if end >= 0 else len(line) - 1]
    return values


def _derived(stored: bytes, derive: Callable[[], str]) -> bytes:
    """A stored hash value as the canonical line holds it: the derived hash when ``stored`` is check digits that it
    starts with, else ``stored`` unchanged (a full hash, or check digits the stored bytes no longer match)."""
    if len(stored) != HASH_CHECK_HEX or stored.strip(_HEX_DIGITS):
        return stored
    derived = derive().encode()
    return derived if derived.startswith(stored) else stored


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
            # Chunks are written before the batch item that names them, and reads are strongly consistent: this is
            # no outage, but an item someone else wrote.
            raise StoredItemMalformedError(f"batch {item['sk']['S']} of {pk} has missing or damaged chunks")
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
