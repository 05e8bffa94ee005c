"""Fixtures for the sealer over moto (S3 Object Lock, KMS with real ECDSA) and the in-memory chain store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.store import ChainStore, SessionHead

from infra.resources import create_seal_key
from tests.functional.conftest import BUCKET, REGION
from tests.support.chains import Event, build_chain
from tests.support.stores import stored_batch

SERVICE_ID = "agentops-replay-test"
OWNER = "arn:aws:iam::111122223333:user/agent"
IDLE_SECONDS = 3600
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def kms(aws: None) -> Any:
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def seal_key_id(kms: Any) -> str:
    return create_seal_key(kms)


@pytest.fixture
def signer(kms: Any, seal_key_id: str) -> KmsSigner:
    return KmsSigner(kms, seal_key_id)


@pytest.fixture
def archive(s3: Any) -> S3Archive:
    return S3Archive(s3, BUCKET)


@pytest.fixture
def store() -> InMemoryChainStore:
    return InMemoryChainStore(seal_idle_seconds=IDLE_SECONDS)


def store_events(
    store: ChainStore, events: Sequence[Event], *, batch_size: int = 3, accepted_at: datetime = T0
) -> None:
    """Put ``events`` into ``store`` the way ingestion does: one conditional batch at a time, then the head."""
    session_id = events[0]["session_id"]
    if events[0]["sequence_number"] == 0:
        store.create_session(session_id, OWNER, accepted_at)
    for start in range(0, len(events), batch_size):
        batch = stored_batch(events[start : start + batch_size], owner=OWNER, accepted_at=accepted_at)
        store.put_batch(batch)
        store.advance_head(batch)


def ingest_session(store: ChainStore, n_events: int = 6, *, end: bool = True, accepted_at: datetime = T0) -> str:
    """A stored server-authority session of ``n_events`` events (ended or not), unsealed; returns its id."""
    events = build_chain(n_events, end=end, seal=None, start_time=accepted_at)
    store_events(store, events, accepted_at=accepted_at)
    session_id: str = events[0]["session_id"]
    return session_id


def after_idle(moment: datetime = T0) -> datetime:
    return moment + timedelta(seconds=IDLE_SECONDS + 1)


def head_of(store: ChainStore, session_id: str) -> SessionHead:
    head = store.get_head(session_id)
    assert head is not None, f"no head for {session_id}"
    return head


def stored_lines(store: ChainStore, session_id: str) -> bytes:
    return b"".join(line + b"\n" for line in store.iter_lines(session_id))


def archive_versions(s3: Any, key: str) -> list[dict[str, Any]]:
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    return [version for version in listing.get("Versions", []) if version["Key"] == key]
