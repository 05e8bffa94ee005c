"""The evidence log's state in the chain table (``evidence_log.LogStateStore`` over DynamoDB).

Items (docs/architecture.md "DynamoDB table"):

- ``pk=LOG``, ``sk=STATE``: ``size``, ``root`` (32 bytes), ``batch_start`` and ``batch`` (the session ids of leaves
  ``batch_start`` .. ``size - 1``). Written only by ``advance_log``, conditioned on the size and root it replaces.
- ``pk=S#<session_id>``, ``sk=LOG`` (in the session's own partition): while the session awaits the log,
  ``log_queue`` and ``log_queued_at``, the keys of the sparse ``LogPending`` index; once logged, ``leaf_index`` and
  no index keys. The marker is created once (``attribute_not_exists``), so a session logged before is never marked
  again by a retried or concurrent sealer.

``advance_log`` is one ``TransactWriteItems``: the state's conditional put and, per new leaf, a conditional update
of the session's item (``attribute_not_exists(leaf_index)``). DynamoDB applies all of it or none; a cancelled
transaction says which conditions failed, and that becomes ``LogStateConflictError``. IAM: ``dynamodb:GetItem``,
``dynamodb:PutItem``, ``dynamodb:UpdateItem`` on the table and ``dynamodb:Query`` on ``index/LogPending``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.evidence_log import LogIntegrityError, LogState, LogStateConflictError, PendingSession
from agentops_server.store import StoreThrottledError, StoreUnavailableError

LOG_PENDING_INDEX = "LogPending"
STATE_KEY = {"pk": {"S": "LOG"}, "sk": {"S": "STATE"}}
SESSION_LOG_SK = "LOG"
PENDING = "PENDING"  # the one partition of the LogPending index: sessions are logged at the sealer's pace
_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)
_LOST_RACE_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


def _session_key(session_id: str) -> dict[str, Any]:
    # The session's partition, as the chain store lays it out (dynamodb.py): its log item sits beside its head.
    return {"pk": {"S": f"S#{session_id}"}, "sk": {"S": SESSION_LOG_SK}}


class DynamoDBLogState:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def log_state(self) -> LogState | None:
        item = self._call(self._client.get_item, TableName=self._table, Key=STATE_KEY, ConsistentRead=True).get("Item")
        if item is None:
            return None
        try:
            return LogState(
                size=int(item["size"]["N"]),
                root_hash=bytes(item["root"]["B"]),
                batch_start=int(item["batch_start"]["N"]),
                batch=tuple(entry["S"] for entry in item["batch"]["L"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LogIntegrityError(f"the log state item is malformed: {error!r}") from error

    def advance_log(self, previous: LogState | None, new: LogState, logged: Sequence[str]) -> None:
        first_index = previous.size if previous is not None else 0
        state_put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                **STATE_KEY,
                "size": {"N": str(new.size)},
                "root": {"B": new.root_hash},
                "batch_start": {"N": str(new.batch_start)},
                "batch": {"L": [{"S": session_id} for session_id in new.batch]},
            },
        }
        if previous is None:
            state_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            state_put["ConditionExpression"] = "#size = :size AND #root = :root"
            state_put["ExpressionAttributeNames"] = {"#size": "size", "#root": "root"}
            state_put["ExpressionAttributeValues"] = {
                ":size": {"N": str(previous.size)},
                ":root": {"B": previous.root_hash},
            }
        leaf_updates = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _session_key(session_id),
                    "UpdateExpression": "SET leaf_index = :index REMOVE log_queue, log_queued_at",
                    "ConditionExpression": "attribute_not_exists(leaf_index)",
                    "ExpressionAttributeValues": {":index": {"N": str(first_index + offset)}},
                }
            }
            for offset, session_id in enumerate(logged)
        ]
        try:
            self._client.transact_write_items(TransactItems=[{"Put": state_put}, *leaf_updates])
        except ClientError as error:
            if _code(error) != "TransactionCanceledException":
                raise _store_error(error) from error
            reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if not reasons or not set(reasons) - {"None"} <= _LOST_RACE_REASONS:
                raise StoreUnavailableError(f"the log state write was cancelled: {reasons}") from error
            already_logged = [
                session_id
                for session_id, reason in zip(logged, reasons[1:], strict=False)
                if reason == "ConditionalCheckFailed"
            ]
            raise LogStateConflictError("the log state write lost a race", already_logged) from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error

    def enqueue_for_log(self, session_id: str, queued_at: str) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **_session_key(session_id),
                    "log_queue": {"S": PENDING},
                    "log_queued_at": {"S": queued_at},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return  # marked already, or logged: either way the log will hold it exactly once
            raise _store_error(error) from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error

    def pending_for_log(self, limit: int) -> list[PendingSession]:
        pending: list[PendingSession] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LOG_PENDING_INDEX,
            "KeyConditionExpression": "log_queue = :pending",
            "ExpressionAttributeValues": {":pending": {"S": PENDING}},
        }
        while len(pending) < limit:
            page = self._call(self._client.query, **arguments, Limit=limit - len(pending))
            # The index holds any item carrying its keys, and whoever writes a session's items can add some: only
            # the session's own marker item counts.
            pending.extend(
                PendingSession(session_id=item["pk"]["S"].removeprefix("S#"), queued_at=item["log_queued_at"]["S"])
                for item in page.get("Items", [])
                if item["sk"]["S"] == SESSION_LOG_SK and item["pk"]["S"].startswith("S#")
            )
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return pending

    def requeue_for_log(self, session_id: str, queued_at: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_session_key(session_id),
                UpdateExpression="SET log_queued_at = :at",
                ConditionExpression="attribute_exists(log_queue)",
                ExpressionAttributeValues={":at": {"S": queued_at}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return  # logged meanwhile, or never marked: nothing to move
            raise _store_error(error) from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error

    def leaf_index(self, session_id: str) -> int | None:
        item = self._call(
            self._client.get_item,
            TableName=self._table,
            Key=_session_key(session_id),
            ConsistentRead=True,
            ProjectionExpression="leaf_index",
        ).get("Item")
        if item is None or "leaf_index" not in item:
            return None
        try:
            index = int(item["leaf_index"]["N"])
        except (KeyError, ValueError) as error:
            raise LogIntegrityError(f"the leaf index recorded for session {session_id} is malformed") from error
        if index < 0:
            raise LogIntegrityError(f"the leaf index recorded for session {session_id} is negative")
        return index

    def _call(self, operation: Callable[..., dict[str, Any]], **arguments: Any) -> dict[str, Any]:
        try:
            return operation(**arguments)
        except ClientError as error:
            raise _store_error(error) from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _store_error(error: ClientError) -> Exception:
    code = _code(error)
    if code in _THROTTLING_CODES:
        return StoreThrottledError(code)
    return StoreUnavailableError(code or "unknown DynamoDB error")
