"""The sparse ``SealDue`` index of the DynamoDB chain store: how the sealer finds due sessions without a scan.

Only heads with a pending seal carry ``due_shard`` (fixed by the session id, ``DUE_SHARDS`` partitions so no single
partition gets hot) and ``due_at`` (a fixed-width RFC 3339 string, so string order is time order). Whether a
candidate is really due is the store's decision (it reads the head and the chain's tip); this class only reads and
moves the index keys.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from agentops_server.aws.dynamodb_table import ConditionFailedError, DynamoDBTable, item_key, parsed, s, session_pk
from agentops_server.clock import format_timestamp

SEAL_DUE_INDEX = "SealDue"
DUE_SHARDS = 4
HEAD_SK = "HEAD"


def due_keys(session_id: str, due_at: datetime) -> dict[str, dict[str, str]]:
    """The index attributes of a head that becomes due at ``due_at``."""
    return {"due_shard": s(due_shard(session_id)), "due_at": s(format_timestamp(due_at))}


def due_shard(session_id: str) -> str:
    return str(int(session_id[:8], 16) % DUE_SHARDS)


class SealDueIndex:
    def __init__(self, table: DynamoDBTable) -> None:
        self._table = table

    def candidates(self, now: datetime) -> list[tuple[str, str]]:
        """``(due_at, session_id)`` of every indexed head with ``due_at <= now``, earliest first."""
        cutoff = format_timestamp(now)
        found: list[tuple[str, str]] = []
        for shard in range(DUE_SHARDS):
            for item in self._table.query_all(
                IndexName=SEAL_DUE_INDEX,
                KeyConditionExpression="due_shard = :shard AND due_at <= :now",
                ExpressionAttributeValues={":shard": s(str(shard)), ":now": s(cutoff)},
            ):
                found.append(parsed(item, lambda item: (item["due_at"]["S"], item["pk"]["S"][2:])))
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
