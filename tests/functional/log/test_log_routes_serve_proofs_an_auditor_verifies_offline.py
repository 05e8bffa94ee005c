"""The evidence log's routes (LOG.md section 5) through the log handler over moto, with the log the seal handler
published; every answer is checked offline the way an auditor checks it, with the keys of ``GET /v1/keys``."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from datetime import timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.aws.evidence_log_s3 import S3LogObjects
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.evidence_log_publisher import EvidenceLogPublisher
from agentops_server.evidence_log_reader import LogReader
from agentops_server.sealing import Sealer
from agentops_verify import (
    PublicKey,
    SealedChainFacts,
    TrustStore,
    decode_hashes,
    loads,
    parse_key_file,
    verify_checkpoint,
    verify_consistency,
    verify_lines,
    verify_log_proof,
)

from infra.lambda_runtime import LocalLambdaContext
from infra.resources import create_seal_key, create_table
from tests.functional.conftest import BUCKET, REGION
from tests.functional.log.conftest import ORIGIN
from tests.functional.seal.conftest import SERVICE_ID, T0, ingest_session
from tests.functional.seal.test_a_crash_at_any_seal_step_is_finished_once_by_the_next_run import CrashAt, CrashError
from tests.support.apigw import http_api_event, invoke
from tests.support.handlers import load_handler_module

AUDITOR = "arn:aws:iam::111122223333:user/auditor"
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture
def deployment(aws: None, s3: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    table = create_table(dynamodb)
    key_id = create_seal_key(kms)
    for name, value in {
        "TABLE_NAME": table,
        "ARCHIVE_BUCKET": BUCKET,
        "SEAL_KEY_ID": key_id,
        "SERVICE_ID": SERVICE_ID,
        "SEAL_IDLE_SECONDS": "3600",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    return {"dynamodb": dynamodb, "kms": kms, "table": table, "key_id": key_id, "s3": s3}


@pytest.fixture
def store(deployment: dict[str, Any]) -> DynamoDBChainStore:
    return DynamoDBChainStore(deployment["dynamodb"], deployment["table"], seal_idle_seconds=3600)


@pytest.fixture
def log_handler(deployment: dict[str, Any]) -> ModuleType:
    return load_handler_module("log")


@pytest.fixture
def seal_handler(deployment: dict[str, Any]) -> ModuleType:
    return load_handler_module("seal")


@pytest.fixture
def chain_handler(deployment: dict[str, Any]) -> ModuleType:
    return load_handler_module("chain")


def run_sealer(module: ModuleType) -> list[str]:
    sealed: list[str] = module.lambda_handler(SCHEDULED_EVENT, LocalLambdaContext("SealFunction", 256, 900))["sealed"]
    return sealed


def get(
    module: ModuleType, path: str, *, query: dict[str, str] | None = None, caller: str | None = AUDITOR
) -> dict[str, Any]:
    return invoke(module, http_api_event("GET", path, caller=caller, query=query, content_type=None), "LogFunction")


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def published_keys(chain_handler: ModuleType) -> list[PublicKey]:
    keys = invoke(chain_handler, http_api_event("GET", "/v1/keys", caller=AUDITOR), "ChainFunction")["body"]
    return parse_key_file(keys.encode())


def sealed_sessions(store: DynamoDBChainStore, seal_handler: ModuleType, count: int) -> list[str]:
    sessions = [ingest_session(store, 5) for _ in range(count)]
    assert sorted(run_sealer(seal_handler)) == sorted(sessions)
    return sessions


def archive_of(deployment: dict[str, Any], session_id: str) -> tuple[SealedChainFacts, str]:
    """The archive as an auditor reads it: its verified facts and its SHA-256."""
    data: bytes = deployment["s3"].get_object(Bucket=BUCKET, Key=f"sessions/{session_id}.jsonl")["Body"].read()
    keys = parse_key_file(deployment["s3"].get_object(Bucket=BUCKET, Key="keys/index.json")["Body"].read())
    report = verify_lines(data.splitlines(), trust=TrustStore(keys))
    return SealedChainFacts.from_report(report, loads(data.splitlines()[-1])["payload"]), hashlib.sha256(
        data
    ).hexdigest()


def test_checkpoint_route_serves_the_signed_checkpoint_as_text(
    log_handler: ModuleType, seal_handler: ModuleType, chain_handler: ModuleType, store: DynamoDBChainStore
) -> None:
    before = get(log_handler, "/v1/log/checkpoint")
    assert (before["statusCode"], body(before)["error"]["code"]) == (404, "NOT_FOUND")
    sealed_sessions(store, seal_handler, 2)

    response = get(log_handler, "/v1/log/checkpoint")

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    checkpoint = verify_checkpoint(response["body"], published_keys(chain_handler))
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 2)


def test_each_log_proof_verifies_offline_against_the_checkpoint_with_the_published_keys(
    log_handler: ModuleType,
    seal_handler: ModuleType,
    chain_handler: ModuleType,
    store: DynamoDBChainStore,
    deployment: dict[str, Any],
) -> None:
    sessions = sealed_sessions(store, seal_handler, 3)
    keys = published_keys(chain_handler)
    for session_id in sessions:
        response = get(log_handler, f"/v1/sessions/{session_id}/log-proof")
        assert response["statusCode"] == 200
        proof = body(response)
        assert set(proof) == {"checkpoint", "leaf_index", "leaf", "inclusion_proof"}
        facts, archive_sha256 = archive_of(deployment, session_id)
        check = verify_log_proof(proof, facts, archive_sha256=archive_sha256, log_keys=keys)
        assert check.passed, check.violation
        assert check.report_log() == {
            "included": True,
            "origin": ORIGIN,
            "tree_size": 3,
            "leaf_index": proof["leaf_index"],
        }


def test_consistency_route_proves_the_later_checkpoint_extends_the_earlier(
    log_handler: ModuleType, seal_handler: ModuleType, chain_handler: ModuleType, store: DynamoDBChainStore
) -> None:
    sealed_sessions(store, seal_handler, 3)
    keys = published_keys(chain_handler)
    first = verify_checkpoint(get(log_handler, "/v1/log/checkpoint")["body"], keys)
    sealed_sessions(store, seal_handler, 2)
    second = verify_checkpoint(get(log_handler, "/v1/log/checkpoint")["body"], keys)

    response = get(log_handler, "/v1/log/consistency", query={"from": "3", "to": "5"})

    assert response["statusCode"] == 200
    answer = body(response)
    assert (answer["from"], answer["to"]) == (3, 5)
    verify_consistency(3, 5, first.root_hash, second.root_hash, decode_hashes(answer["proof"]))
    same = body(get(log_handler, "/v1/log/consistency", query={"from": "5", "to": "5"}))
    assert same == {"from": 5, "to": 5, "proof": []}


@pytest.mark.parametrize(
    "query",
    [
        {"from": "0", "to": "2"},
        {"from": "2", "to": "1"},
        {"from": "1", "to": "3"},
        {"to": "2"},
        {"from": "1"},
        {"from": "01", "to": "2"},
        {"from": "-1", "to": "2"},
        {"from": "1.0", "to": "2"},
        {"from": "one", "to": "2"},
        {"from": "1", "to": "99999999999999999999999"},
    ],
)
def test_consistency_outside_0_lt_from_le_to_le_size_is_a_validation_error(
    log_handler: ModuleType, seal_handler: ModuleType, store: DynamoDBChainStore, query: dict[str, str]
) -> None:
    sealed_sessions(store, seal_handler, 2)
    response = get(log_handler, "/v1/log/consistency", query=query)
    assert (response["statusCode"], body(response)["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_consistency_before_any_checkpoint_is_a_validation_error(log_handler: ModuleType) -> None:
    response = get(log_handler, "/v1/log/consistency", query={"from": "1", "to": "1"})
    assert (response["statusCode"], body(response)["error"]["details"]["tree_size"]) == (400, 0)


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "not-a-session"])
def test_log_proof_of_an_unknown_session_is_404(log_handler: ModuleType, session_id: str) -> None:
    response = get(log_handler, f"/v1/sessions/{session_id}/log-proof")
    assert (response["statusCode"], body(response)["error"]["code"]) == (404, "SESSION_NOT_FOUND")


def test_log_proof_of_an_unsealed_session_is_409_not_sealed(log_handler: ModuleType, store: DynamoDBChainStore) -> None:
    session_id = ingest_session(store, end=False)
    response = get(log_handler, f"/v1/sessions/{session_id}/log-proof")
    assert (response["statusCode"], body(response)["error"]["code"]) == (409, "NOT_SEALED")


def dying_sealer(deployment: dict[str, Any], store: DynamoDBChainStore, target: str, method: str) -> Sealer:
    """The sealer of the handler, whose log state or log objects die before ``method`` does its work."""
    state: Any = DynamoDBLogState(deployment["dynamodb"], deployment["table"])
    objects: Any = S3LogObjects(deployment["s3"], BUCKET)
    if target == "state":
        state = CrashAt(state, method, "before")
    else:
        objects = CrashAt(objects, method, "before")
    signer = KmsSigner(deployment["kms"], deployment["key_id"])
    publisher = EvidenceLogPublisher(state, objects, signer, ORIGIN)
    return Sealer(store, signer, S3Archive(deployment["s3"], BUCKET), SERVICE_ID, evidence_log=publisher)


@pytest.mark.parametrize(
    ("target", "method", "published_before"),
    [
        ("state", "advance_log", False),  # marked, no leaf
        ("objects", "replace_checkpoint", False),  # a leaf, no checkpoint
        ("objects", "replace_checkpoint", True),  # a leaf beyond the checkpoint
    ],
)
def test_log_proof_of_a_sealed_session_not_yet_published_is_409_log_pending_with_retry_after(
    log_handler: ModuleType,
    seal_handler: ModuleType,
    store: DynamoDBChainStore,
    deployment: dict[str, Any],
    *,
    target: str,
    method: str,
    published_before: bool,
) -> None:
    if published_before:
        sealed_sessions(store, seal_handler, 1)
    session_id = ingest_session(store)
    with pytest.raises(CrashError):
        dying_sealer(deployment, store, target, method).seal_due_sessions(T0 + timedelta(hours=2))

    response = get(log_handler, f"/v1/sessions/{session_id}/log-proof")

    assert (response["statusCode"], body(response)["error"]["code"]) == (409, "LOG_PENDING")
    assert response["headers"]["Retry-After"] == "60"
    run_sealer(seal_handler)  # the next scheduled run publishes it
    assert get(log_handler, f"/v1/sessions/{session_id}/log-proof")["statusCode"] == 200


def test_a_leaf_index_forged_in_the_table_is_refused_with_an_alarm_not_served(
    log_handler: ModuleType, seal_handler: ModuleType, store: DynamoDBChainStore, deployment: dict[str, Any]
) -> None:
    """Someone pointed session A's leaf index at session B's leaf: the proof would be B's, so none is served."""
    first, second = sealed_sessions(store, seal_handler, 2)
    deployment["dynamodb"].update_item(
        TableName=deployment["table"],
        Key={"pk": {"S": f"S#{first}"}, "sk": {"S": "LOG"}},
        UpdateExpression="SET leaf_index = :other",
        ExpressionAttributeValues={":other": {"N": str(1 - int(get_leaf_index(deployment, first)))}},
    )
    stream = io.StringIO()
    log_handler.logger.registered_handler.setStream(stream)

    response = get(log_handler, f"/v1/sessions/{first}/log-proof")

    assert (response["statusCode"], body(response)["error"]["code"]) == (500, "INTERNAL_ERROR")
    assert second not in response["body"]
    alarms = [json.loads(line) for line in stream.getvalue().splitlines() if '"alarm"' in line]
    assert [alarm["alarm"] for alarm in alarms] == ["LOG_INTEGRITY"]


def get_leaf_index(deployment: dict[str, Any], session_id: str) -> int:
    index = DynamoDBLogState(deployment["dynamodb"], deployment["table"]).leaf_index(session_id)
    assert index is not None
    return index


@pytest.mark.parametrize(
    "path", ["/v1/log/checkpoint", "/v1/log/consistency", "/v1/sessions/7a1d2c3b-4e5f-4a6b-9c7d-8e9f0a1b2c3d/log-proof"]
)
def test_routes_refuse_a_caller_without_identity(log_handler: ModuleType, path: str) -> None:
    response = get(log_handler, path, caller=None)
    assert (response["statusCode"], body(response)["error"]["code"]) == (403, "FORBIDDEN")


def test_log_proof_for_gives_an_export_the_proof_or_null(
    seal_handler: ModuleType, store: DynamoDBChainStore, deployment: dict[str, Any]
) -> None:
    (session_id,) = sealed_sessions(store, seal_handler, 1)
    unsealed = ingest_session(store, end=False)
    state = DynamoDBLogState(deployment["dynamodb"], deployment["table"])
    reader = LogReader(S3LogObjects(deployment["s3"], BUCKET), state, store)

    proof = reader.log_proof_for(session_id)

    assert proof is not None
    assert proof["leaf"]["session_id"] == session_id
    assert reader.log_proof_for(unsealed) is None
