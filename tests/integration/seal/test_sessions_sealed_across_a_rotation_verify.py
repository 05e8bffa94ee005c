"""A seal key rotation driven through the local stack as docs/key-rotation.md describes it for a deployment.

A session is sealed with the stack's first key; a new P-256 KMS key is created and named by the template parameter
``SealKeyArn`` (``POST /_local/parameters``: the stack update, after which the seal function cold-starts with the new
``SEAL_KEY_ID``); a second session is sealed with it. Both archives, downloaded through ``GET .../chain``, verify
offline with ``agentops-verify`` under the published key set, and ``GET /v1/keys`` and ``keys/index.json`` keep both
keys.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle, running_local_stack
from infra.resources import create_seal_key
from tests.integration.ingest.builders import batch_body, event, new_session_id, opening_batch
from tests.integration.seal.test_a_sealed_session_verifies_offline_as_authoritative import fetch_archive, verify_offline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    log_path = tmp_path_factory.mktemp("key-rotation") / "local_stack.log"
    with running_local_stack(log_path) as handle:
        yield handle


def _aws(stack: LocalStackHandle, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.info["aws_endpoint"],
        region_name=stack.info["region"],
        aws_access_key_id="local-stack",
        aws_secret_access_key="local-stack",
    )


def _ended_session(api: ApiClient) -> str:
    session_id = new_session_id()
    posted = api.post(
        f"/v1/sessions/{session_id}/events", batch_body([*opening_batch(extra_events=1), event(2, "SESSION_END")])
    )
    assert posted.status == 200, posted.body
    return session_id


def _update_parameters(stack: LocalStackHandle, parameters: dict[str, str]) -> list[str]:
    request = urllib.request.Request(
        f"{stack.base_url}/_local/parameters", data=json.dumps(parameters).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        restarted: list[str] = json.loads(response.read())["restarted"]
        return restarted


def _seal_key_of(archive: bytes) -> str:
    seal = json.loads(archive.splitlines()[-1])
    assert seal["event_type"] == "CHAIN_SEAL"
    key_id: str = seal["payload"]["signer_key_id"]
    return key_id


def test_sessions_sealed_before_and_after_a_rotation_verify_under_the_published_key_set(
    stack: LocalStackHandle, tmp_path: Path
) -> None:
    api = ApiClient(stack.base_url, access_key_id=f"AKID{uuid.uuid4().hex[:16].upper()}")
    before = _ended_session(api)
    assert before in stack.seal_now()
    kms = _aws(stack, "kms")
    new_key_arn: str = kms.describe_key(KeyId=create_seal_key(kms))["KeyMetadata"]["Arn"]

    restarted = _update_parameters(stack, {"SealKeyArn": new_key_arn})
    after = _ended_session(api)
    sealed = stack.seal_now()

    assert restarted == ["SealFunction"]
    assert sealed == [after]
    _, old_archive = fetch_archive(api, before)
    _, new_archive = fetch_archive(api, after)
    old_key, new_key = _seal_key_of(old_archive), _seal_key_of(new_archive)
    assert old_key != new_key
    keys = api.get("/v1/keys")
    assert keys.status == 200
    published = {key["signer_key_id"]: key["public_key_pem"] for key in keys.json()["keys"]}
    assert sorted(published) == sorted([old_key, new_key])
    # The new seal is signed by the key the parameter names (signer_key_id is its public key's fingerprint).
    new_public_key = serialization.load_der_public_key(kms.get_public_key(KeyId=new_key_arn)["PublicKey"])
    expected_pem = new_public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    assert published[new_key].strip() == expected_pem.strip()
    index = json.loads(
        _aws(stack, "s3").get_object(Bucket=stack.info["archive_bucket"], Key="keys/index.json")["Body"].read()
    )
    assert sorted(key["signer_key_id"] for key in index["keys"]) == sorted([old_key, new_key])
    for archive in (old_archive, new_archive):
        report = verify_offline(tmp_path, archive, keys.body)
        assert report["status"] == "PASS"
        assert report["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
        assert report["seal_key_trusted"] is True


def test_an_unknown_parameter_changes_nothing(stack: LocalStackHandle) -> None:
    request = urllib.request.Request(
        f"{stack.base_url}/_local/parameters", data=json.dumps({"NoSuchParameter": "x"}).encode(), method="POST"
    )

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)

    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error"]["code"] == "VALIDATION_ERROR"
