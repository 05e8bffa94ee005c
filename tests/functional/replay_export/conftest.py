"""Fixtures for replay and export over moto S3 (Object Lock bucket) and the in-memory chain store.

Sessions are stored the way ingestion and the sealer leave them: batches in the chain store, and for a sealed session
the CHAIN_SEAL batch, the write-once archive object, the published key object and the SEALED head.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.replay import KeySource
from agentops_server.store import ChainStore, SigningKeyRecord
from agentops_verify import canonicalize, sha256_hex

from infra.resources import create_table
from tests.functional.conftest import BUCKET, REGION
from tests.support.apigw import http_api_event, invoke
from tests.support.chains import Event, to_jsonl
from tests.support.keys import SIGNATURE_ALGORITHM, default_signer
from tests.support.stores import stored_batch

OWNER = "arn:aws:iam::111122223333:user/agent"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TABLE = "agentops-replay-test"
CALLER = "arn:aws:iam::111122223333:user/auditor"
UNKNOWN_SESSION = "6f1d1f4e-6f4b-4f0e-9a53-5d0f3f1c2a10"


@pytest.fixture
def store() -> InMemoryChainStore:
    return InMemoryChainStore()


@pytest.fixture
def dynamodb_store(aws: None, s3: Any, monkeypatch: pytest.MonkeyPatch) -> DynamoDBChainStore:
    """The table of template.yaml in moto, named in the environment the handlers read (with the bucket)."""
    client = boto3.client("dynamodb", region_name=REGION)
    create_table(client, table_name=TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    return DynamoDBChainStore(client, TABLE)


def http_event(
    method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None, caller: str | None = CALLER
) -> dict[str, Any]:
    text = body if body is None or isinstance(body, str) else json.dumps(body)
    return http_api_event(method, path, caller=caller, body=text, query=query)


def call(handler: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    response = invoke(handler, event)
    return response["statusCode"], json.loads(response["body"])


def store_events(
    store: ChainStore, events: Sequence[Event], *, batch_size: int = 50, session_id: str | None = None
) -> None:
    """Put ``events`` into ``store`` as ingestion (and, for a CHAIN_SEAL, the sealer) does: batch by batch, under
    their own session id unless ``session_id`` says otherwise (a chain stored where it does not belong)."""
    session_id = session_id if session_id is not None else events[0]["session_id"]
    store.create_session(session_id, OWNER, T0)
    ordinary = [event for event in events if event["event_type"] != "CHAIN_SEAL"]
    chunks = [ordinary[start : start + batch_size] for start in range(0, len(ordinary), batch_size)]
    chunks += [[event] for event in events if event["event_type"] == "CHAIN_SEAL"]
    for chunk in chunks:
        batch = stored_batch(chunk, owner=OWNER, accepted_at=T0, session_id=session_id)
        store.put_batch(batch)
        store.advance_head(batch)


def publish_default_key(s3: Any) -> None:
    """Publish the default signer's key as a write-once key object, as the sealer does before it signs: the key set
    replay and export trust."""
    signer = default_signer()
    S3Archive(s3, BUCKET).publish_key(SigningKeyRecord(signer.key_id, SIGNATURE_ALGORITHM, signer.public_key_pem, T0))


def published_keys(s3: Any) -> KeySource:
    """The trusted-key source the handlers use: the published key objects of the bucket."""
    return S3Archive(s3, BUCKET).published_keys


def seal_into_archive(store: ChainStore, s3: Any, events: Sequence[Event], *, evidence_class: str) -> None:
    """Store a sealed chain (its last event is the CHAIN_SEAL) and archive it, as the sealer would."""
    store_events(store, events)
    publish_default_key(s3)
    session_id = events[0]["session_id"]
    body = to_jsonl(events)
    archive = S3Archive(s3, BUCKET).write_session(
        session_id, (canonicalize(event) for event in events), sha256_hex(body)
    )
    store.mark_sealing(session_id)
    store.mark_sealed(session_id, archive, T0, evidence_class, ())
