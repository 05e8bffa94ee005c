"""The chain an SDK client wrote locally (``AgentOpsClient(local_path=...)``), read back as the verifier reads it."""

from __future__ import annotations

from typing import Any

from agentops_replay import AgentOpsClient, Session
from agentops_verify import loads


def local_chain(client: AgentOpsClient, session: Session) -> list[dict[str, Any]]:
    """The events of ``session`` in the client's local chain file, in order."""
    assert client.local_writer is not None
    return [loads(line) for line in client.local_writer.path_of(session.session_id).read_bytes().splitlines()]
