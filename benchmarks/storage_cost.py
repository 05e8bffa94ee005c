"""Storage per event and per month, and the sealer's requests per event with the evidence log on.

Ingests sessions of realistic ~1 KB agent events (the text of ``ingest_cost.py``, 50 per batch, each session ending
with SESSION_END) through the real ingest handler over moto, then seals them with the real seal handler, which
archives each session and publishes it to the evidence log, in two scheduled runs. Then it measures what is stored:

- DynamoDB: every item after sealing and before its expiry (a sealed session's batch and index items get
  ``expires_at`` = sealing + ``SealedBatchRetentionDays``, 30 days by default, and TTL deletes them after; heads and
  the session's log entry never expire), sized by DynamoDB's storage rules: the item's attribute names and values
  plus 100 bytes per item, and for each secondary index (KEYS_ONLY) an entry of the table and index keys plus 100
  bytes.
- S3: every object version in the archive bucket (Object Lock COMPLIANCE, ``ArchiveRetentionDays``, 7 years by
  default): the session archives under ``sessions/``, the evidence log under ``log/`` (tiles, checkpoints) and the
  published keys under ``keys/``.

Prices (us-east-1 list prices): DynamoDB Standard table class $0.25 per GB-month, S3 Standard $0.023 per GB-month
(GB = 2**30 bytes), and for the sealer's requests those of ``ingest_cost.py`` plus S3 $0.005 per 1,000 PUTs and
$0.0004 per 1,000 GETs/HEADs/LISTs and KMS $0.15 per 10,000 Sign requests. The sealer's DynamoDB requests are metered
like ingestion's (an update is billed on the larger of the item before and after it: marking a batch item for expiry
costs its size again); its Lambda time is the seal handler's CPU time here, moto's answers included (an upper
bound), at the function's 1,769 MB.

Prints one JSON object. Run: ``.venv/bin/python benchmarks/storage_cost.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import ingest_cost
from ingest_cost import BATCH_SIZE, INDEX_KEYS, TABLE_KEYS, DynamoDBMeter, item_size, realistic_batches

REPO = Path(__file__).resolve().parents[1]
SESSIONS_PER_RUN = (10, 10)  # two scheduled sealer runs; the second appends to the log the first started
EVENTS_PER_SESSION = 100
ITEM_OVERHEAD_BYTES = 100  # DynamoDB's storage overhead per item, and per index entry
SEALED_BATCH_RETENTION_DAYS = 30  # template.yaml default
ARCHIVE_RETENTION_DAYS = 2555  # template.yaml default
GIB = 2**30
PRICE_DYNAMODB_GB_MONTH = 0.25
PRICE_S3_GB_MONTH = 0.023
PRICE_S3_PUT = 0.005 / 1000
PRICE_S3_GET = 0.0004 / 1000
PRICE_KMS_SIGN = 0.15 / 10_000
S3_PUTS = frozenset({"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})
AGENT = "arn:aws:iam::111122223333:role/agent"
SEAL_MEMORY_GB = 1769 / 1024  # template.yaml SealFunction MemorySize
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def session_events(session_id: str, rng: random.Random) -> list[list[dict[str, Any]]]:
    """One session of ``EVENTS_PER_SESSION`` events in batches of ``BATCH_SIZE``, its last event SESSION_END."""
    batches: list[list[dict[str, Any]]] = realistic_batches(session_id, rng, EVENTS_PER_SESSION // BATCH_SIZE)
    last = batches[-1][-1]
    last["event_type"] = "SESSION_END"
    last["payload"] = {"status": "success", "duration_ms": 1000 * last["sequence_number"]}
    return batches


class RequestCounter:
    """Counts every request of a client by service and operation."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call", self._count)
        client.meta.events.register("after-call-error", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.requests[f"{model.service_model.service_name}:{model.name}"] += 1


def dynamodb_storage(raw: Any, table: str) -> dict[str, Any]:
    """Stored bytes of every item and index entry, split into what expires and what is kept for good."""
    expiring = kept = 0
    items = 0
    arguments: dict[str, Any] = {"TableName": table}
    while True:
        page = raw.scan(**arguments)
        for item in page["Items"]:
            size = item_size(item) + ITEM_OVERHEAD_BYTES
            for names in INDEX_KEYS:
                if all(name in item for name in names):
                    keys = {name: item[name] for name in (*TABLE_KEYS, *names)}
                    size += item_size(keys) + ITEM_OVERHEAD_BYTES
            items += 1
            if "expires_at" in item:
                expiring += size
            else:
                kept += size
        if "LastEvaluatedKey" not in page:
            return {"items": items, "expiring_bytes": expiring, "kept_bytes": kept}
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def s3_storage(s3: Any, bucket: str) -> dict[str, int]:
    """Bytes of every object version, by the first segment of its key."""
    sizes: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            sizes[version["Key"].split("/", 1)[0]] += version["Size"]
    return dict(sizes)


def measure(rng: random.Random) -> dict[str, Any]:
    import boto3

    from infra.lambda_runtime import LocalLambdaContext
    from infra.resources import create_archive_bucket, create_seal_key, create_table
    from tests.support.apigw import invoke
    from tests.support.handlers import load_handler_module

    with ingest_cost.mocked_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        table = create_table(raw)
        bucket = "agentops-storage-bench"
        create_archive_bucket(s3, bucket, retention_days=1)
        os.environ.update(
            TABLE_NAME=table,
            ARCHIVE_BUCKET=bucket,
            SEAL_KEY_ID=create_seal_key(boto3.client("kms", region_name="us-east-1")),
            SERVICE_ID="agentops-replay",
            SEAL_IDLE_SECONDS="3600",
            SEALED_BATCH_RETENTION_DAYS=str(SEALED_BATCH_RETENTION_DAYS),
        )
        ingest = load_handler_module("ingest")
        seal = load_handler_module("seal")
        meter = DynamoDBMeter(seal.wiring.dynamodb, raw, table)
        counter = RequestCounter()
        counter.attach(seal.wiring.s3)
        counter.attach(seal.wiring.kms)
        sealed: list[str] = []
        seal_seconds = 0.0
        for sessions in SESSIONS_PER_RUN:
            for _ in range(sessions):
                session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                for events in session_events(session_id, rng):
                    body = json.dumps({"events": events})
                    response = invoke(
                        ingest,
                        ingest_cost._api_event(session_id, body, AGENT),
                        "IngestFunction",
                    )
                    if response["statusCode"] != 200:
                        raise SystemExit(f"ingest failed: {response['body']}")
            started = time.process_time()
            sealed += seal.lambda_handler(SCHEDULED_EVENT, LocalLambdaContext("SealFunction", 1769, 900))["sealed"]
            seal_seconds += time.process_time() - started
        if len(sealed) != sum(SESSIONS_PER_RUN):
            raise SystemExit(f"sealed {len(sealed)} of {sum(SESSIONS_PER_RUN)} sessions")
        dynamodb = dynamodb_storage(raw, table)
        objects = s3_storage(s3, bucket)
        sealer_requests = Counter({f"dynamodb:{name}": count for name, count in meter.requests.items()})
        sealer_requests.update(counter.requests)
        return {
            "dynamodb": dynamodb,
            "s3": objects,
            "sealer_requests": dict(sealer_requests),
            "sealer_wru": meter.wru + meter.index_wru,
            "sealer_rru": meter.rru,
            "s3_puts": sum(count for name, count in counter.requests.items() if name.split(":")[1] in S3_PUTS),
            "s3_other": sum(
                count
                for name, count in counter.requests.items()
                if name.startswith("s3:") and name.split(":")[1] not in S3_PUTS
            ),
            "kms_signs": counter.requests["kms:Sign"],
            "seal_seconds": seal_seconds,
        }


def storage_figures(measured: dict[str, Any]) -> dict[str, Any]:
    sessions = sum(SESSIONS_PER_RUN)
    events = sessions * EVENTS_PER_SESSION
    dynamodb, objects = measured["dynamodb"], measured["s3"]
    table_bytes = dynamodb["expiring_bytes"] / events
    kept_bytes = dynamodb["kept_bytes"] / events
    archive_bytes = objects.get("sessions", 0) / events
    log_bytes = objects.get("log", 0) / events
    s3_bytes = archive_bytes + log_bytes
    # A session's table items live from ingestion until TTL deletes them, about SealedBatchRetentionDays after it is
    # sealed: one month of storage per event at the default. S3 objects are kept for ArchiveRetentionDays.
    months_in_table = SEALED_BATCH_RETENTION_DAYS / 30
    per_million_month = {
        "dynamodb_until_expiry": table_bytes * 1e6 / GIB * PRICE_DYNAMODB_GB_MONTH,
        "dynamodb_kept_heads_and_log_entries": kept_bytes * 1e6 / GIB * PRICE_DYNAMODB_GB_MONTH,
        "s3_archive_and_log": s3_bytes * 1e6 / GIB * PRICE_S3_GB_MONTH,
    }
    sealer = {
        "dynamodb_writes": measured["sealer_wru"] * ingest_cost.PRICE_WRU,
        "dynamodb_reads": measured["sealer_rru"] * ingest_cost.PRICE_RRU,
        "s3_requests": measured["s3_puts"] * PRICE_S3_PUT + measured["s3_other"] * PRICE_S3_GET,
        "kms_signs": measured["kms_signs"] * PRICE_KMS_SIGN,
        # An upper bound: the handler's CPU time here includes moto answering every request in this process.
        "lambda": measured["seal_seconds"] * SEAL_MEMORY_GB * ingest_cost.PRICE_LAMBDA_PER_GB_SECOND,
    }
    return {
        "sessions": sessions,
        "events_per_session": EVENTS_PER_SESSION,
        "sealer_runs": len(SESSIONS_PER_RUN),
        "dynamodb_item_bytes_per_event_until_expiry": round(table_bytes, 1),
        "dynamodb_item_bytes_per_event_never_expiring": round(kept_bytes, 1),
        "dynamodb_items": dynamodb["items"],
        "s3_archive_bytes_per_event": round(archive_bytes, 1),
        "s3_log_bytes_per_event": round(log_bytes, 1),
        "s3_keys_bytes_total": objects.get("keys", 0),
        "storage_usd_per_million_events_per_month": round(sum(per_million_month.values()), 5),
        "storage_usd_per_million_events_per_month_by_part": {
            name: round(value, 5) for name, value in per_million_month.items()
        },
        "dynamodb_months_per_event_assumed": months_in_table,
        "s3_usd_per_million_events_over_archive_retention": round(
            per_million_month["s3_archive_and_log"] * ARCHIVE_RETENTION_DAYS / 30, 4
        ),
        "sealer_requests": measured["sealer_requests"],
        "sealer_wru_per_event": round(measured["sealer_wru"] / events, 4),
        "sealer_rru_per_event": round(measured["sealer_rru"] / events, 4),
        "sealer_usd_per_million_events": round(sum(sealer.values()) / events * 1e6, 4),
        "sealer_usd_per_million_events_by_part": {
            name: round(value / events * 1e6, 4) for name, value in sealer.items()
        },
        "assumptions": {
            "sealed_batch_retention_days": SEALED_BATCH_RETENTION_DAYS,
            "archive_retention_days": ARCHIVE_RETENTION_DAYS,
            "prices_usd_per_gb_month": {"dynamodb_standard": PRICE_DYNAMODB_GB_MONTH, "s3_standard": PRICE_S3_GB_MONTH},
            "gb_bytes": GIB,
        },
    }


def main() -> None:
    # The handlers write their metrics to stdout (EMF lines, as on Lambda): into a sink, so this prints one object.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        measured = measure(random.Random(20261207))
    print(json.dumps(storage_figures(measured), indent=2))


if __name__ == "__main__":
    main()
