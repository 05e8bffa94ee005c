"""The deployable template keeps the security promises of DESIGN.md: checked on the template text itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentops_server.config import (
    DEFAULT_MAX_SESSION_BYTES,
    DEFAULT_MAX_SESSION_EVENTS,
    DEFAULT_SEALED_BATCH_RETENTION_DAYS,
)
from cfnlint.api import lint_file

from infra.template import http_routes, load_template, resources_of_type, table_properties
from tests.support.paths import TEMPLATE

ARCHIVE_TAMPERING_ACTIONS = {
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjects",
    "s3:PutObjectRetention",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectLockConfiguration",
    "s3:PutObjectLegalHold",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM/resource policy statement anywhere in the template."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement.get("Action", [])
    return [value] if isinstance(value, str) else list(value)


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][logical_id]
    return found


def test_template_passes_cfn_lint() -> None:
    matches = lint_file(Path(TEMPLATE))
    assert [str(match) for match in matches] == []


def test_no_policy_statement_uses_a_wildcard_or_negated_action(template: dict[str, Any]) -> None:
    found = list(statements(template))
    assert len(found) >= 10
    for statement in found:
        assert "NotAction" not in statement
        for action in actions(statement):
            assert "*" not in action, statement


def test_nobody_is_granted_a_way_to_delete_or_unlock_archives(template: dict[str, Any]) -> None:
    granted = {
        action for statement in statements(template) if statement["Effect"] == "Allow" for action in actions(statement)
    }
    assert granted & ARCHIVE_TAMPERING_ACTIONS == set()


def test_only_the_seal_function_role_can_sign_with_the_seal_key(template: dict[str, Any]) -> None:
    key = resource(template, "SealKey")["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    policy = key["KeyPolicy"]["Statement"]
    signers = [s["Principal"]["AWS"] for s in policy if s["Effect"] == "Allow" and "kms:Sign" in actions(s)]
    assert signers == [{"Fn::GetAtt": ["SealFunctionRole", "Arn"]}]
    (deny,) = [s for s in policy if s["Effect"] == "Deny"]
    assert actions(deny) == ["kms:Sign"]
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["SealFunctionRole", "Arn"]}}}
    # Without kms:* for the account root, IAM policies in the account cannot grant kms:Sign either.
    root = [
        s for s in policy if s["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    ]
    assert len(root) == 1
    assert "kms:Sign" not in actions(root[0])
    assert "kms:PutKeyPolicy" in actions(root[0])  # the key stays manageable


def test_archive_bucket_is_worm_in_compliance_mode_for_the_configured_days(template: dict[str, Any]) -> None:
    bucket = resource(template, "ArchiveBucket")
    properties = bucket["Properties"]
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "ArchiveRetentionDays"}}},
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert template["Parameters"]["ArchiveRetentionDays"]["Default"] == 2555


CURRENT_VERSION_ACTIONS = {"ExpirationInDays", "ExpirationDate", "ExpiredObjectDeleteMarker", "Transitions"}


def test_lifecycle_never_expires_a_current_version_nor_a_locked_one(template: dict[str, Any]) -> None:
    """The bucket's lifecycle aborts abandoned uploads anywhere, and expires superseded versions of the key index
    only, never before the retention that locks them ended; nothing touches a current version or the log."""
    rules = resource(template, "ArchiveBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    by_id = {rule["Id"]: rule for rule in rules}

    assert set(by_id) == {"AbortIncompleteArchiveUploads", "ExpireSupersededKeyIndexes"}
    assert all(rule["Status"] == "Enabled" for rule in rules)
    for rule in rules:
        assert not CURRENT_VERSION_ACTIONS & set(rule), rule
    aborts = by_id["AbortIncompleteArchiveUploads"]
    assert not {"Prefix", "Filter"} & set(aborts)  # archives and exports both stream multipart uploads
    assert aborts["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    superseded = by_id["ExpireSupersededKeyIndexes"]
    assert superseded["Prefix"] == "keys/index.json"
    # Days after a version was superseded are never fewer than its age since it was written: the lock ends first.
    assert superseded["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "ArchiveRetentionDays"}}
    noncurrent_rules = [rule for rule in rules if "NoncurrentVersionExpiration" in rule]
    assert [rule["Prefix"] for rule in noncurrent_rules] == ["keys/index.json"]


def test_archive_bucket_refuses_requests_without_tls(template: dict[str, Any]) -> None:
    policy = resource(template, "ArchiveBucketPolicy")["Properties"]
    assert policy["Bucket"] == {"Ref": "ArchiveBucket"}
    statements = {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}
    statement = statements["DenyRequestsWithoutTls"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= set(actions(statement))


def test_table_is_on_demand_recoverable_encrypted_with_sparse_seal_listing_and_log_indexes(
    template: dict[str, Any],
) -> None:
    table = table_properties(template)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
        ("due_shard", "S"),
        ("due_at", "S"),
        ("list_pk", "S"),
        ("agent_pk", "S"),
        ("list_sk", "S"),
        ("log_queue", "S"),
        ("log_queued_at", "S"),
    }
    assert table["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "SealDue",
            "KeySchema": [
                {"AttributeName": "due_shard", "KeyType": "HASH"},
                {"AttributeName": "due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        # Keyed once at a head's creation; KEYS_ONLY so later head updates never write the index.
        {
            "IndexName": "SessionsByStart",
            "KeySchema": [
                {"AttributeName": "list_pk", "KeyType": "HASH"},
                {"AttributeName": "list_sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        {
            "IndexName": "SessionsByAgent",
            "KeySchema": [
                {"AttributeName": "agent_pk", "KeyType": "HASH"},
                {"AttributeName": "list_sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        {
            "IndexName": "LogPending",
            "KeySchema": [
                {"AttributeName": "log_queue", "KeyType": "HASH"},
                {"AttributeName": "log_queued_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
    ]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_every_route_but_health_requires_sigv4(template: dict[str, Any]) -> None:
    (api,) = resources_of_type(template, "AWS::Serverless::HttpApi").values()
    assert api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert api["Properties"]["Auth"]["EnableIamAuthorizer"] is True
    unauthenticated = [route.route_key for route in http_routes(template) if not route.authorized]
    assert unauthenticated == ["GET /v1/health"]


def test_routes_are_served_by_the_functions_of_the_architecture(template: dict[str, Any]) -> None:
    served = {route.route_key: route.function_logical_id for route in http_routes(template)}
    expected = {
        "POST /v1/sessions/{session_id}/events": "IngestFunction",
        "GET /v1/sessions/{session_id}": "IngestFunction",
        "GET /v1/health": "IngestFunction",
        "GET /v1/sessions/{session_id}/chain": "ChainFunction",
        "GET /v1/keys": "ChainFunction",
        "GET /v1/sessions": "ChainFunction",
        "GET /v1/sessions/{session_id}/replay": "ReplayFunction",
        "POST /v1/sessions/{session_id}/exports": "ExportFunction",
        "GET /v1/sessions/{session_id}/exports/{export_id}": "ExportFunction",
        "GET /v1/log/checkpoint": "LogFunction",
        "GET /v1/log/consistency": "LogFunction",
        "GET /v1/sessions/{session_id}/log-proof": "LogFunction",
    }
    assert served == expected


def test_agents_may_only_post_events(template: dict[str, Any]) -> None:
    (statement,) = resource(template, "AgentPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert actions(statement) == ["execute-api:Invoke"]
    assert [arn["Fn::Sub"].split("${HttpApi}/")[1] for arn in statement["Resource"]] == ["*/POST/v1/sessions/*/events"]


def test_auditors_may_read_and_export_but_never_append(template: dict[str, Any]) -> None:
    (statement,) = resource(template, "AuditorPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert actions(statement) == ["execute-api:Invoke"]
    routes = [arn["Fn::Sub"].split("${HttpApi}/")[1] for arn in statement["Resource"]]
    assert sorted(routes) == [
        "*/GET/v1/keys",
        "*/GET/v1/log/*",
        "*/GET/v1/sessions",
        "*/GET/v1/sessions/*",
        "*/POST/v1/sessions/*/exports",
    ]


def test_exports_are_written_only_under_exports(template: dict[str, Any]) -> None:
    writes = [
        statement
        for statement in statements(resource(template, "ExportFunction"))
        if "s3:PutObject" in actions(statement)
    ]
    assert [statement["Resource"] for statement in writes] == [{"Fn::Sub": "${ArchiveBucket.Arn}/exports/*"}]


def test_sealer_runs_on_the_configured_schedule(template: dict[str, Any]) -> None:
    schedules = [
        (logical_id, properties["Properties"])
        for logical_id, properties in template["Resources"].items()
        if properties["Type"] == "AWS::Scheduler::Schedule"
    ]
    assert [(logical_id, schedule["ScheduleExpression"]) for logical_id, schedule in schedules] == [
        ("SealSchedule", {"Ref": "SealScheduleRate"})
    ]
    (_, schedule) = schedules[0]
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["SealFunction", "Arn"]}
    assert "Events" not in resource(template, "SealFunction")["Properties"]  # one schedule, not two
    assert template["Parameters"]["SealScheduleRate"]["Default"] == "rate(5 minutes)"


def test_missed_sealer_runs_are_dead_lettered_and_alarmed(template: dict[str, Any]) -> None:
    """Both ways a run can be missed end in one queue: the scheduler could not deliver it (after its retries) or the
    function failed it (no Lambda retry: the next tick is the retry)."""
    queue = {"Fn::GetAtt": ["SealScheduleDeadLetterQueue", "Arn"]}
    target = resource(template, "SealSchedule")["Properties"]["Target"]
    assert target["DeadLetterConfig"] == {"Arn": queue}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    invoke_config = resource(template, "SealFunction")["Properties"]["EventInvokeConfig"]
    assert invoke_config["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": queue}
    assert invoke_config["MaximumRetryAttempts"] == 0
    alarm = resource(template, "SealScheduleDeadLetterAlarm")["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["SealScheduleDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_functions_get_the_configuration_of_the_architecture(template: dict[str, Any]) -> None:
    common = template["Globals"]["Function"]["Environment"]["Variables"]
    assert common["TABLE_NAME"] == {"Ref": "ChainTable"}
    assert common["SERVICE_ID"] == {"Ref": "ServiceId"}
    assert common["SEAL_IDLE_SECONDS"] == {"Ref": "SealIdleSeconds"}
    assert common["ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
    seal = resource(template, "SealFunction")["Properties"]["Environment"]["Variables"]
    assert seal["SEAL_KEY_ID"] == {
        "Fn::If": ["SignWithTemplateKey", {"Fn::GetAtt": ["SealKey", "Arn"]}, {"Ref": "SealKeyArn"}]
    }
    assert template["Conditions"]["SignWithTemplateKey"] == {"Fn::Equals": [{"Ref": "SealKeyArn"}, ""]}
    assert template["Parameters"]["SealKeyArn"]["Default"] == ""  # the template's own SealKey signs
    export = resource(template, "ExportFunction")["Properties"]
    assert export["Environment"]["Variables"]["EXPORT_ASYNC_MIN_EVENTS"] == {"Ref": "ExportAsyncMinEvents"}
    # An export job has the whole timeout; API Gateway still cuts a synchronous answer at 29 s.
    assert export["Timeout"] == 900
    assert template["Parameters"]["ExportAsyncMinEvents"]["Default"] == 25000
    assert seal["LOG_ORIGIN"] == {"Ref": "LogOrigin"}
    assert template["Parameters"]["LogOrigin"]["Default"] == ""  # the sealer then uses <ServiceId>/evidence-log
    assert "ARCHIVE_RETENTION_DAYS" not in seal  # retention is the bucket's default, not the writer's choice


def test_evidence_log_integrity_failures_raise_the_evidence_alarm(template: dict[str, Any]) -> None:
    """LOG_INTEGRITY from the sealer (nothing signed) or from the log API (a tile that does not prove what it states)
    counts on the same metric as a refused seal."""
    sealer_filter = resource(template, "EvidenceAlarmMetric")["Properties"]
    assert '($.alarm = "LOG_INTEGRITY")' in sealer_filter["FilterPattern"]
    api_filter = resource(template, "LogApiAlarmMetric")["Properties"]
    assert api_filter["LogGroupName"] == {"Ref": "LogFunctionLogs"}
    assert api_filter["FilterPattern"] == '{ $.alarm = "LOG_INTEGRITY" }'
    assert [transformation["MetricName"] for transformation in api_filter["MetricTransformations"]] == [
        "EvidenceIntegrityAlarms"
    ]
    assert resource(template, "LogFunctionLogs")["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/${LogFunction}"
    }


def test_every_function_uses_the_shared_layer_on_one_runtime(template: dict[str, Any]) -> None:
    defaults = template["Globals"]["Function"]
    assert defaults["Runtime"] == "python3.11"
    assert defaults["Layers"] == [{"Ref": "ServerLayer"}]
    layer = resource(template, "ServerLayer")
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleArchitectures"] == defaults["Architectures"]


def test_session_caps_are_parameters_the_ingest_function_enforces(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["MaxSessionEvents"]["Default"] == DEFAULT_MAX_SESSION_EVENTS == 1_000_000
    assert parameters["MaxSessionBytes"]["Default"] == DEFAULT_MAX_SESSION_BYTES == 1024**3
    ingest = resource(template, "IngestFunction")["Properties"]["Environment"]["Variables"]
    assert ingest["MAX_SESSION_EVENTS"] == {"Ref": "MaxSessionEvents"}
    assert ingest["MAX_SESSION_BYTES"] == {"Ref": "MaxSessionBytes"}


def test_sealed_batch_retention_is_a_parameter_of_the_seal_function(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SealedBatchRetentionDays"]
    assert (parameter["Default"], parameter["MinValue"]) == (DEFAULT_SEALED_BATCH_RETENTION_DAYS, 0)
    seal = resource(template, "SealFunction")["Properties"]["Environment"]["Variables"]
    assert seal["SEALED_BATCH_RETENTION_DAYS"] == {"Ref": "SealedBatchRetentionDays"}
    assert table_properties(template)["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_seal_function_has_one_full_vcpu_and_the_longest_timeout(template: dict[str, Any]) -> None:
    """The sizing model of docs/architecture.md "Sealing": a session at the caps needs about a third of 900 s of one
    vCPU, and Lambda gives a function one full vCPU at 1,769 MB."""
    seal = resource(template, "SealFunction")["Properties"]
    assert (seal["MemorySize"], seal["Timeout"]) == (1769, 900)
