"""The ingest Lambda handler called in-process over moto, with the API Gateway HTTP API (payload 2.0) event it gets
on AWS: fast enough for property-based tests, and the same handler code the local stack serves."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.resources import create_table
from tests.support.handlers import load_handler_module

REGION = "us-east-1"
SERVICE_ID = "agentops-replay-hardening"
AGENT_ARN = "arn:aws:iam::111122223333:user/hardening-agent"


@dataclass(frozen=True)
class HandlerResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class InProcessIngest:
    def __init__(self, module: ModuleType) -> None:
        self.module = module

    @property
    def store(self) -> Any:
        """The handler's own ``DynamoDBChainStore`` (reads what the handler wrote)."""
        return self.module.store

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        caller: str | None = AGENT_ARN,
        content_type: str | None = "application/json",
    ) -> HandlerResponse:
        request_context: dict[str, Any] = {
            "accountId": "111122223333",
            "apiId": "hardening",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        }
        if caller is not None:
            request_context["authorizer"] = {"iam": {"userArn": caller, "accessKey": "AKIAHARDENING"}}
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:  # API Gateway base64-encodes bodies that are not UTF-8 text
            text, encoded = base64.b64encode(body).decode("ascii"), True
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": content_type} if content_type else {},
            "requestContext": request_context,
            "body": text,
            "isBase64Encoded": encoded,
        }
        result = self.module.lambda_handler(event, _LambdaContext())
        return HandlerResponse(result["statusCode"], result["body"].encode("utf-8"))

    def post_events(self, session_id: str, body: bytes, **options: Any) -> HandlerResponse:
        return self.call("POST", f"/v1/sessions/{session_id}/events", body, **options)


class _LambdaContext:
    function_name = "IngestFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:IngestFunction"
    aws_request_id = "hardening"


@contextmanager
def ingest_over_moto() -> Iterator[InProcessIngest]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SERVICE_ID": SERVICE_ID,
            "SEAL_IDLE_SECONDS": "3600",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            patch.setenv("TABLE_NAME", create_table(boto3.client("dynamodb", region_name=REGION)))
            yield InProcessIngest(load_handler_module("ingest"))
