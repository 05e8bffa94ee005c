"""Fixtures every functional suite shares: AWS played by moto in this process, and the Object Lock archive bucket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.resources import create_archive_bucket

REGION = "us-east-1"
BUCKET = "agentops-archive-test"
RETENTION_DAYS = 30


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every boto3 client made inside the test, with dummy credentials and no endpoint override."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    create_archive_bucket(client, BUCKET, RETENTION_DAYS)
    return client
