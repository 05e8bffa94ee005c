"""The seal and chain Lambda handlers over moto, built from the environment the template gives them."""

from __future__ import annotations

import io
import json
import uuid
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.dynamodb_batches import decode_lines, encode_lines
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.store import ChainStore

from infra.lambda_runtime import LocalLambdaContext
from infra.resources import create_table
from tests.functional.conftest import BUCKET, REGION
from tests.functional.seal.conftest import SERVICE_ID, archive_versions, ingest_session
from tests.functional.seal.verify import verify_archive
from tests.support.apigw import http_api_event, invoke
from tests.support.handlers import load_handler_module

AUDITOR = "arn:aws:iam::111122223333:user/auditor"
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture
def table_name(aws: None) -> str:
    return create_table(boto3.client("dynamodb", region_name=REGION))


@pytest.fixture
def environment(table_name: str, s3: Any, seal_key_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TABLE_NAME": table_name,
        "ARCHIVE_BUCKET": BUCKET,
        "SEAL_KEY_ID": seal_key_id,
        "SERVICE_ID": SERVICE_ID,
        "SEAL_IDLE_SECONDS": "3600",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def dynamodb_store(environment: None, table_name: str) -> ChainStore:
    return DynamoDBChainStore(boto3.client("dynamodb", region_name=REGION), table_name, seal_idle_seconds=3600)


@pytest.fixture
def seal_handler(environment: None) -> ModuleType:
    return load_handler_module("seal")


@pytest.fixture
def chain_handler(environment: None) -> ModuleType:
    return load_handler_module("chain")


def run_sealer(module: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = module.lambda_handler(SCHEDULED_EVENT, LocalLambdaContext("SealFunction", 1769, 900))
    return result


def get(module: ModuleType, path: str, caller: str | None = AUDITOR) -> tuple[int, dict[str, Any]]:
    result = invoke(module, http_api_event("GET", path, caller=caller), "ChainFunction")
    return result["statusCode"], json.loads(result["body"])


def test_scheduled_run_seals_due_sessions_once(seal_handler: ModuleType, dynamodb_store: ChainStore, s3: Any) -> None:
    ended = ingest_session(dynamodb_store)
    assert run_sealer(seal_handler) == {"sealed": [ended]}
    assert run_sealer(seal_handler) == {"sealed": []}
    head = dynamodb_store.get_head(ended)
    assert head is not None
    assert (head.status, head.evidence_class) == ("SEALED", "AUTHORITATIVE_EVIDENCE")
    assert head.archive is not None
    assert len(archive_versions(s3, head.archive.key)) == 1


def test_chain_link_downloads_the_archived_version_which_verifies_with_the_published_keys(
    seal_handler: ModuleType, chain_handler: ModuleType, dynamodb_store: ChainStore
) -> None:
    session_id = ingest_session(dynamodb_store)
    run_sealer(seal_handler)

    status, chain = get(chain_handler, f"/v1/sessions/{session_id}/chain")
    assert status == 200
    head = dynamodb_store.get_head(session_id)
    assert head is not None
    assert head.archive is not None
    assert {key: chain[key] for key in ("bucket", "key", "version_id", "sha256")} == {
        "bucket": head.archive.bucket,
        "key": head.archive.key,
        "version_id": head.archive.version_id,
        "sha256": head.archive.sha256,
    }
    assert chain["expires_in"] == 900
    download = requests.get(chain["url"], timeout=10)
    assert download.status_code == 200

    status, keys = get(chain_handler, "/v1/keys")
    assert status == 200
    report = verify_archive(download.content, json.dumps(keys).encode())
    assert (report.status, report.evidence_class) == ("PASS", "AUTHORITATIVE_EVIDENCE")


def test_chain_of_an_unsealed_session_is_409_not_sealed(chain_handler: ModuleType, dynamodb_store: ChainStore) -> None:
    session_id = ingest_session(dynamodb_store, end=False)
    status, body = get(chain_handler, f"/v1/sessions/{session_id}/chain")
    assert (status, body["error"]["code"]) == (409, "NOT_SEALED")


def test_chain_of_an_unknown_session_is_404(chain_handler: ModuleType) -> None:
    status, body = get(chain_handler, f"/v1/sessions/{uuid.uuid4()}/chain")
    assert (status, body["error"]["code"]) == (404, "SESSION_NOT_FOUND")


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/sessions/7a1d2c3b-4e5f-4a6b-9c7d-8e9f0a1b2c3d/chain"])
def test_routes_refuse_a_caller_without_identity(chain_handler: ModuleType, path: str) -> None:
    status, body = get(chain_handler, path, caller=None)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")


def test_keys_route_lists_every_key_that_ever_signed(
    seal_handler: ModuleType, chain_handler: ModuleType, dynamodb_store: ChainStore, signer: KmsSigner
) -> None:
    assert get(chain_handler, "/v1/keys") == (200, {"keys": []})
    ingest_session(dynamodb_store)
    run_sealer(seal_handler)
    status, keys = get(chain_handler, "/v1/keys")
    assert status == 200
    assert [entry["algorithm"] for entry in keys["keys"]] == ["ECDSA_P256_SHA256"]
    assert keys["keys"][0]["signer_key_id"] == signer.key_id


def tamper_table_copy(table_name: str, session_id: str) -> None:
    """Edit the payload of event 1 in the DynamoDB copy, as someone with write access to the table could."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    key = {"pk": {"S": f"S#{session_id}"}, "sk": {"S": "B#000000000000"}}
    lines = list(decode_lines(dynamodb.get_item(TableName=table_name, Key=key)["Item"]["events"]["B"]))
    lines[1] = lines[1].replace(b'"payload":{', b'"payload":{"edited":true,', 1)
    dynamodb.update_item(
        TableName=table_name,
        Key=key,
        UpdateExpression="SET events = :events",
        ExpressionAttributeValues={":events": {"B": encode_lines(tuple(lines))}},
    )


def test_tampered_table_copy_is_refused_with_a_structured_alarm_and_nothing_archived(
    seal_handler: ModuleType,
    dynamodb_store: ChainStore,
    table_name: str,
    s3: Any,
) -> None:
    session_id = ingest_session(dynamodb_store)
    tamper_table_copy(table_name, session_id)
    log = io.StringIO()
    seal_handler.logger.registered_handler.setStream(log)  # what CloudWatch would receive, one JSON per line

    assert run_sealer(seal_handler) == {"sealed": []}

    records = [json.loads(line) for line in log.getvalue().splitlines()]
    alarms = [record for record in records if record.get("alarm") == "SEAL_REFUSED"]
    assert [(alarm["session_id"], alarm["level"]) for alarm in alarms] == [(session_id, "ERROR")]
    assert alarms[0]["reason"].startswith("PAYLOAD_HASH_MISMATCH")
    head = dynamodb_store.get_head(session_id)
    assert head is not None
    assert head.status == "ENDED"
    assert head.seal_refused_reason is not None
    tip = dynamodb_store.tip(session_id)
    assert tip is not None
    assert not tip.is_seal
    assert archive_versions(s3, f"sessions/{session_id}.jsonl") == []
