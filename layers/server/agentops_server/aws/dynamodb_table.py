"""What every part of the DynamoDB adapter shares: one table, boto3 calls with their errors translated, item values.

Errors are translated by code: ``ConditionalCheckFailedException`` becomes ``ConditionFailedError`` (each caller
turns it into the domain outcome of its call), throttling codes ``StoreThrottledError``, anything else (and
timeouts) ``StoreUnavailableError``. An item whose attributes cannot be read (someone with write access to the table
stored another shape) is ``StoredItemMalformedError`` for the session it belongs to, never a crash of the whole
caller.
"""

from __future__ import annotations

import lzma
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.store import StoredItemMalformedError, StoreThrottledError, StoreUnavailableError

THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)

Item = dict[str, Any]
T = TypeVar("T")


class ConditionFailedError(Exception):
    """A conditional write's condition did not hold; ``item`` is the stored item when DynamoDB returned it."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item


class DynamoDBTable:
    """The chain table behind one boto3 client. Operations are looked up on the client at call time."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.client, operation)(TableName=self.name, **arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise ConditionFailedError(error.response.get("Item")) from error
            if code in THROTTLING_CODES:
                raise StoreThrottledError(code) from error
            raise StoreUnavailableError(code or "unknown DynamoDB error") from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error
        return response

    def query_all(self, **arguments: Any) -> Iterator[Item]:
        """Every item a Query returns, page after page (one page in memory at a time)."""
        while True:
            page = self.call("query", **arguments)
            yield from page.get("Items", [])
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            arguments["ExclusiveStartKey"] = last_key


def parsed(item: Item, parse: Callable[[Item], T]) -> T:
    """``parse(item)``, with a missing or ill-typed attribute reported as the item's own problem."""
    try:
        return parse(item)
    except (KeyError, TypeError, ValueError, AttributeError, lzma.LZMAError) as error:
        where = f"{item.get('pk', {}).get('S', '?')} {item.get('sk', {}).get('S', '?')}"
        raise StoredItemMalformedError(f"item {where} cannot be read: {type(error).__name__}: {error}") from error


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


SESSION_PK_PREFIX = "S#"


def session_pk(session_id: str) -> str:
    return f"{SESSION_PK_PREFIX}{session_id}"


def item_key(pk: str, sk: str) -> Item:
    return {"pk": s(pk), "sk": s(sk)}
