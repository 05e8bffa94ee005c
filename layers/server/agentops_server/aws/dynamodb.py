"""The DynamoDB ``ChainStore`` (docs/architecture.md "DynamoDB table"): session heads, and the parts it is made of.

Layout, chosen by ``benchmarks/ingest_cost.py`` (writes are billed per started KB, so bytes are the cost):

- head ``HEAD``: owner, status, timestamps, seal outcome and the sparse ``SealDue`` keys (``dynamodb_due``). It is
  written when the status changes, not on every batch: the next sequence number and last hash come from the chain's
  tip, which is the authority anyway, so a plain append costs no head write and no index write. Once SEALED it also
  holds the sealed chain's length and last hash, since the session's other items then expire. It never expires.
- batches and their chunks (``dynamodb_batches``): the chain itself, one conditional ``PutItem`` per batch.
- the event-id index (``dynamodb_event_ids``): exact duplicate detection in one read per append.
- ``expires_at`` (the table's TTL attribute): written only by ``expire_archived``, on the items of a SEALED session
  other than its head.
- the listing keys of ``GET /v1/sessions`` on each head, written once at creation (``dynamodb_listing``).

Errors are translated in ``dynamodb_table``; an item this adapter cannot read raises ``StoredItemMalformedError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from agentops_server.aws.dynamodb_batches import BatchItems
from agentops_server.aws.dynamodb_due import HEAD_SK, SealDueIndex, due_keys
from agentops_server.aws.dynamodb_event_ids import EventIdIndex
from agentops_server.aws.dynamodb_listing import SessionListing, listing_attributes
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
from agentops_server.aws.evidence_log_dynamodb import SESSION_LOG_SK
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.store import (
    STATUS_ENDED,
    STATUS_OPEN,
    STATUS_SEALED,
    STATUS_SEALING,
    ArchiveRef,
    ChainTip,
    HeadStatus,
    SessionExistsError,
    SessionHead,
    SessionListPage,
    SessionListQuery,
    StoredBatch,
    StoreUnavailableError,
)

_NEVER_EXPIRING = frozenset({HEAD_SK, SESSION_LOG_SK})


class DynamoDBChainStore:
    def __init__(self, client: Any, table_name: str, seal_idle_seconds: int = 3600) -> None:
        self.table = DynamoDBTable(client, table_name)
        self._idle = timedelta(seconds=seal_idle_seconds)
        self._batches = BatchItems(self.table)
        self._event_ids = EventIdIndex(self.table, self._batches)
        self._due = SealDueIndex(self.table, self._idle, head_item=self._head_item, tip=self.tip)
        self._listing = SessionListing(self.table, lambda session_id, item: _head_from_item(session_id, item, None))

    # --- sessions -----------------------------------------------------------------------------------------------
    def create_session(
        self, session_id: str, owner: str, started_at: datetime, agent_id: str | None = None
    ) -> SessionHead:
        # Indexed from creation: a crash between this and the first batch must not hide the session from the
        # sealer, which finds the truth with tail().
        item = {
            "pk": s(session_pk(session_id)),
            "sk": s(HEAD_SK),
            "owner": s(owner),
            "status": s(STATUS_OPEN),
            "started_at": s(format_timestamp(started_at)),
            "last_activity_at": s(format_timestamp(started_at)),
            **due_keys(session_id, started_at + self._idle),
            **listing_attributes(session_id, started_at, agent_id),
        }
        try:
            self.table.call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailedError as failed:
            existing = failed.item or self._head_item(session_id) or {}
            raise SessionExistsError(existing.get("owner", {}).get("S", "")) from failed
        return _head_from_item(session_id, item, None)

    def _head_item(self, session_id: str) -> Item | None:
        response = self.table.call("get_item", Key=item_key(session_pk(session_id), HEAD_SK), ConsistentRead=True)
        item: Item | None = response.get("Item")
        return item

    def get_head(self, session_id: str) -> SessionHead | None:
        item = self._head_item(session_id)
        if item is None:
            return None
        tip = self.tip(session_id)
        return parsed(item, lambda item: _head_from_item(session_id, item, tip))

    def head_status(self, session_id: str) -> HeadStatus | None:
        response = self.table.call(
            "get_item",
            Key=item_key(session_pk(session_id), HEAD_SK),
            ProjectionExpression="#owner, #status",
            ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
        )
        item: Item | None = response.get("Item")
        return None if item is None else parsed(item, lambda item: HeadStatus(item["owner"]["S"], item["status"]["S"]))

    def advance_head(self, batch: StoredBatch) -> None:
        """Index the batch's event ids, then record a status change. The next sequence number, last hash and last
        activity are not written: ``get_head`` reads them from the tip."""
        self._event_ids.extend_through(batch)
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
        values = {":status": s(status)} | {f":a{i}": s(value) for i, value in enumerate(attributes.values())}
        values |= {f":from{i}": s(previous) for i, previous in enumerate(from_statuses)}
        allowed = ", ".join(f":from{i}" for i in range(len(from_statuses)))
        assignments = ", ".join(["#status = :status", *(f"#a{i} = :a{i}" for i in range(len(attributes)))])
        try:
            self.table.call(
                "update_item",
                Key=item_key(session_pk(session_id), HEAD_SK),
                UpdateExpression=f"SET {assignments}",
                ConditionExpression=f"attribute_exists(pk) AND #status IN ({allowed})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ConditionFailedError:
            return  # already at this status or later: statuses never move back

    # --- the chain ----------------------------------------------------------------------------------------------
    def put_batch(self, batch: StoredBatch) -> None:
        self._batches.put(batch)

    def tip(self, session_id: str) -> ChainTip | None:
        return self._batches.tip(session_id)

    def tail(self, session_id: str) -> StoredBatch | None:
        return self._batches.tail(session_id)

    def get_batch(self, session_id: str, first_sequence: int) -> StoredBatch | None:
        return self._batches.get(session_id, first_sequence)

    def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
        return self._batches.lines(session_id, from_sequence)

    def used_event_ids(
        self, session_id: str, event_ids: Iterable[str], known_next_sequence: int | None = None
    ) -> set[str]:
        return self._event_ids.used(session_id, event_ids, known_next_sequence)

    # --- sealing ------------------------------------------------------------------------------------------------
    def due_for_sealing(self, now: datetime, limit: int) -> list[str]:
        return self._due.due(now, limit)

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
        tip = self.tip(session_id)
        if tip is None:
            raise StoreUnavailableError(f"the sealed chain of {session_id} cannot be read back")
        self.table.call(
            "update_item",
            Key=item_key(session_pk(session_id), HEAD_SK),
            UpdateExpression=(
                "SET #status = :sealed, #archive = :archive, sealed_at = if_not_exists(sealed_at, :sealed_at), "
                "evidence_class = :class, partial_reasons = :reasons, sealed_count = :count, sealed_hash = :hash"
            ),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status", "#archive": "archive"},
            ExpressionAttributeValues={
                ":sealed": s(STATUS_SEALED),
                ":archive": {
                    "M": {
                        "bucket": s(archive.bucket),
                        "key": s(archive.key),
                        "version_id": s(archive.version_id),
                        "sha256": s(archive.sha256),
                    }
                },
                ":sealed_at": s(format_timestamp(sealed_at)),
                ":class": s(evidence_class),
                ":reasons": {"L": [s(reason) for reason in partial_reasons]},
                ":count": n(tip.last_sequence + 1),
                ":hash": s(tip.last_event_hash),
            },
        )

    def expire_archived(self, session_id: str, expires_at: datetime | None, stop: Callable[[], bool]) -> bool:
        if expires_at is not None:
            epoch_seconds = n(int(expires_at.timestamp()))
            for item in self.table.query_all(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(session_pk(session_id))},
                ProjectionExpression="sk, expires_at",
            ):
                if item["sk"]["S"] in _NEVER_EXPIRING or "expires_at" in item:
                    # The head and the session's place in the evidence log (its leaf index, which the log-proof
                    # route reads) never expire; an item done by an earlier call is not written again.
                    continue
                if stop():
                    return False
                with contextlib.suppress(ConditionFailedError):  # gone already: nothing to expire
                    self.table.call(
                        "update_item",
                        Key=item_key(session_pk(session_id), item["sk"]["S"]),
                        UpdateExpression="SET expires_at = :at",
                        ConditionExpression="attribute_exists(sk)",
                        ExpressionAttributeValues={":at": epoch_seconds},
                    )
        with contextlib.suppress(ConditionFailedError):  # not sealed (never happens) or out of the index already
            self.table.call(
                "update_item",
                Key=item_key(session_pk(session_id), HEAD_SK),
                UpdateExpression="REMOVE due_shard, due_at",
                ConditionExpression="#status = :sealed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":sealed": s(STATUS_SEALED)},
            )
        return True

    def refuse_seal(self, session_id: str, reason: str) -> None:
        self.table.call(
            "update_item",
            Key=item_key(session_pk(session_id), HEAD_SK),
            UpdateExpression="SET seal_refused_reason = :reason REMOVE due_shard, due_at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":reason": s(reason)},
        )

    def defer_seal(self, session_id: str, until: datetime) -> None:
        self._due.defer(session_id, until)

    # --- listing ------------------------------------------------------------------------------------------------
    def list_sessions(self, query: SessionListQuery) -> SessionListPage:
        return self._listing.list_sessions(query)


def _optional_time(item: Item, name: str) -> datetime | None:
    return parse_timestamp(item[name]["S"]) if name in item else None


def _head_from_item(session_id: str, item: Item, tip: ChainTip | None) -> SessionHead:
    last_activity = parse_timestamp(item["last_activity_at"]["S"])
    archive = item.get("archive", {}).get("M")
    next_sequence, last_hash = (0, None) if tip is None else (tip.last_sequence + 1, tip.last_event_hash)
    if "sealed_count" in item:  # sealed: the chain's end is on the head, its batch items may have expired
        next_sequence, last_hash = int(item["sealed_count"]["N"]), item["sealed_hash"]["S"]
    return SessionHead(
        session_id=session_id,
        owner=item["owner"]["S"],
        status=item["status"]["S"],
        next_sequence_number=next_sequence,
        last_event_hash=last_hash,
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
