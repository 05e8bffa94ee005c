"""Least privilege, proven on ``template.yaml`` itself (loaded with cfn-lint's decoder, as CloudFormation reads it).

The heart of this file is ``EXPECTED_GRANTS``: per function, the exact (action, resource, condition) triples its
role may use, collected from the function's inline policies and from the seal key's key policy. Any widening (a new
action, a wider resource, a condition dropped or loosened, a SAM policy template, a new function without a row here)
fails, so a change of privilege is always a reviewed change of this table.

Item level (ELS section 8, rev 2: the table is never a trust anchor, and whoever can write it must be able to write as
little as possible): every table grant is limited by ``dynamodb:LeadingKeys`` to the partition keys the function
needs. The ingest role, the one agents reach, may read and write session items (``S#...``) only, and never the TTL
attribute ``expires_at`` (setting it makes DynamoDB delete the item); only the sealer writes it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.support.paths import TEMPLATE

# (action, resource as written in the template with intrinsics rendered as text, condition rendered as text)
Grant = tuple[str, str, str]

TABLE = "${ChainTable.Arn}"
SEAL_INDEX = "${ChainTable.Arn}/index/SealDue"
LIST_INDEXES = ["${ChainTable.Arn}/index/SessionsByStart", "${ChainTable.Arn}/index/SessionsByAgent"]
LOG_PENDING_INDEX = "${ChainTable.Arn}/index/LogPending"
BUCKET = "${ArchiveBucket.Arn}"
SESSIONS = "${ArchiveBucket.Arn}/sessions/*"
KEYS = "${ArchiveBucket.Arn}/keys/*"
EXPORTS = "${ArchiveBucket.Arn}/exports/*"
LOG = "${ArchiveBucket.Arn}/log/*"
SEAL_KEY = "SealKey"  # ``Resource: "*"`` in a key policy means the key itself


def grants(actions: list[str], resources: list[str], condition: str = "") -> set[Grant]:
    return {(action, resource, condition) for action in actions for resource in resources}


TABLE_READ = ["dynamodb:GetItem", "dynamodb:Query"]
TABLE_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
SESSION_ITEMS = "ForAllValues:StringLike dynamodb:LeadingKeys=S#*"
SESSION_ITEMS_AND_LOG_STATE = "ForAllValues:StringLike dynamodb:LeadingKeys=S#*,LOG"
EXPORT_JOBS = "ForAllValues:StringLike dynamodb:LeadingKeys=EXPORT#*"
NEVER_AN_EXPIRY = "ForAllValues:StringNotEquals dynamodb:Attributes=expires_at"
SELF_EXPORT_FUNCTION = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-export"
KEYS_LISTING = "StringLike s3:prefix=keys/*"

EXPECTED_GRANTS: dict[str, set[Grant]] = {
    "IngestFunction": (
        grants(TABLE_READ, [TABLE], SESSION_ITEMS)
        | grants(TABLE_WRITE, [TABLE], f"{SESSION_ITEMS}; {NEVER_AN_EXPIRY}")
        | grants(["s3:GetObject", "s3:GetObjectVersion"], [SESSIONS])
        | grants(["s3:GetObject"], [KEYS])
        | grants(["s3:ListBucket"], [BUCKET], KEYS_LISTING)
    ),
    "SealFunction": (
        grants(TABLE_READ + TABLE_WRITE, [TABLE], SESSION_ITEMS_AND_LOG_STATE)
        | grants(["dynamodb:Query"], [SEAL_INDEX, LOG_PENDING_INDEX])
        | grants(["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"], [SESSIONS, KEYS])
        | grants(["s3:PutObject", "s3:GetObject"], [LOG])
        | grants(["s3:ListBucket"], [BUCKET])
        | grants(["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"], [SEAL_KEY])
    ),
    "ChainFunction": (
        grants(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], [TABLE], SESSION_ITEMS)
        | grants(["dynamodb:Query"], LIST_INDEXES)
        | grants(["s3:GetObject", "s3:GetObjectVersion"], [SESSIONS])
        | grants(["s3:GetObject"], [KEYS])
        | grants(["s3:ListBucket"], [BUCKET], KEYS_LISTING)
    ),
    # The evidence log's routes read the log and the table; they write nothing and reach no archive.
    "LogFunction": (
        grants(["dynamodb:GetItem", "dynamodb:Query"], [TABLE], SESSION_ITEMS_AND_LOG_STATE)
        | grants(["s3:GetObject"], [LOG])
        | grants(["s3:ListBucket"], [BUCKET])
    ),
    # Replay and export trust the published key objects (keys/*), like the session view; no table record.
    "ReplayFunction": (
        grants(TABLE_READ, [TABLE], SESSION_ITEMS)
        | grants(["s3:GetObject", "s3:GetObjectVersion"], [SESSIONS])
        | grants(["s3:GetObject"], [KEYS])
        | grants(["s3:ListBucket"], [BUCKET], KEYS_LISTING)
    ),
    "ExportFunction": (
        grants(TABLE_READ, [TABLE], SESSION_ITEMS_AND_LOG_STATE)
        | grants(["s3:GetObject", "s3:GetObjectVersion"], [SESSIONS, EXPORTS])
        | grants(["s3:GetObject"], [LOG, KEYS])
        | grants(["s3:ListBucket"], [BUCKET])
        | grants(["s3:PutObject", "s3:AbortMultipartUpload"], [EXPORTS])
        # Export jobs (asynchronous exports): their own partitions, and an invocation of this very function.
        | grants(["dynamodb:GetItem", *TABLE_WRITE], [TABLE], EXPORT_JOBS)
        | grants(["lambda:InvokeFunction"], [SELF_EXPORT_FUNCTION])
    ),
}

# What would let someone rewrite history: delete or overwrite-protect-off archives, loosen the lock, rewrite the
# bucket's rules, delete or bulk-rewrite table items, or scan the table (DESIGN.md: nothing scans on a schedule).
FORBIDDEN_EVERYWHERE = {
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjects",
    "s3:DeleteObjectTagging",
    "s3:DeleteBucket",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:PutObjectLockConfiguration",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:PutBucketPublicAccessBlock",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:Scan",
    "kms:CreateGrant",
    "kms:ImportKeyMaterial",
    "kms:ReplicateKey",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """An intrinsic as the text CloudFormation would substitute, e.g. ``!GetAtt T.Arn`` -> ``${T.Arn}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::GetAtt":
            return "${" + ".".join(as_list(argument)) + "}"
        if function == "Ref":
            return "${" + str(argument) + "}"
        if function == "Fn::Sub" and isinstance(argument, str):
            return argument
    raise AssertionError(f"a policy uses an intrinsic this test cannot read: {value!r}")


def render_condition(condition: dict[str, Any] | None) -> str:
    """A policy condition as ``operator key=value,value; ...``, sorted by operator."""
    if not condition:
        return ""
    clauses = []
    for operator, tests in sorted(condition.items()):
        for key, values in sorted(tests.items()):
            clauses.append(f"{operator} {key}=" + ",".join(render(value) for value in as_list(values)))
    return "; ".join(clauses)


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == resource_type}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every policy statement anywhere in the template (identity, key and bucket policies)."""
    if isinstance(node, dict):
        if "Effect" in node:
            yield node
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def key_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements_: list[dict[str, Any]] = template["Resources"]["SealKey"]["Properties"]["KeyPolicy"]["Statement"]
    return statements_


def effective_grants(template: dict[str, Any], function_name: str) -> set[Grant]:
    """What the function's role may do: its inline policy statements plus key-policy grants naming its role."""
    found: set[Grant] = set()
    for policy in as_list(functions(template)[function_name]["Properties"].get("Policies", [])):
        # A string is a managed policy ARN and a one-key dict a SAM policy template: both hide their actions.
        assert isinstance(policy, dict), f"{function_name} uses a managed policy {policy!r}"
        assert "Statement" in policy, f"{function_name} uses a SAM policy template {sorted(policy)}"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            found |= grants(
                as_list(statement["Action"]),
                [render(r) for r in as_list(statement["Resource"])],
                render_condition(statement.get("Condition")),
            )
    role = {"Fn::GetAtt": [f"{function_name}Role", "Arn"]}
    for statement in key_policy(template):
        if statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": role}:
            assert statement["Resource"] == "*"
            assert "Condition" not in statement
            found |= grants(as_list(statement["Action"]), [SEAL_KEY])
    return found


def test_the_ingest_role_writes_only_session_items_and_never_an_expiry(template: dict[str, Any]) -> None:
    """An agent's path into the table (a compromised ingest function) cannot add a key record, a sealer record or
    anything else outside a session, and cannot turn TTL into a delete of a head."""
    table_grants = {grant for grant in effective_grants(template, "IngestFunction") if grant[1] == TABLE}
    assert table_grants
    for action, _, condition in table_grants:
        assert SESSION_ITEMS in condition.split("; "), (action, condition)
        if action in TABLE_WRITE:
            assert NEVER_AN_EXPIRY in condition.split("; "), (action, condition)


def test_every_table_grant_is_limited_to_session_items_and_at_most_the_log_state(template: dict[str, Any]) -> None:
    for function_name in EXPECTED_GRANTS:
        for action, resource, condition in effective_grants(template, function_name):
            if resource == TABLE:
                leading = [clause for clause in condition.split("; ") if "dynamodb:LeadingKeys=" in clause]
                allowed = (
                    [SESSION_ITEMS],
                    [SESSION_ITEMS_AND_LOG_STATE],  # the evidence log's state item, pk LOG
                    [EXPORT_JOBS],  # export jobs: partitions of their own, never a session's item
                )
                assert leading in allowed, (function_name, action)


def test_only_the_sealer_may_write_the_ttl_attribute(template: dict[str, Any]) -> None:
    """Of session items; the export role expires its own job items (pk EXPORT#...) and can reach nothing else."""
    writers_without_the_exclusion = {
        function_name
        for function_name in EXPECTED_GRANTS
        for action, resource, condition in effective_grants(template, function_name)
        if resource == TABLE and action in TABLE_WRITE and NEVER_AN_EXPIRY not in condition and condition != EXPORT_JOBS
    }
    assert writers_without_the_exclusion == {"SealFunction"}
    table = template["Resources"]["ChainTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_every_function_has_a_reviewed_row_of_grants(template: dict[str, Any]) -> None:
    assert set(functions(template)) == set(EXPECTED_GRANTS)


@pytest.mark.parametrize("function_name", sorted(EXPECTED_GRANTS))
def test_function_role_may_perform_exactly_its_listed_actions(template: dict[str, Any], function_name: str) -> None:
    assert effective_grants(template, function_name) == EXPECTED_GRANTS[function_name]


def test_no_role_or_policy_is_declared_outside_the_reviewed_set(template: dict[str, Any]) -> None:
    iam_resources = {
        name: res["Type"] for name, res in template["Resources"].items() if res["Type"].startswith("AWS::IAM::")
    }
    assert iam_resources == {
        "AgentPolicy": "AWS::IAM::ManagedPolicy",
        "AuditorPolicy": "AWS::IAM::ManagedPolicy",
        "SealScheduleRole": "AWS::IAM::Role",
    }


def test_the_schedule_role_only_invokes_the_sealer_and_dead_letters(template: dict[str, Any]) -> None:
    """EventBridge Scheduler's role: invoke the seal function (which decides what is sealed; an invocation chooses
    nothing) and send undelivered runs to the dead-letter queue. Nothing else, and only for this account's scheduler."""
    role = template["Resources"]["SealScheduleRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    grants = {
        (action, json.dumps(statement["Resource"], sort_keys=True))
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
    }
    assert grants == {
        ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": ["SealFunction", "Arn"]})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["SealScheduleDeadLetterQueue", "Arn"]})),
    }


def test_no_statement_allows_a_wildcard_or_negated_action_or_principal(template: dict[str, Any]) -> None:
    found = list(statements(template))
    assert len(found) >= 10
    for statement in found:
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        assert "NotPrincipal" not in statement
        if statement["Effect"] == "Allow":
            assert all("*" not in action for action in as_list(statement["Action"])), statement
            assert statement.get("Principal") != "*", statement
            assert statement.get("Principal") != {"AWS": "*"}, statement


def test_identity_policies_never_name_every_resource(template: dict[str, Any]) -> None:
    """``Resource: "*"`` appears only in the key policy, where it means "this key" (nothing narrower exists)."""
    identity_statements = [
        statement
        for function in functions(template).values()
        for policy in as_list(function["Properties"].get("Policies", []))
        for statement in policy["Statement"]
    ] + [
        statement
        for policy in resources(template, "AWS::IAM::ManagedPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert identity_statements
    for statement in identity_statements:
        for resource in as_list(statement["Resource"]):
            assert render(resource) != "*", statement
            assert not render(resource).endswith(":*"), statement


def test_nobody_may_delete_unlock_or_rewrite_the_rules_of_stored_evidence(template: dict[str, Any]) -> None:
    allowed = {
        action
        for statement in statements(template)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }
    assert allowed & FORBIDDEN_EVERYWHERE == set()


def test_only_the_sealer_may_sign_even_the_account_root_may_not(template: dict[str, Any]) -> None:
    signers = [
        statement.get("Principal")
        for statement in statements(template)
        if statement["Effect"] == "Allow" and "kms:Sign" in as_list(statement["Action"])
    ]
    assert signers == [{"AWS": {"Fn::GetAtt": ["SealFunctionRole", "Arn"]}}]
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    root_statements = [s for s in key_policy(template) if s.get("Principal") == root]
    assert len(root_statements) == 1
    (root_statement,) = root_statements
    assert root_statement["Effect"] == "Allow"
    # No kms:* for the root: IAM policies in the account cannot delegate signing, and no grant can be created.
    assert not {"kms:Sign", "kms:CreateGrant", "kms:*"} & set(as_list(root_statement["Action"]))
    denies = [s for s in key_policy(template) if s["Effect"] == "Deny"]
    assert denies == [
        {
            "Sid": "NobodyElseSigns",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["kms:Sign"],
            "Resource": "*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["SealFunctionRole", "Arn"]}}},
        }
    ]
    key = template["Resources"]["SealKey"]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")


def test_archive_bucket_is_compliance_locked_versioned_private_and_encrypted(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["ArchiveBucket"]
    properties = bucket["Properties"]
    assert properties["ObjectLockEnabled"] is True
    lock = properties["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert lock["Rule"]["DefaultRetention"]["Days"] == {"Ref": "ArchiveRetentionDays"}
    assert template["Parameters"]["ArchiveRetentionDays"]["MinValue"] >= 1
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms", "aws:kms:dsse"}
    assert bucket["DeletionPolicy"] == "Retain"
    # Lifecycle aborts crashed multipart uploads (never evidence) and expires superseded key indexes once their lock
    # has ended; nothing expires a current version (tests/iac/test_the_template_keeps_the_security_promises.py pins
    # the rules).
    rules = properties["LifecycleConfiguration"]["Rules"]
    assert [set(rule) for rule in rules] == [
        {"Id", "Status", "AbortIncompleteMultipartUpload"},
        {"Id", "Status", "Prefix", "NoncurrentVersionExpiration"},
    ]


def test_bucket_policy_only_denies_and_refuses_every_granted_s3_action_without_tls(template: dict[str, Any]) -> None:
    policy = template["Resources"]["ArchiveBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ArchiveBucket"}
    tls_only, no_deletes = policy["PolicyDocument"]["Statement"]
    for statement in (tls_only, no_deletes):
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*"
    assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {render(r) for r in tls_only["Resource"]} == {BUCKET, BUCKET + "/*"}
    granted_s3 = {action for rows in EXPECTED_GRANTS.values() for action, _, _ in rows if action.startswith("s3:")}
    assert granted_s3 <= set(as_list(tls_only["Action"]))
    # Unconditional: a delete marker would hide an archive even though Object Lock keeps the version.
    assert "Condition" not in no_deletes
    assert set(as_list(no_deletes["Action"])) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert render(no_deletes["Resource"]) == BUCKET + "/*"


def test_every_route_but_health_requires_sigv4(template: dict[str, Any]) -> None:
    (api,) = resources(template, "AWS::Serverless::HttpApi").values()
    assert api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert api["Properties"]["Auth"]["EnableIamAuthorizer"] is True
    assert "Authorizers" not in api["Properties"]["Auth"]  # no second, weaker authorizer to pick
    open_routes = []
    for method, path, event in routes(template):
        authorizer = event["Properties"].get("Auth", {}).get("Authorizer", "AWS_IAM")
        assert authorizer in {"AWS_IAM", "NONE"}
        if authorizer == "NONE":
            open_routes.append((method, path))
    assert open_routes == [("GET", "/v1/health")]


def test_there_is_no_catch_all_route(template: dict[str, Any]) -> None:
    for method, path, _ in routes(template):
        assert method != "ANY"
        assert "+}" not in path
        assert path.startswith("/v1/")


def routes(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for function in functions(template).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                found.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], event))
    return found


def invokable_routes(template: dict[str, Any], policy_name: str) -> set[str]:
    """The template routes that the managed policy lets its holder invoke (execute-api ARN wildcards matched)."""
    (statement,) = template["Resources"][policy_name]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["execute-api:Invoke"]
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/"
    patterns = []
    for resource in as_list(statement["Resource"]):
        arn = render(resource)
        assert arn.startswith(prefix), arn  # this API only, in this account and region
        patterns.append(arn.removeprefix(prefix))
    matched = set()
    for method, path, _ in routes(template):
        concrete = "prod/" + method + path.replace("{session_id}", "3f1c2b6e-0000-4000-8000-000000000001")
        if any(fnmatch.fnmatchcase(concrete, pattern) for pattern in patterns):
            matched.add(f"{method} {path}")
    return matched


def test_agent_policy_lets_agents_append_and_nothing_else(template: dict[str, Any]) -> None:
    assert invokable_routes(template, "AgentPolicy") == {"POST /v1/sessions/{session_id}/events"}


def test_auditor_policy_grants_every_read_route_and_exports_but_never_append(template: dict[str, Any]) -> None:
    reads = {f"GET {path}" for method, path, _ in routes(template) if method == "GET" and path != "/v1/health"}
    exports = {f"POST {path}" for method, path, _ in routes(template) if path.endswith("/exports")}
    assert invokable_routes(template, "AuditorPolicy") == reads | exports
    assert "POST /v1/sessions/{session_id}/events" not in invokable_routes(template, "AuditorPolicy")


def test_agent_and_auditor_policies_are_stack_outputs(template: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    assert outputs["AgentPolicyArn"] == {"Ref": "AgentPolicy"}
    assert outputs["AuditorPolicyArn"] == {"Ref": "AuditorPolicy"}


def test_auditors_may_read_the_evidence_log_and_agents_may_not(template: dict[str, Any]) -> None:
    log_routes = {"GET /v1/log/checkpoint", "GET /v1/log/consistency", "GET /v1/sessions/{session_id}/log-proof"}
    assert log_routes <= invokable_routes(template, "AuditorPolicy")
    assert not log_routes & invokable_routes(template, "AgentPolicy")


def test_only_the_sealer_may_write_the_evidence_log(template: dict[str, Any]) -> None:
    """Tiles and checkpoints are written by the role that signs them; the API that serves them only reads."""
    writers = {
        name
        for name in functions(template)
        if any(action == "s3:PutObject" and resource == LOG for action, resource, _ in effective_grants(template, name))
    }
    assert writers == {"SealFunction"}
