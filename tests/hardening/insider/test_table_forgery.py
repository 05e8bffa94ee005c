"""An insider with the ingest role's DynamoDB rights forges a session's seal and a key record in the table.

Before ELS rev 2 this got an edited session archived under Object Lock as AUTHORITATIVE_EVIDENCE: the sealer reused
the forged seal, classified it with the table's key records trusted, and published the forged key in ``GET /v1/keys``
and ``keys/index.json``. The trust anchors are KMS and the locked bucket (ELS section 8): a table record can neither
add a key nor stand in for a seal.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.store import STATUS_SEALED

from tests.hardening.insider.conftest import REGION, Deployment
from tests.support.chains import Event, build_chain, rehash_from, reseal
from tests.support.keys import TestSigner
from tests.support.stores import stored_batch

OWNER = "arn:aws:iam::111122223333:user/agent"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def store_like_ingest(deployment: Deployment, events: list[Event], *, seal_flag: bool = True) -> str:
    """Write ``events`` as the ingest role writes them: the head, one conditional item per batch of three, the index.
    ``seal_flag=False`` stores a final CHAIN_SEAL inside an ordinary batch item."""
    store = deployment.store
    session_id: str = events[0]["session_id"]
    store.create_session(session_id, OWNER, T0)
    for start in range(0, len(events), 3):
        batch = stored_batch(events[start : start + 3], owner=OWNER, accepted_at=T0)
        batch = replace(batch, is_seal=batch.is_seal and seal_flag)
        store.put_batch(batch)
        store.advance_head(batch)
    return session_id


def write_key_record(deployment: Deployment, key: TestSigner) -> None:
    """The key record the sealer used to trust: ``pk=KEY``, written with a plain PutItem."""
    deployment.dynamodb.put_item(
        TableName=deployment.table_name,
        Item={
            "pk": {"S": "KEY"},
            "sk": {"S": key.key_id},
            "algorithm": {"S": "ECDSA_P256_SHA256"},
            "public_key_pem": {"S": key.public_key_pem},
            "first_used_at": {"S": "2026-01-01T00:00:00.000000Z"},
        },
    )


def edited_and_resealed(attacker: TestSigner, deployment_key_id: str, variant: str) -> list[Event]:
    """A genuine-looking session with one payload edited, re-hashed and sealed by the attacker."""
    genuine = build_chain(6, end=True, start_time=T0)
    edited = copy.deepcopy(genuine)
    edited[2]["payload"]["justification"] = "approved_by: Chief Compliance Officer"
    forged = reseal(rehash_from(edited, 2), attacker)
    if variant == "claims_the_sealer_key_id":  # the attacker's signature under the name of the sealer's key
        forged[-1]["payload"]["signer_key_id"] = deployment_key_id
        forged = rehash_from(forged, len(forged) - 1)
    return forged


def sealer_key_id() -> str:
    return KmsSigner(boto3.client("kms", region_name=REGION), os.environ["SEAL_KEY_ID"]).key_id


def alarms(records: list[dict[str, Any]], name: str) -> list[str]:
    return [record["session_id"] for record in records if record.get("alarm") == name]


@pytest.mark.parametrize(
    "variant", ["signed_by_the_attackers_key", "claims_the_sealer_key_id", "seal_hidden_in_an_ordinary_batch"]
)
def test_table_forgery_of_key_record_and_seal_is_refused(deployment: Deployment, variant: str) -> None:
    genuine = store_like_ingest(deployment, build_chain(5, end=True, seal=None, start_time=T0))
    assert deployment.run_sealer()[0] == [genuine]
    keys_before = deployment.get("/v1/keys")
    key_objects_before = deployment.object_versions("keys/")
    assert keys_before[0] == 200
    assert [key["signer_key_id"] for key in keys_before[1]["keys"]] == [sealer_key_id()]

    attacker = TestSigner()
    write_key_record(deployment, attacker)
    forged = edited_and_resealed(attacker, sealer_key_id(), variant)
    victim = store_like_ingest(deployment, forged, seal_flag=variant != "seal_hidden_in_an_ordinary_batch")

    sealed, records = deployment.run_sealer()

    assert sealed == []
    assert alarms(records, "SEAL_FORGERY") == [victim]
    head = deployment.store.get_head(victim)
    assert head is not None
    assert head.status != STATUS_SEALED
    assert head.seal_refused_reason is not None
    assert head.seal_refused_reason.startswith("SEAL_FORGERY")
    assert deployment.object_versions(f"sessions/{victim}") == []
    assert deployment.get("/v1/keys") == keys_before
    assert deployment.object_versions("keys/") == key_objects_before
    assert deployment.run_sealer()[0] == []  # left for a person: not retried, not archived later
    assert deployment.object_versions(f"sessions/{victim}") == []


def test_keys_route_lists_only_published_key_objects_whatever_the_table_holds(deployment: Deployment) -> None:
    write_key_record(deployment, TestSigner())
    assert deployment.get("/v1/keys") == (200, {"keys": []})
    session_id = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    assert deployment.run_sealer()[0] == [session_id]
    status, body = deployment.get("/v1/keys")
    assert status == 200
    assert [key["signer_key_id"] for key in body["keys"]] == [sealer_key_id()]


def test_forged_key_record_in_table_does_not_verify_replay_or_export(deployment: Deployment) -> None:
    """Replay and export trust the published key objects only: a key record written into the table with a chain the
    attacker sealed under it neither replays as verified evidence nor exports as evidence of any class."""
    genuine = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    assert deployment.run_sealer()[0] == [genuine]
    attacker = TestSigner()
    write_key_record(deployment, attacker)
    victim = store_like_ingest(
        deployment, edited_and_resealed(attacker, sealer_key_id(), "signed_by_the_attackers_key")
    )
    exports_before = deployment.object_versions("exports/")

    status, replayed = deployment.call("replay", "GET", f"/v1/sessions/{victim}/replay")
    exported = deployment.call("export", "POST", f"/v1/sessions/{victim}/exports", body={"format": "json"})

    verification = replayed["verification"] if status == 200 else replayed["error"]["details"]["verification"]
    assert verification["evidence_class"] != "AUTHORITATIVE_EVIDENCE"
    assert verification.get("seal_verified") is not True
    assert exported[0] == 422
    assert exported[1]["error"]["code"] == "VERIFICATION_FAILED"
    assert deployment.object_versions("exports/") == exports_before
