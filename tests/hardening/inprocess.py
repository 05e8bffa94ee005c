"""The ingest Lambda handler called in-process over moto, with the API Gateway HTTP API (payload 2.0) event it gets
on AWS: fast enough for property-based tests, and the same handler code the local stack serves."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.resources import create_table
from tests.support.apigw import http_api_event, invoke
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
        return self.module.wiring.store

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        caller: str | None = AGENT_ARN,
        content_type: str | None = "application/json",
    ) -> HandlerResponse:
        event = http_api_event(method, path, caller=caller, body=body, content_type=content_type)
        result = invoke(self.module, event, "IngestFunction")
        return HandlerResponse(result["statusCode"], result["body"].encode("utf-8"))

    def post_events(self, session_id: str, body: bytes, **options: Any) -> HandlerResponse:
        return self.call("POST", f"/v1/sessions/{session_id}/events", body, **options)


@contextmanager
def logging_levels_restored() -> Iterator[None]:
    """Loggers are process-wide and Powertools loggers of one service share their configuration: a handler loaded
    here at CRITICAL must not silence the alarms that later tests of other handlers read from their logs."""
    before = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if isinstance(logger, logging.Logger):
                logger.setLevel(before.get(name, logging.NOTSET))


@contextmanager
def ingest_over_moto() -> Iterator[InProcessIngest]:
    with pytest.MonkeyPatch.context() as patch, logging_levels_restored():
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SERVICE_ID": SERVICE_ID,
            "ARCHIVE_BUCKET": "inprocess-archive",
            "SEAL_IDLE_SECONDS": "3600",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            patch.setenv("TABLE_NAME", create_table(boto3.client("dynamodb", region_name=REGION)))
            yield InProcessIngest(load_handler_module("ingest"))
