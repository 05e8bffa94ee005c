"""Cost of publishing the evidence log: the requests and dollars it adds to the sealer, per run and per session.

The same sessions are sealed twice in one moto process, once by a sealer with the evidence log and once by one
without (the baseline), through the real DynamoDB and S3 adapters and the KMS signer; botocore event hooks count every
request. Each sealer first seals five sessions (so a log and a checkpoint exist, the steady state), then runs of 1, 10
and 50 sessions (50 is the sealer's limit per run) and one run with nothing due are measured. The difference between
the two sealers is the log's cost; fitted over the runs as a fixed cost per publication (the partial tiles, the
checkpoint and its signature, the state) plus a cost per session (its marker, its leaf index, its share of the
transaction and of the state item).

Pricing (us-east-1 list prices): DynamoDB on-demand $0.625 per million write units and $0.125 per million read units
(writes sized by DynamoDB's rules: 1 unit per started KB, twice in a transaction, plus one unit per ``LogPending``
index entry added or removed; reads 1 unit per started 4 KB consistent, half eventually consistent); S3 Standard
$0.005 per 1,000 PUTs and $0.0004 per 1,000 GETs/HEADs; KMS $0.15 per 10,000 asymmetric (ECC) Sign requests; Lambda
$0.0000166667 per GB-second at the sealer's 256 MB, its extra duration modelled as one round trip per extra request
(DynamoDB 6 ms, S3 15 ms, KMS 15 ms; the publisher's own compute, hashing at most 99 leaves, is far below that).

Prints one JSON object. Run: ``.venv/bin/python benchmarks/log_publish.py``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.aws.evidence_log_s3 import S3LogObjects
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.evidence_log_publisher import EvidenceLogPublisher
from agentops_server.sealing import Sealer
from agentops_server.store import ChainStore
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infra.resources import create_archive_bucket, create_seal_key, create_table
from tests.support.chains import build_chain
from tests.support.stores import stored_batch

REGION = "us-east-1"
OWNER = "arn:aws:iam::111122223333:user/benchmark-agent"
SERVICE_ID = "agentops-benchmark"
EVENTS_PER_SESSION = 20  # stored events; the log's cost does not depend on a session's length
RUN_SIZES = (1, 10, 50)
SCHEDULED_RUNS_PER_MONTH = 30 * 24 * 12  # rate(5 minutes)
MEMORY_GB = 256 / 1024
PRICE_WRU = 0.625 / 1e6
PRICE_RRU = 0.125 / 1e6
PRICE_S3_PUT = 0.005 / 1000
PRICE_S3_GET = 0.0004 / 1000
PRICE_KMS_SIGN = 0.15 / 10_000
PRICE_LAMBDA_GB_SECOND = 0.0000166667
ROUND_TRIP_SECONDS = {"dynamodb": 0.006, "s3": 0.015, "kms": 0.015}
S3_PUTS = frozenset({"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def attribute_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "B"):
        return len(inner.encode() if isinstance(inner, str) else inner)
    if kind == "N":
        return math.ceil(len(inner.lstrip("-0") or "0") / 2) + 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name) + attribute_size(element) for name, element in inner.items())
    return 1


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name) + attribute_size(value) for name, value in (item or {}).items())


def write_units(item: dict[str, Any] | None) -> int:
    return max(1, math.ceil(item_size(item) / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


class Meter:
    """Counts every request of the clients it is attached to, and sizes DynamoDB's in capacity units."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self._params: dict[str, Any] = {}

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params", self._remember)
        client.meta.events.register("after-call", self._count)
        client.meta.events.register("after-call-error", self._count_failure)
        return client

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _count_failure(self, model: Any, **_: Any) -> None:
        self._count(model, {}, failed=True)

    def _count(self, model: Any, parsed: dict[str, Any], failed: bool = False, **_: Any) -> None:
        service = model.service_model.service_name
        self.requests[f"{service}:{model.name}"] += 1
        if service == "dynamodb":
            self._size(model.name, self._params, parsed, failed)

    def _size(self, operation: str, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        if operation == "PutItem":
            self.wru += write_units(params["Item"]) + (0 if failed else "log_queue" in params["Item"])
        elif operation == "UpdateItem":
            self.wru += 1
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                if "Put" in entry:
                    self.wru += 2 * write_units(entry["Put"]["Item"])
                else:
                    self.wru += 2 + (0 if failed else 1)  # a session's log item, and its LogPending entry removed
        elif operation == "GetItem":
            self.rru += read_units(item_size(parsed.get("Item")), bool(params.get("ConsistentRead")))
        elif operation == "Query":
            size = sum(item_size(item) for item in parsed.get("Items", []))
            self.rru += read_units(size, bool(params.get("ConsistentRead")))

    def snapshot(self) -> dict[str, Any]:
        return {"requests": Counter(self.requests), "wru": self.wru, "rru": self.rru}


def usd(figures: dict[str, Any]) -> dict[str, float]:
    requests: Counter[str] = figures["requests"]
    s3_puts = sum(count for name, count in requests.items() if name.split(":")[1] in S3_PUTS and "s3:" in name)
    s3_gets = sum(count for name, count in requests.items() if name.startswith("s3:")) - s3_puts
    signs = requests["kms:Sign"]
    seconds = sum(count * ROUND_TRIP_SECONDS[name.split(":")[0]] for name, count in requests.items())
    return {
        "dynamodb": figures["wru"] * PRICE_WRU + figures["rru"] * PRICE_RRU,
        "s3": s3_puts * PRICE_S3_PUT + s3_gets * PRICE_S3_GET,
        "kms": signs * PRICE_KMS_SIGN,
        "lambda": seconds * MEMORY_GB * PRICE_LAMBDA_GB_SECOND,
    }


def difference(with_log: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    requests = Counter(with_log["requests"])
    requests.subtract(without["requests"])
    return {
        "requests": Counter({name: count for name, count in requests.items() if count}),
        "wru": with_log["wru"] - without["wru"],
        "rru": with_log["rru"] - without["rru"],
    }


def ingest(store: ChainStore, count: int, now: datetime) -> None:
    for _ in range(count):
        events = build_chain(EVENTS_PER_SESSION, seal=None, start_time=now)
        store.create_session(events[0]["session_id"], OWNER, now)
        for start in range(0, len(events), 10):
            batch = stored_batch(events[start : start + 10], owner=OWNER, accepted_at=now)
            store.put_batch(batch)
            store.advance_head(batch)


class Deployment:
    """One table, bucket and seal key; a sealer with or without the evidence log, metered."""

    def __init__(self, name: str, *, with_log: bool) -> None:
        self.meter = Meter()
        dynamodb = self.meter.attach(boto3.client("dynamodb", region_name=REGION))
        s3 = self.meter.attach(boto3.client("s3", region_name=REGION))
        kms = self.meter.attach(boto3.client("kms", region_name=REGION))
        table = create_table(boto3.client("dynamodb", region_name=REGION), table_name=name)
        create_archive_bucket(boto3.client("s3", region_name=REGION), name, retention_days=1)
        signer = KmsSigner(kms, create_seal_key(boto3.client("kms", region_name=REGION)))
        self.store = DynamoDBChainStore(dynamodb, table)
        self.publication_seconds = 0.0
        publisher = None
        if with_log:
            publisher = EvidenceLogPublisher(
                DynamoDBLogState(dynamodb, table), S3LogObjects(s3, name), signer, f"{SERVICE_ID}/evidence-log"
            )
            run = publisher.run

            def timed_run(*arguments: Any, **keywords: Any) -> Any:
                started = time.perf_counter()
                try:
                    return run(*arguments, **keywords)
                finally:
                    self.publication_seconds += time.perf_counter() - started

            publisher.run = timed_run  # type: ignore[method-assign]
        self.sealer = Sealer(self.store, signer, S3Archive(s3, name), SERVICE_ID, limit=100, evidence_log=publisher)

    def run(self, sessions: int, now: datetime) -> dict[str, Any]:
        """Ingest ``sessions`` ended sessions (unmetered), then one metered sealer run."""
        ingest(self.store, sessions, now - timedelta(hours=2))
        before = self.meter.snapshot()
        sealed = self.sealer.seal_due_sessions(now)
        assert len(sealed) == sessions, sealed
        return difference(self.meter.snapshot(), before)


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="benchmark", AWS_SECRET_ACCESS_KEY="benchmark", AWS_DEFAULT_REGION=REGION)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        logged, baseline = Deployment("with-log", with_log=True), Deployment("without-log", with_log=False)
        now = T0
        for deployment in (logged, baseline):
            deployment.run(5, now)
        runs: dict[str, Any] = {}
        for sessions in (*RUN_SIZES, 0):
            now += timedelta(minutes=5)
            extra = difference(logged.run(sessions, now), baseline.run(sessions, now))
            cost = usd(extra)
            runs[str(sessions)] = {
                "extra_requests": dict(sorted(extra["requests"].items())),
                "extra_wru": extra["wru"],
                "extra_rru": extra["rru"],
                "extra_usd_by_part": {part: f"{value:.8f}" for part, value in cost.items()},
                "extra_usd": sum(cost.values()),
            }
    small, large = RUN_SIZES[0], RUN_SIZES[-1]
    per_session = (runs[str(large)]["extra_usd"] - runs[str(small)]["extra_usd"]) / (large - small)
    per_publication = runs[str(small)]["extra_usd"] - small * per_session
    idle = runs["0"]["extra_usd"]
    checkpoint_signatures = {size: runs[size]["extra_requests"].get("kms:Sign", 0) for size in runs}
    figures = {
        "runs_by_sessions_sealed": {
            size: {**run, "extra_usd": f"{run['extra_usd']:.8f}"} for size, run in runs.items()
        },
        "checkpoint_signatures_per_run": checkpoint_signatures,
        "usd_per_session": f"{per_session:.8f}",
        "usd_per_publication": f"{per_publication:.8f}",
        "usd_per_idle_run": f"{idle:.8f}",
        "usd_per_month_ceiling_fixed": round(SCHEDULED_RUNS_PER_MONTH * max(per_publication, idle), 4),
        "usd_per_million_events_100_event_sessions": round(per_session * 1e6 / 100, 4),
        "usd_per_million_events_1000_event_sessions": round(per_session * 1e6 / 1000, 4),
        "usd_per_million_events_100_event_sessions_one_per_run": round((per_session + per_publication) * 1e4, 4),
        "publication_seconds_in_process_moto": round(logged.publication_seconds, 3),
        "assumed_round_trip_seconds": ROUND_TRIP_SECONDS,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
