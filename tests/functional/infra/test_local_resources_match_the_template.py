"""Resources the local stack creates match the template, and the functions get the template's configuration."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import FunctionPool, FunctionSpec, HandlerNotInstalledError
from infra.local_stack import LocalResources, build_function_pools, resolve_environment
from infra.resources import create_archive_bucket, create_seal_key, create_table
from infra.template import function_definitions, load_template, parameter_defaults, table_properties
from tests.support.paths import REPO_ROOT, TEMPLATE


@pytest.mark.usefixtures("aws")
def test_created_table_matches_the_template_definition() -> None:
    client = boto3.client("dynamodb")
    name = create_table(client, TEMPLATE)
    described = client.describe_table(TableName=name)["Table"]
    declared = table_properties(load_template(TEMPLATE))
    assert described["KeySchema"] == declared["KeySchema"]
    assert sorted(described["AttributeDefinitions"], key=str) == sorted(declared["AttributeDefinitions"], key=str)
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [
        (index["IndexName"], index["KeySchema"], index["Projection"]) for index in described["GlobalSecondaryIndexes"]
    ] == [
        (index["IndexName"], index["KeySchema"], {"ProjectionType": "KEYS_ONLY"})
        for index in declared["GlobalSecondaryIndexes"]
    ]
    assert [index["IndexName"] for index in described["GlobalSecondaryIndexes"]] == [
        "SealDue",
        "SessionsByStart",
        "SessionsByAgent",
        "LogPending",
    ]
    assert client.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


@pytest.mark.usefixtures("aws")
def test_archive_bucket_locks_new_objects_in_compliance_mode() -> None:
    s3 = boto3.client("s3")
    create_archive_bucket(s3, "archive-test", retention_days=3)
    created = s3.put_object(Bucket="archive-test", Key="sessions/x.jsonl", Body=b"line\n")
    head = s3.head_object(Bucket="archive-test", Key="sessions/x.jsonl")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC)
    assert s3.get_bucket_versioning(Bucket="archive-test")["Status"] == "Enabled"
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.delete_object(Bucket="archive-test", Key="sessions/x.jsonl", VersionId=created["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket="archive-test", Key="sessions/x.jsonl")["Body"].read() == b"line\n"


@pytest.mark.usefixtures("aws")
def test_seal_key_signs_p256_raw_messages() -> None:
    kms = boto3.client("kms")
    key_id = create_seal_key(kms)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    signed = kms.sign(KeyId=key_id, Message=b"seal", MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    verified = kms.verify(
        KeyId=key_id,
        Message=b"seal",
        MessageType="RAW",
        Signature=signed["Signature"],
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert verified["SignatureValid"] is True


def local_resources() -> LocalResources:
    return LocalResources(
        "http://127.0.0.1:1", "table-x", "bucket-x", "key-x", "arn:aws:kms:us-east-1:1:key/key-x", "http://queue-x"
    )


def test_function_environment_is_resolved_from_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEAL_IDLE_SECONDS", raising=False)
    monkeypatch.delenv("SERVICE_ID", raising=False)
    template = load_template(TEMPLATE)
    environment = resolve_environment(
        function_definitions(template), parameter_defaults(template), local_resources(), template["Conditions"]
    )
    assert environment["TABLE_NAME"] == "table-x"
    assert environment["ARCHIVE_BUCKET"] == "bucket-x"
    assert environment["SEAL_KEY_ID"] == "arn:aws:kms:us-east-1:1:key/key-x"
    assert environment["SERVICE_ID"] == "agentops-replay"
    assert environment["SEAL_IDLE_SECONDS"] == "3600"


def test_a_rotated_seal_key_parameter_becomes_the_sealers_key() -> None:
    """SealKeyArn set (a key rotation): the seal function's SEAL_KEY_ID is that key, as CloudFormation decides the
    template's ``SignWithTemplateKey`` condition."""
    template = load_template(TEMPLATE)
    rotated = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
    parameters = {**parameter_defaults(template), "SealKeyArn": rotated}

    environment = resolve_environment(
        function_definitions(template), parameters, local_resources(), template["Conditions"], overrides={}
    )

    assert environment["SEAL_KEY_ID"] == rotated


def test_the_export_threshold_passes_through_from_the_launching_environment() -> None:
    template = load_template(TEMPLATE)

    default = resolve_environment(
        function_definitions(template), parameter_defaults(template), local_resources(), template["Conditions"], {}
    )
    forced = resolve_environment(
        function_definitions(template),
        parameter_defaults(template),
        local_resources(),
        template["Conditions"],
        {"EXPORT_ASYNC_MIN_EVENTS": "1"},
    )

    assert (default["EXPORT_ASYNC_MIN_EVENTS"], forced["EXPORT_ASYNC_MIN_EVENTS"]) == ("25000", "1")


def test_parameter_backed_settings_can_be_overridden_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAL_IDLE_SECONDS", "2")
    monkeypatch.setenv("TABLE_NAME", "not-the-local-table")
    template = load_template(TEMPLATE)
    environment = resolve_environment(
        function_definitions(template), parameter_defaults(template), local_resources(), template["Conditions"]
    )
    assert environment["SEAL_IDLE_SECONDS"] == "2"
    assert environment["TABLE_NAME"] == "table-x"  # resources always point at the local ones


def test_function_pools_point_at_the_handler_files_the_template_names() -> None:
    pools = build_function_pools(function_definitions(load_template(TEMPLATE)), REPO_ROOT)
    ingest = pools["IngestFunction"].spec
    assert ingest.handler_file == REPO_ROOT / "functions" / "ingest" / "app.py"
    assert ingest.handler_name == "lambda_handler"
    assert pools["SealFunction"].spec.timeout_seconds == 900


HANDLER_WITH_STATE = """
import pathlib
import time

current = {}

def lambda_handler(event, context):
    current["event"] = event
    if "started_flag" in event:
        pathlib.Path(event["started_flag"]).touch()
        while not pathlib.Path(event["release_flag"]).exists():
            time.sleep(0.01)
    return {"seen": current["event"]["name"], "module": __name__}
"""


def test_concurrent_invocations_run_in_separate_environments(tmp_path: Path) -> None:
    """Module state of one invocation (e.g. a resolver's current event) never leaks into a concurrent one."""
    handler_file = tmp_path / "app.py"
    handler_file.write_text(HANDLER_WITH_STATE)
    pool = FunctionPool(FunctionSpec("Stateful", handler_file, "lambda_handler", 128, 3))
    started, release = tmp_path / "started", tmp_path / "release"
    results: dict[str, Any] = {}
    slow_event = {"name": "slow", "started_flag": str(started), "release_flag": str(release)}
    slow = threading.Thread(target=lambda: results.update(slow=pool.invoke(slow_event)))
    slow.start()
    while not started.exists():
        time.sleep(0.01)
    results["fast"] = pool.invoke({"name": "fast"})
    release.touch()
    slow.join(timeout=10)
    assert results["slow"]["seen"] == "slow"
    assert results["fast"]["seen"] == "fast"
    assert results["slow"]["module"] != results["fast"]["module"]


def test_missing_handler_is_reported_not_imported(tmp_path: Path) -> None:
    pool = FunctionPool(FunctionSpec("Absent", tmp_path / "app.py", "lambda_handler", 128, 3))
    assert pool.spec.installed is False
    with pytest.raises(HandlerNotInstalledError):
        pool.invoke({})
