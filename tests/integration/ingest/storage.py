"""Look at what the service stored, straight in the local stack's (moto) DynamoDB table.

Rejection tests compare these items before and after a request: "a 4xx writes nothing" (API.md "Errors").
"""

from __future__ import annotations

from typing import Any

import boto3

from infra.launcher import LocalStackHandle


def _dynamodb(stack: LocalStackHandle) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=stack.info["aws_endpoint"],
        region_name=stack.info["region"],
        aws_access_key_id="local-stack",
        aws_secret_access_key="local-stack",
    )


def stored_items(stack: LocalStackHandle, session_id: str) -> list[dict[str, Any]]:
    """Every item of the session's partition (head, batches, index segments), in key order."""
    client = _dynamodb(stack)
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {
        "TableName": stack.info["table"],
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"S#{session_id}"}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**arguments)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def table_item_count(stack: LocalStackHandle) -> int:
    """How many items the whole table holds (a scan: fine for the small local table, never done by the service)."""
    client = _dynamodb(stack)
    count = 0
    arguments: dict[str, Any] = {"TableName": stack.info["table"], "Select": "COUNT", "ConsistentRead": True}
    while True:
        page = client.scan(**arguments)
        count += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            return count
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
