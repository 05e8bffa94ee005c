"""The sparse ``SealDue`` index of the DynamoDB chain store: how the sealer finds due sessions without a scan.

Only heads with a pending seal carry ``due_shard`` (fixed by the session id, ``DUE_SHARDS`` partitions so no single
partition gets hot) and ``due_at`` (a fixed-width RFC 3339 string, so string order is time order). Whether a
candidate is really due is decided from the head and the chain's tip, which the store hands over at construction
(``head_item``, ``tip``): this class holds no session state of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from agentops_server.aws.dynamodb_table import (
    SESSION_PK_PREFIX,
    ConditionFailedError,
    DynamoDBTable,
    Item,
    item_key,
    parsed,
    s,
    session_pk,
)
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.store import STATUS_OPEN, ChainTip, StoredItemMalformedError

SEAL_DUE_INDEX = "SealDue"
DUE_SHARDS = 4
HEAD_SK = "HEAD"


def due_keys(session_id: str, due_at: datetime) -> dict[str, dict[str, str]]:
    """The index attributes of a head that becomes due at ``due_at``."""
    return {"due_shard": s(due_shard(session_id)), "due_at": s(format_timestamp(due_at))}


def due_shard(session_id: str) -> str:
    return str(int(session_id[:8], 16) % DUE_SHARDS)


class SealDueIndex:
    def __init__(
        self,
        table: DynamoDBTable,
        idle: timedelta,
        *,
        head_item: Callable[[str], Item | None],
        tip: Callable[[str], ChainTip | None],
    ) -> None:
        self._table = table
        self._idle = idle
        self._head_item = head_item
        self._tip = tip

    def due(self, now: datetime, limit: int) -> list[str]:
        """Due sessions, oldest first. An open session's ``due_at`` is a lower bound (appends do not move it, which
        would cost an index write per batch): a candidate that turns out to be active gets its real due time now."""
        due: list[str] = []
        for indexed_due_at, session_id in self.candidates(now):
            if len(due) >= limit:
                break
            try:
                confirmed = self._confirm_due(session_id, indexed_due_at, now)
            except StoredItemMalformedError:
                confirmed = True  # the sealer reads it again, reports it and defers it: it cannot block the rest
            if confirmed:
                due.append(session_id)
        return due

    def _confirm_due(self, session_id: str, indexed_due_at: str, now: datetime) -> bool:
        item = self._head_item(session_id)
        if item is None or "due_at" not in item:
            return False
        status = parsed(item, lambda item: item["status"]["S"])
        if status != STATUS_OPEN:
            return True  # ended, being sealed, or sealed with its table copies still to be given their expiry
        tip = self._tip(session_id)
        if tip is not None and (tip.ends_session or tip.is_seal):
            return True  # the head missed the end (a crash after the write): the sealer repairs it
        last_activity = parsed(item, lambda item: parse_timestamp(item["last_activity_at"]["S"]))
        if tip is not None:
            last_activity = max(last_activity, tip.accepted_at)
        real_due = last_activity + self._idle
        if real_due <= now:
            return True
        # A failed condition means the session ended or was refreshed meanwhile: the index is right already.
        with contextlib.suppress(ConditionFailedError):
            self._table.call(
                "update_item",
                Key=item_key(session_pk(session_id), HEAD_SK),
                UpdateExpression="SET due_at = :due, last_activity_at = :activity",
                ConditionExpression="#status = :open AND due_at = :indexed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":due": s(format_timestamp(real_due)),
                    ":activity": s(format_timestamp(last_activity)),
                    ":open": s(STATUS_OPEN),
                    ":indexed": s(indexed_due_at),
                },
            )
        return False

    def candidates(self, now: datetime) -> list[tuple[str, str]]:
        """``(due_at, session_id)`` of every indexed head with ``due_at <= now``, earliest first.

        The index holds any item that carries its two attributes, and anyone with write access to a session's items
        can add some: only a head counts (its own ``due_at``, once), so other items can neither repeat a session nor
        make one due earlier than its head says."""
        cutoff = format_timestamp(now)
        found: list[tuple[str, str]] = []
        for shard in range(DUE_SHARDS):
            for item in self._table.query_all(
                IndexName=SEAL_DUE_INDEX,
                KeyConditionExpression="due_shard = :shard AND due_at <= :now",
                ExpressionAttributeValues={":shard": s(str(shard)), ":now": s(cutoff)},
            ):
                due_at, pk, sk = parsed(item, lambda item: (item["due_at"]["S"], item["pk"]["S"], item["sk"]["S"]))
                if sk == HEAD_SK and pk.startswith(SESSION_PK_PREFIX):
                    found.append((due_at, pk.removeprefix(SESSION_PK_PREFIX)))
        return sorted(found)

    def defer(self, session_id: str, until: datetime) -> None:
        """Make an indexed head due at ``until`` instead (behind the sessions due before then); nothing when it has
        left the index meanwhile."""
        with contextlib.suppress(ConditionFailedError):
            self._table.call(
                "update_item",
                Key=item_key(session_pk(session_id), HEAD_SK),
                UpdateExpression="SET due_at = :due",
                ConditionExpression="attribute_exists(due_at)",
                ExpressionAttributeValues={":due": s(format_timestamp(until))},
            )
