"""The session listing of ``GET /v1/sessions`` (API.md) over two sparse KEYS_ONLY indexes of session heads.

``SessionsByStart``: ``list_pk = LIST#<shard>``, ``list_sk = <started_at>#<session_id>``; ``SessionsByAgent``:
``agent_pk = AGENT#<sha256 of the agent id>#<shard>`` with the same ``list_sk``. A head carries these keys from its
creation on; they never change and later head updates touch no projected attribute, so each index costs one write
per session. The shard (of ``LIST_SHARDS``, from a hash of the session id) spreads the creations of one moment over
several index partitions; a listing reads every shard newest first and merges them. Index entries are only
candidates: every head is read and checked against the query.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.aws.dynamodb_due import HEAD_SK
from agentops_server.aws.dynamodb_table import (
    SESSION_PK_PREFIX,
    THROTTLING_CODES,
    DynamoDBTable,
    Item,
    item_key,
    parsed,
    s,
    session_pk,
)
from agentops_server.clock import parse_timestamp
from agentops_server.store import (
    ListPosition,
    SessionHead,
    SessionListPage,
    SessionListQuery,
    StoredItemMalformedError,
    StoreThrottledError,
    StoreUnavailableError,
)

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


@dataclass(frozen=True)
class _ListShard:
    """One partition of a listing index: ``LIST#<shard>`` or ``AGENT#<hash>#<shard>``."""

    index: str
    partition_key: str
    partition: str


class SessionListing:
    """``list_sessions`` of the ``ChainStore``; ``head_of_item`` reads a head item as the store does."""

    def __init__(self, table: DynamoDBTable, head_of_item: Callable[[str, Item], SessionHead]) -> None:
        self._table = table
        self._head_of_item = head_of_item

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
        end)."""
        arguments: dict[str, Any] = {
            "IndexName": shard.index,
            "KeyConditionExpression": "#partition = :partition AND list_sk BETWEEN :lower AND :upper",
            "ExpressionAttributeNames": {"#partition": shard.partition_key},
            "ExpressionAttributeValues": {":partition": s(shard.partition), ":lower": s(lower), ":upper": s(upper)},
            "ScanIndexForward": False,
            # One more than needed: the previous page's last head is within the bounds and read again.
            "Limit": 1 + (query.limit if query.status is None else LIST_FILTERED_PAGE),
        }
        admitted: list[SessionHead] = []
        pages = 0
        while True:
            response = self._table.call("query", **arguments)
            pages += 1
            # The index holds any item carrying its keys, and whoever writes a session's items can add some: only
            # a head's own entry names a session, so other items can neither repeat one nor list one twice.
            session_ids = [
                item["pk"]["S"].removeprefix(SESSION_PK_PREFIX)
                for item in response.get("Items", [])
                if item["sk"]["S"] == HEAD_SK and item["pk"]["S"].startswith(SESSION_PK_PREFIX)
            ]
            admitted.extend(head for head in self._heads_of(session_ids) if query.admits(head))
            last_key: dict[str, Any] | None = response.get("LastEvaluatedKey")
            if not last_key:
                return admitted, None
            frontier = _position_of_list_sk(last_key["list_sk"]["S"])
            # A frontier that names no position (an entry someone else wrote) cannot end a page: read on past it.
            if frontier is not None and (len(admitted) >= query.limit or pages >= LIST_SHARD_PAGES):
                return admitted, frontier
            arguments["ExclusiveStartKey"] = last_key

    def _heads_of(self, session_ids: list[str]) -> list[SessionHead]:
        """The heads of these sessions as recorded (the chain's tip is not read), in the order given."""
        items: dict[str, Item] = {}
        for start in range(0, len(session_ids), BATCH_GET_LIMIT):
            keys = [
                item_key(session_pk(session_id), HEAD_SK) for session_id in session_ids[start : start + BATCH_GET_LIMIT]
            ]
            request: dict[str, Any] = {self._table.name: {"Keys": keys}}
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._batch_get(request)
                for item in response.get("Responses", {}).get(self._table.name, []):
                    items[item["pk"]["S"][2:]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            if request:
                raise StoreThrottledError("BatchGetItem left keys unprocessed")
        heads = []
        for session_id in session_ids:
            if session_id in items:
                try:
                    heads.append(parsed(items[session_id], partial(self._head_of_item, session_id)))
                except StoredItemMalformedError:
                    continue  # a head someone made unreadable hides only itself from the listing
        return heads

    def _batch_get(self, request_items: dict[str, Any]) -> dict[str, Any]:
        # BatchGetItem names its table inside the request, so it does not go through DynamoDBTable.call.
        try:
            response: dict[str, Any] = self._table.client.batch_get_item(RequestItems=request_items)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in THROTTLING_CODES:
                raise StoreThrottledError(code) from error
            raise StoreUnavailableError(code or "unknown DynamoDB error") from error
        except BotoCoreError as error:
            raise StoreUnavailableError(type(error).__name__) from error
        return response


def listing_attributes(session_id: str, started_at: datetime, agent_id: str | None) -> Item:
    """The head's keys in the listing indexes (module docstring), written once, at creation."""
    shard = _list_shard(session_id)
    attributes = {"list_pk": s(f"LIST#{shard}"), "list_sk": s(_list_sk(started_at, session_id))}
    if agent_id is not None:
        attributes |= {"agent_id": s(agent_id), "agent_pk": s(_agent_partition(agent_id, shard))}
    return attributes


def _list_time(moment: datetime) -> str:
    """``format_timestamp`` with a four-digit year whatever the year, so every ``list_sk`` sorts in time order."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc:-%m-%dT%H:%M:%S.%f}Z"


def _list_sk(started_at: datetime, session_id: str) -> str:
    return f"{_list_time(started_at)}#{session_id}"


def _position_of_list_sk(list_sk: str) -> ListPosition | None:
    """The position a ``list_sk`` names; None for one this service did not write."""
    started_at, separator, session_id = list_sk.partition("#")
    try:
        return ListPosition(parse_timestamp(started_at), session_id) if separator else None
    except ValueError:
        return None


def _list_shard(session_id: str) -> int:
    # A hash, not the id's own digits: session ids are chosen by clients.
    return int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16) % LIST_SHARDS


def _agent_partition(agent_id: str, shard: int) -> str:
    # Hashed: an agent id may be longer than a key may be (2 KB) and may contain "#".
    return f"AGENT#{hashlib.sha256(agent_id.encode('utf-8', 'surrogatepass')).hexdigest()}#{shard}"


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
