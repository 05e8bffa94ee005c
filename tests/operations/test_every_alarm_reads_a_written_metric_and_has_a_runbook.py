"""The alarms and dashboard of ``template.yaml`` against the code and the runbooks: every metric an alarm or the
dashboard reads is one the code writes (or a metric filter of the template, or AWS, for a resource of the template),
and every alarm has its runbook in docs/operations.md. Names are read from the template, never repeated here."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from agentops_server.errors import STATUS_BY_CODE
from agentops_server.metrics import ALL_METRICS, NAMESPACE

from infra.template import load_template
from tests.operations.conftest import service_name
from tests.support.paths import REPO_ROOT

OPERATIONS = REPO_ROOT / "docs" / "operations.md"
DECLARED = {metric.name: metric for metric in ALL_METRICS}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def alarm_metrics(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: its own, or each MetricStat of its metric math."""
    if "MetricName" in properties:
        return [{key: properties.get(key, []) for key in ("Namespace", "MetricName", "Dimensions")}]
    return [query["MetricStat"]["Metric"] for query in properties["Metrics"] if "MetricStat" in query]


def filter_metrics(template: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (transformation["MetricNamespace"], transformation["MetricName"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Logs::MetricFilter"
        for transformation in resource["Properties"]["MetricTransformations"]
    }


def referenced_resource(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"]
        return str(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0])
    raise AssertionError(f"an AWS metric's dimension must name a resource of the template, not {value!r}")


def test_the_template_has_the_alarms_the_operations_need(template: dict[str, Any]) -> None:
    assert len(alarms(template)) >= 10
    assert {"AWS::Scheduler::Schedule", "AWS::SQS::Queue", "AWS::CloudWatch::Dashboard"} <= {
        resource["Type"] for resource in template["Resources"].values()
    }


def test_every_alarm_reads_a_metric_that_is_written(template: dict[str, Any]) -> None:
    from_filters = filter_metrics(template)
    for logical_id, properties in alarms(template).items():
        for metric in alarm_metrics(properties):
            namespace, name = metric["Namespace"], metric["MetricName"]
            dimensions = {dimension["Name"]: dimension["Value"] for dimension in metric["Dimensions"]}
            if namespace.startswith("AWS/"):
                for value in dimensions.values():
                    assert referenced_resource(value) in template["Resources"], logical_id
            elif (namespace, name) in from_filters:
                assert not dimensions, logical_id  # metric filters here write no dimension
            else:
                assert namespace == NAMESPACE, logical_id
                assert name in DECLARED, (logical_id, name)
                assert set(dimensions) == {"service", *DECLARED[name].dimensions}, logical_id
                assert dimensions["service"] == service_name(), logical_id
                if "ErrorCode" in dimensions:
                    assert dimensions["ErrorCode"] in STATUS_BY_CODE, logical_id


def test_metric_math_counts_a_period_without_a_datapoint_as_zero(template: dict[str, Any]) -> None:
    """Counts are written only when something happened: an expression over a series without FILL would have no value
    (and the alarm no data) in every period where that one series has none, e.g. Sign errors without GetPublicKey
    errors."""
    for logical_id, properties in alarms(template).items():
        if "Metrics" not in properties:
            continue
        (expression,) = [query["Expression"] for query in properties["Metrics"] if "Expression" in query]
        for query in properties["Metrics"]:
            if "MetricStat" in query:
                bare = re.sub(r"FILL\(\w+, 0\)", "", expression)
                assert f"FILL({query['Id']}, 0)" in expression, (logical_id, query["Id"])
                assert not re.search(rf"\b{query['Id']}\b", bare), (logical_id, query["Id"])


def test_every_alarm_notifies_the_optional_topic(template: dict[str, Any]) -> None:
    optional = {"Fn::If": ["NotifyAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]}
    for logical_id, properties in alarms(template).items():
        assert optional in properties["AlarmActions"], logical_id
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    (body,) = [
        resource["Properties"]["DashboardBody"]["Fn::Sub"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    document: dict[str, Any] = json.loads(re.sub(r"\$\{([A-Za-z0-9:.]+)\}", r"SUB:\1", body))
    return document


def test_the_dashboard_shows_every_metric_and_alarm_and_nothing_unwritten(template: dict[str, Any]) -> None:
    shown: set[str] = set()
    widgets = dashboard(template)["widgets"]
    for widget in widgets:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                (name,) = re.findall(r'MetricName="([A-Za-z]+)"', row[0]["expression"])
                shown.add(name)
            elif row[0] == NAMESPACE:
                assert row[2:4] == ["service", service_name()], row
                shown.add(row[1])
            else:
                assert row[0].startswith("AWS/"), row
    assert shown == set(DECLARED)
    (alarm_widget,) = [widget for widget in widgets if widget["type"] == "alarm"]
    assert {arn.removeprefix("SUB:").removesuffix(".Arn") for arn in alarm_widget["properties"]["alarms"]} == set(
        alarms(template)
    )


def runbook_sections() -> list[str]:
    return re.findall(r"^### (\S+)$", OPERATIONS.read_text(encoding="utf-8"), flags=re.MULTILINE)


def test_every_alarm_has_a_runbook_and_every_runbook_an_alarm(template: dict[str, Any]) -> None:
    runbooks = {section for section in runbook_sections() if section.endswith("Alarm")}
    assert runbooks == set(alarms(template))


def test_every_runbook_says_what_it_means_how_to_confirm_what_to_do_and_what_never_to_do(
    template: dict[str, Any],
) -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    for logical_id in alarms(template):
        section = text.split(f"### {logical_id}\n", 1)[1].split("\n### ", 1)[0]
        for part in ("**Means:**", "**Confirm:**", "**Do:**", "**Never:**"):
            assert part in section, (logical_id, part)
