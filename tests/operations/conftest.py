"""A deployment in this process: the template's table, archive bucket and seal key in moto, and the real handlers
loaded with the environment the template gives them, so their metrics (EMF lines on stdout) can be read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from agentops_server.metrics_emf import EmfRecorder
from moto import mock_aws

from infra.resources import create_archive_bucket, create_seal_key, create_table
from infra.template import load_template
from tests.hardening.inprocess import logging_levels_restored
from tests.support.handlers import load_handler_module

REGION = "us-east-1"
BUCKET = "agentops-operations-test"
SERVICE_ID = "agentops-replay-operations"
AGENT = "arn:aws:iam::111122223333:user/operations-agent"


def service_name() -> str:
    """The ``service`` dimension of every metric: POWERTOOLS_SERVICE_NAME as the template sets it for all functions."""
    value: str = load_template()["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    return value


@dataclass
class Deployment:
    seal_key_id: str
    patch: pytest.MonkeyPatch
    handlers: dict[str, ModuleType] = field(default_factory=dict)

    def handler(self, name: str) -> ModuleType:
        if name not in self.handlers:
            self.handlers[name] = load_handler_module(name)
        return self.handlers[name]


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with pytest.MonkeyPatch.context() as patch, logging_levels_restored():
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SERVICE_ID": SERVICE_ID,
            "SEAL_IDLE_SECONDS": "3600",
            "POWERTOOLS_SERVICE_NAME": service_name(),
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            "ARCHIVE_BUCKET": BUCKET,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
        with mock_aws():
            patch.setenv("TABLE_NAME", create_table(boto3.client("dynamodb", region_name=REGION)))
            create_archive_bucket(boto3.client("s3", region_name=REGION), BUCKET, 1)
            seal_key_id = create_seal_key(boto3.client("kms", region_name=REGION))
            patch.setenv("SEAL_KEY_ID", seal_key_id)
            # Powertools' Metrics instances share one pending set per process: start from none left by other tests
            # that drove a core without flushing.
            EmfRecorder().metrics.clear_metrics()
            yield Deployment(seal_key_id, patch)


@dataclass(frozen=True)
class MetricRecord:
    namespace: str
    name: str
    unit: str
    dimensions: dict[str, str]
    value: Any
    line: str  # the whole EMF line, to search for what must never be in it


def emf_records(output: str) -> list[MetricRecord]:
    """Every metric in the CloudWatch embedded metric format lines of ``output`` (log lines are skipped)."""
    records = []
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            (dimension_names,) = directive["Dimensions"]
            for metric in directive["Metrics"]:
                records.append(
                    MetricRecord(
                        namespace=directive["Namespace"],
                        name=metric["Name"],
                        unit=metric["Unit"],
                        dimensions={name: document[name] for name in dimension_names},
                        value=document[metric["Name"]],
                        line=line,
                    )
                )
    return records
