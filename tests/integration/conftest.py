"""Integration fixtures: one local stack (``python -m infra.local_stack``) per test session, reached over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle, running_local_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    log_path = tmp_path_factory.mktemp("local-stack") / "local_stack.log"
    with running_local_stack(log_path) as stack:
        yield stack


@pytest.fixture
def api(local_stack: LocalStackHandle) -> ApiClient:
    """A client signed as a fresh agent principal for every test, so tests never share session ownership."""
    return ApiClient(local_stack.base_url, access_key_id=f"AKID{uuid.uuid4().hex[:16].upper()}")
