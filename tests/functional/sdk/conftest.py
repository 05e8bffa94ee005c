"""Fixtures for the SDK's functional tests: a fake ingestion service on 127.0.0.1 and AWS credentials in env."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.sdk.fake_ingest import FakeIngest, running_fake_ingest


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSDKFUNCTIONAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AGENTOPS_DISABLED", raising=False)
    monkeypatch.delenv("AGENTOPS_ENDPOINT", raising=False)


@pytest.fixture
def ingest() -> Iterator[tuple[FakeIngest, str]]:
    with running_fake_ingest() as running:
        yield running
