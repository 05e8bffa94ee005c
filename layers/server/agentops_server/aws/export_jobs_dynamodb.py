"""Export jobs in the chain table (``agentops_server.export_jobs``): item ``pk EXPORT#<session_id>``, ``sk <id>``.

A partition of their own: the export role writes job items and nothing a session is made of.

The withheld set is stored zlib-compressed (a list of up to 100,000 sequence numbers stays far below DynamoDB's
400 KB item limit). A job item expires ``JOB_RETENTION`` after its request (DynamoDB TTL, ``expires_at``): the export
itself is the locked object, and a later request of the same export finds that object again under the same id.
IAM: ``dynamodb:GetItem``, ``PutItem`` and ``UpdateItem`` with ``dynamodb:LeadingKeys`` ``EXPORT#*``.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from typing import Any

from agentops_verify import canonicalize

from agentops_server.aws.dynamodb_table import ConditionFailedError, DynamoDBTable, Item, item_key, n, parsed, s
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.export_jobs import DONE, FAILED, PENDING, ExportJob, ExportJobExistsError
from agentops_server.limits import MAX_BODY_BYTES

JOB_PARTITION_PREFIX = "EXPORT#"
JOB_RETENTION = timedelta(days=30)


class DynamoDBExportJobs:
    def __init__(self, client: Any, table_name: str) -> None:
        self._table = DynamoDBTable(client, table_name)

    def create(self, job: ExportJob) -> None:
        try:
            self._table.call(
                "put_item",
                Item=_item(job),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailedError as exists:
            stored = _job(exists.item) if exists.item else self.get(job.session_id, job.export_id)
            if stored is None:
                raise
            raise ExportJobExistsError(stored) from None

    def get(self, session_id: str, export_id: str) -> ExportJob | None:
        response = self._table.call("get_item", Key=_key(session_id, export_id), ConsistentRead=True)
        item = response.get("Item")
        return _job(item) if item else None

    def restart(self, job: ExportJob, requested_at: datetime) -> bool:
        try:
            self._table.call(
                "update_item",
                Key=_key(job.session_id, job.export_id),
                UpdateExpression="SET #status = :pending, requested_at = :now, expires_at = :expires REMOVE #error",
                ConditionExpression="#status = :was AND requested_at = :then",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":pending": s(PENDING),
                    ":now": s(format_timestamp(requested_at)),
                    ":expires": n(int((requested_at + JOB_RETENTION).timestamp())),
                    ":was": s(job.status),
                    ":then": s(format_timestamp(job.requested_at)),
                },
            )
        except ConditionFailedError:
            return False
        return True

    def finish(self, job: ExportJob, result: dict[str, Any]) -> None:
        self._table.call(
            "update_item",
            Key=_key(job.session_id, job.export_id),
            UpdateExpression="SET #status = :done, #result = :result REMOVE #error",
            ExpressionAttributeNames={"#status": "status", "#result": "result", "#error": "error"},
            ExpressionAttributeValues={":done": s(DONE), ":result": s(canonicalize(result).decode("utf-8"))},
        )

    def fail(self, job: ExportJob, error: dict[str, Any]) -> None:
        self._table.call(
            "update_item",
            Key=_key(job.session_id, job.export_id),
            UpdateExpression="SET #status = :failed, #error = :error",
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues={":failed": s(FAILED), ":error": s(canonicalize(error).decode("utf-8"))},
        )


def _key(session_id: str, export_id: str) -> Item:
    return item_key(f"{JOB_PARTITION_PREFIX}{session_id}", export_id)


def _item(job: ExportJob) -> Item:
    return {
        **_key(job.session_id, job.export_id),
        "format": s(job.file_format),
        "withheld": {"B": zlib.compress(job.withheld.encode("ascii"))},
        "source": s(job.source),
        "status": s(job.status),
        "requested_at": s(format_timestamp(job.requested_at)),
        "expires_at": n(int((job.requested_at + JOB_RETENTION).timestamp())),
    }


def _withheld(blob: bytes) -> str:
    """The withheld set's canonical text; ``ValueError`` for anything this service did not write, including a set
    that inflates past the request body it came from (a zlib bomb), before it is inflated further."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(blob, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise ValueError(f"the withheld set is not zlib data: {error}") from error
    if len(text) > MAX_BODY_BYTES or not inflater.eof or inflater.unused_data:
        raise ValueError("the withheld set is not one zlib stream of at most a request body's size")
    return text.decode("ascii")


def _job(item: Item) -> ExportJob:
    def parse(item: Item) -> ExportJob:
        return ExportJob(
            session_id=item["pk"]["S"].removeprefix(JOB_PARTITION_PREFIX),
            export_id=item["sk"]["S"],
            file_format=item["format"]["S"],
            withheld=_withheld(item["withheld"]["B"]),
            source=item["source"]["S"],
            status=item["status"]["S"],
            requested_at=parse_timestamp(item["requested_at"]["S"]),
            result=json.loads(item["result"]["S"]) if "result" in item else None,
            error=json.loads(item["error"]["S"]) if "error" in item else None,
        )

    return parsed(item, parse)
