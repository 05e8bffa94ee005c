"""The ingest handler over moto: a table created from template.yaml, API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.resources import create_table
from tests.functional.conftest import BUCKET, REGION
from tests.support.apigw import http_api_event, invoke
from tests.support.handlers import load_handler_module

SERVICE_ID = "agentops-replay-test"
AGENT = "arn:aws:iam::111122223333:user/agent"
INTRUDER = "arn:aws:iam::111122223333:user/intruder"
NO_CALLER = ""


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table_name(dynamodb: Any) -> str:
    return create_table(dynamodb)


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class Api:
    """Calls the ingest Lambda handler with the event API Gateway would send."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str | None = None,
        caller: str = AGENT,
        content_type: str = "application/json",
    ) -> Response:
        event = http_api_event(method, path, caller=caller or None, body=body, content_type=content_type or None)
        result = invoke(self.module, event, "IngestFunction")
        return Response(result["statusCode"], json.loads(result["body"]), result.get("headers", {}))

    def post_events(self, session_id: str, events: list[dict[str, Any]], **options: Any) -> Response:
        return self.call("POST", f"/v1/sessions/{session_id}/events", body=json.dumps({"events": events}), **options)

    def get_session(self, session_id: str, caller: str = AGENT) -> Response:
        return self.call("GET", f"/v1/sessions/{session_id}", caller=caller)


@pytest.fixture
def handler(table_name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("SERVICE_ID", SERVICE_ID)
    monkeypatch.setenv("SEAL_IDLE_SECONDS", "3600")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    return load_handler_module("ingest")


@pytest.fixture
def api(handler: ModuleType) -> Api:
    return Api(handler)


def table_items(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every item of the table, sorted: the "nothing was written" oracle."""
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**arguments)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


@pytest.fixture
def snapshot(dynamodb: Any, table_name: str) -> Callable[[], list[dict[str, Any]]]:
    return lambda: table_items(dynamodb, table_name)
