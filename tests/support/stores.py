"""Chain events as the chain store holds them: what ingestion (and, for a CHAIN_SEAL, the sealer) would store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agentops_server.store import StoredBatch
from agentops_verify import canonicalize, sha256_hex


def stored_batch(
    events: Sequence[dict[str, Any]], *, owner: str, accepted_at: datetime, session_id: str | None = None
) -> StoredBatch:
    """One batch of consecutive ``events``, stored under their own session id unless ``session_id`` says otherwise."""
    lines = tuple(canonicalize(event) for event in events)
    return StoredBatch(
        session_id=session_id if session_id is not None else events[0]["session_id"],
        first_sequence=events[0]["sequence_number"],
        lines=lines,
        event_ids=tuple(event["event_id"] for event in events),
        event_hashes=tuple(event["event_hash"] for event in events),
        owner=owner,
        request_digest=sha256_hex(b"\n".join(lines)),
        accepted_at=accepted_at,
        ends_session=events[-1]["event_type"] == "SESSION_END",
        is_seal=events[-1]["event_type"] == "CHAIN_SEAL",
    )
