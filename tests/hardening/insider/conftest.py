"""One deployment over moto for the insider attacks: the table from template.yaml, the Object Lock bucket, the seal
key in KMS, and the real seal, chain and ingest handlers built from the environment the template gives them.

The attacker holds the ingest function's DynamoDB rights only: it writes items straight into the table (through
``DynamoDBChainStore``, which writes exactly the items ingest writes, or with a raw ``PutItem``); it has no KMS and no
S3 access. moto does not enforce IAM, so what the role may do is checked on the template in ``tests/hardening/iam``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from moto import mock_aws

from infra.lambda_runtime import LocalLambdaContext
from infra.resources import create_archive_bucket, create_seal_key, create_table
from tests.support.apigw import http_api_event, invoke
from tests.support.handlers import load_handler_module

REGION = "us-east-1"
BUCKET = "insider-archive"
SERVICE_ID = "agentops-replay-insider"
AUDITOR = "arn:aws:iam::111122223333:user/auditor"
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@dataclass
class Deployment:
    dynamodb: Any
    s3: Any
    table_name: str
    store: DynamoDBChainStore
    seal: ModuleType
    chain: ModuleType
    ingest: ModuleType

    def run_sealer(self, timeout_seconds: int = 900) -> tuple[list[str], list[dict[str, Any]]]:
        """One scheduled run; the ids it sealed and the JSON log records it wrote (what CloudWatch would receive).

        Powertools loggers of one service name share their configuration within a process, so a handler loaded
        earlier in the test run may have set it quieter: the levels a Lambda would have are set for the run."""
        log = io.StringIO()
        self.seal.logger.registered_handler.setStream(log)
        core = logging.getLogger("agentops_server")
        levels = (self.seal.logger.log_level, core.level)
        self.seal.logger.setLevel(logging.INFO)
        core.setLevel(logging.INFO)
        try:
            context = LocalLambdaContext("SealFunction", 1769, timeout_seconds)
            result = self.seal.lambda_handler(SCHEDULED_EVENT, context)
        finally:
            self.seal.logger.setLevel(levels[0])
            core.setLevel(levels[1])
        return result["sealed"], [json.loads(line) for line in log.getvalue().splitlines()]

    def get(self, path: str) -> tuple[int, Any]:
        result = invoke(self.chain, http_api_event("GET", path, caller=AUDITOR), "ChainFunction")
        return result["statusCode"], json.loads(result["body"])

    def call(self, function: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the real handler of ``functions/<function>`` (built afresh from this deployment's env)."""
        text = None if body is None else json.dumps(body)
        result = invoke(load_handler_module(function), http_api_event(method, path, caller=AUDITOR, body=text))
        return result["statusCode"], json.loads(result["body"])

    def post_events(self, session_id: str, events: list[dict[str, Any]], caller: str) -> tuple[int, Any]:
        body = json.dumps({"events": events})
        event = http_api_event("POST", f"/v1/sessions/{session_id}/events", caller=caller, body=body)
        result = invoke(self.ingest, event, "IngestFunction")
        return result["statusCode"], json.loads(result["body"])

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table, in key order (a scan: only a test may)."""
        items = self.dynamodb.scan(TableName=self.table_name, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))

    def object_versions(self, prefix: str) -> list[tuple[str, str]]:
        listing = self.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
        return sorted((version["Key"], version["VersionId"]) for version in listing.get("Versions", []))


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SERVICE_ID": SERVICE_ID,
        "SEAL_IDLE_SECONDS": "3600",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        table_name = create_table(dynamodb)
        create_archive_bucket(s3, BUCKET, 30)
        monkeypatch.setenv("TABLE_NAME", table_name)
        monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
        monkeypatch.setenv("SEAL_KEY_ID", create_seal_key(boto3.client("kms", region_name=REGION)))
        yield Deployment(
            dynamodb=dynamodb,
            s3=s3,
            table_name=table_name,
            store=DynamoDBChainStore(dynamodb, table_name),
            seal=load_handler_module("seal"),
            chain=load_handler_module("chain"),
            ingest=load_handler_module("ingest"),
        )
