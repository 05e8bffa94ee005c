"""Create the AWS resources the template declares, against any endpoint (moto locally, tests, the local stack).

The table is built from ``template.yaml`` itself so tests and the local stack can never drift from the deployed
schema. The archive bucket and the seal key mirror the template's ``ArchiveBucket`` and ``SealKey``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.template import TEMPLATE_PATH, load_template, table_properties

DEFAULT_TABLE_NAME = "agentops-replay-chain"


def create_table(
    dynamodb_client: Any, template_path: Path = TEMPLATE_PATH, table_name: str = DEFAULT_TABLE_NAME
) -> str:
    """Create the chain table exactly as the template declares it and return its name."""
    properties = table_properties(load_template(template_path))
    create_arguments: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties["BillingMode"],
    }
    if "GlobalSecondaryIndexes" in properties:
        create_arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if properties.get("SSESpecification", {}).get("SSEEnabled"):
        create_arguments["SSESpecification"] = {"Enabled": True}
    dynamodb_client.create_table(**create_arguments)
    dynamodb_client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})

    time_to_live = properties.get("TimeToLiveSpecification")
    if time_to_live and time_to_live.get("Enabled"):
        dynamodb_client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": time_to_live["AttributeName"], "Enabled": True},
        )
    recovery = properties.get("PointInTimeRecoverySpecification", {})
    if recovery.get("PointInTimeRecoveryEnabled"):
        dynamodb_client.update_continuous_backups(
            TableName=table_name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return table_name


def create_archive_bucket(s3_client: Any, name: str, retention_days: int) -> None:
    """An Object Lock bucket with versioning and a default COMPLIANCE retention of ``retention_days``."""
    s3_client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3_client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3_client.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}},
        },
    )
    s3_client.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3_client.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def create_seal_key(kms_client: Any) -> str:
    """The sealing key: ECDSA P-256 for signing (sign with message type RAW, ELS section 5); returns its key id."""
    response = kms_client.create_key(
        KeySpec="ECC_NIST_P256",
        KeyUsage="SIGN_VERIFY",
        Description="AgentOps Replay chain seal key",
    )
    key_id: str = response["KeyMetadata"]["KeyId"]
    return key_id
