"""The SDK's unit tests run in local authority mode or disabled: no network."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_agentops_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTOPS_DISABLED", raising=False)
    monkeypatch.delenv("AGENTOPS_ENDPOINT", raising=False)
