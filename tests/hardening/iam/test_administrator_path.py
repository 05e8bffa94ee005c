"""The administrator's path to the seal key, checked on ``template.yaml``: the key signs for the seal function's role
alone, so whoever changes what runs as that role can make it sign without touching the key policy. The template
offers Lambda code signing for the seal function, and raises an alarm on every change to the seal function, its role
and the key's policy or grants; and every alarm the sealer logs reaches an alarm someone is paged by.

Before: no code signing option, nothing watched the seal function or its role, and SECURITY.md said an administrator
could make the key sign only by replacing the key policy.
"""

from __future__ import annotations

from typing import Any

import pytest
from agentops_server.archive import ALARM_KEY_OBJECT_REFUSED
from agentops_server.sealing import (
    ALARM_ARCHIVE_CONFLICT,
    ALARM_SEAL_DEFERRED,
    ALARM_SEAL_FAILED,
    ALARM_SEAL_FORGERY,
    ALARM_SEAL_REFUSED,
)
from cfnlint.decode import cfn_yaml

from tests.support.paths import TEMPLATE

SEAL_ROLE_ARN = {"Fn::GetAtt": ["SealFunctionRole", "Arn"]}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def branches(template: dict[str, Any], source: str) -> list[dict[str, Any]]:
    pattern = template["Resources"]["SealPathChangeRule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    found: list[dict[str, Any]] = [branch for branch in pattern["$or"] if branch["source"] == [source]]
    return found


def event_names(branch: dict[str, Any]) -> set[str]:
    return {name if isinstance(name, str) else name["prefix"] for name in branch["detail"]["eventName"]}


def test_seal_function_code_signing_is_enforced_when_a_signing_profile_is_given(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SealCodeSigningProfileVersionArn"]
    assert parameter["Default"] == ""
    assert template["Conditions"]["SignSealCode"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SealCodeSigningProfileVersionArn"}, ""]}]
    }
    config = template["Resources"]["SealCodeSigningConfig"]
    assert config["Condition"] == "SignSealCode"
    assert config["Properties"]["AllowedPublishers"]["SigningProfileVersionArns"] == [
        {"Ref": "SealCodeSigningProfileVersionArn"}
    ]
    assert config["Properties"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    seal = template["Resources"]["SealFunction"]["Properties"]
    assert seal["CodeSigningConfigArn"] == {
        "Fn::If": ["SignSealCode", {"Ref": "SealCodeSigningConfig"}, {"Ref": "AWS::NoValue"}]
    }


def test_changing_the_seal_functions_code_or_configuration_raises_an_alarm(template: dict[str, Any]) -> None:
    (on_the_function, running_as_the_role) = branches(template, "aws.lambda")
    assert {"UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"} <= event_names(
        on_the_function
    )
    assert {"PutFunctionCodeSigningConfig", "DeleteFunctionCodeSigningConfig"} <= event_names(on_the_function)
    assert on_the_function["detail"]["requestParameters"]["functionName"] == [
        {"wildcard": {"Fn::Sub": "*${SealFunction}*"}}
    ]
    # A new function, or another one reconfigured, that runs as the seal role can sign as well.
    assert event_names(running_as_the_role) == {"CreateFunction", "UpdateFunctionConfiguration"}
    assert running_as_the_role["detail"]["requestParameters"]["role"] == [SEAL_ROLE_ARN]


def test_changing_the_seal_role_or_the_keys_policy_or_grants_raises_an_alarm(template: dict[str, Any]) -> None:
    (role,) = branches(template, "aws.iam")
    assert {"PutRolePolicy", "AttachRolePolicy", "UpdateAssumeRolePolicy", "PutRolePermissionsBoundary"} <= (
        event_names(role)
    )
    assert role["detail"]["requestParameters"]["roleName"] == [{"Ref": "SealFunctionRole"}]
    (key,) = branches(template, "aws.kms")
    assert {"PutKeyPolicy", "CreateGrant"} <= event_names(key)
    # The template's key, and the key that signs after a rotation (SealKeyArn) when there was one.
    assert key["detail"]["resources"]["ARN"] == [
        {"Fn::GetAtt": ["SealKey", "Arn"]},
        {"Fn::If": ["SignWithTemplateKey", {"Fn::GetAtt": ["SealKey", "Arn"]}, {"Ref": "SealKeyArn"}]},
    ]


def test_the_seal_path_rule_notifies_and_alarms(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    rule = resources["SealPathChangeRule"]["Properties"]
    assert rule["State"] == "ENABLED"
    assert [target["Arn"] for target in rule["Targets"]] == [{"Ref": "SecurityAlertsTopic"}]
    alarm = resources["SealPathChangeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Events", "Invocations")
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": "SealPathChangeRule"}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["AlarmActions"][0] == {"Ref": "SecurityAlertsTopic"}
    (publish_from_rule,) = [
        statement
        for statement in resources["SecurityAlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if statement["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert publish_from_rule["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["SealPathChangeRule", "Arn"]}}
    }


def test_every_alarm_the_sealer_logs_reaches_an_alarm(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    routed: dict[str, str] = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Logs::MetricFilter":
            if resource["Properties"]["LogGroupName"] == {"Ref": "LogFunctionLogs"}:
                # the log API's LOG_INTEGRITY filter
                # (tests/iac/test_the_template_keeps_the_security_promises.py checks it)
                continue
            assert resource["Properties"]["LogGroupName"] == {"Ref": "SealFunctionLogs"}
            metric = resource["Properties"]["MetricTransformations"][0]["MetricName"]
            for alarm in (
                ALARM_SEAL_REFUSED,
                ALARM_SEAL_FORGERY,
                ALARM_ARCHIVE_CONFLICT,
                ALARM_KEY_OBJECT_REFUSED,
                ALARM_SEAL_FAILED,
                ALARM_SEAL_DEFERRED,
            ):
                if f'$.alarm = "{alarm}"' in resource["Properties"]["FilterPattern"]:
                    routed[alarm] = metric
    assert routed == {
        ALARM_SEAL_REFUSED: "EvidenceIntegrityAlarms",
        ALARM_SEAL_FORGERY: "EvidenceIntegrityAlarms",
        ALARM_ARCHIVE_CONFLICT: "EvidenceIntegrityAlarms",
        ALARM_KEY_OBJECT_REFUSED: "EvidenceIntegrityAlarms",
        ALARM_SEAL_FAILED: "SealingBacklogAlarms",
        ALARM_SEAL_DEFERRED: "SealingBacklogAlarms",
    }
    for alarm_name, metric in (
        ("EvidenceIntegrityAlarm", "EvidenceIntegrityAlarms"),
        ("SealingBacklogAlarm", "SealingBacklogAlarms"),
    ):
        properties = resources[alarm_name]["Properties"]
        assert (properties["Namespace"], properties["MetricName"]) == ("AgentOpsReplay", metric)
        assert properties["AlarmActions"][0] == {"Ref": "SecurityAlertsTopic"}
    assert template["Outputs"]["SecurityAlertsTopicArn"]["Value"] == {"Ref": "SecurityAlertsTopic"}
