from __future__ import annotations

import pytest
from agentops_server.memory import InMemoryChainStore

from tests.unit.server.store_contract import IDLE_SECONDS, ChainStoreContract


class TestInMemoryChainStore(ChainStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryChainStore:
        return InMemoryChainStore(seal_idle_seconds=IDLE_SECONDS)
