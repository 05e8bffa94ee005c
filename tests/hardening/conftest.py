"""Hardening fixtures: one local stack for the suites that attack the service over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.launcher import LocalStackHandle, running_local_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    log_path = tmp_path_factory.mktemp("hardening-stack") / "local_stack.log"
    with running_local_stack(log_path) as stack:
        yield stack
