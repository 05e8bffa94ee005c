"""The sealer's schedule as the local stack plays it (``infra.scheduler``, ``infra.local_stack.SealRunner``): a run
the scheduler cannot deliver is retried as SealSchedule's RetryPolicy says and then dead-lettered; a run the seal
function fails (here: its KMS key is gone) is dead-lettered at once; and SealScheduleDeadLetterAlarm's metric, read
from the queue, crosses the alarm's threshold. A healthy run leaves the queue empty."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from infra.local_stack import SEAL_FUNCTION, SealRunner, build_function_pools
from infra.scheduler import DeliveryFailedError, LocalScheduler, ScheduleDefinition, create_dead_letter_queue
from infra.template import function_definitions, load_template
from tests.hardening.client_events import body, client_event
from tests.operations.conftest import AGENT, REGION, Deployment
from tests.support.apigw import http_api_event, invoke
from tests.support.paths import REPO_ROOT

# A CloudWatch SQS metric is the queue attribute of the same name without "Visible" (AWS/SQS documents the pairs).
QUEUE_ATTRIBUTE_OF_METRIC = {"ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages"}
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
}


@pytest.fixture
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def definition(template: dict[str, Any]) -> ScheduleDefinition:
    return ScheduleDefinition.from_template(template)


@pytest.fixture
def queue_url(deployment: Deployment, template: dict[str, Any], definition: ScheduleDefinition) -> str:
    return create_dead_letter_queue(boto3.client("sqs", region_name=REGION), template, definition)


def dead_letter_alarm_fires(template: dict[str, Any], queue_url: str) -> bool:
    """SealScheduleDeadLetterAlarm evaluated on the local queue: its metric, threshold and comparison as deployed."""
    alarm = template["Resources"]["SealScheduleDeadLetterAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["SealScheduleDeadLetterQueue", "QueueName"]}
    attribute = QUEUE_ATTRIBUTE_OF_METRIC[alarm["MetricName"]]
    value = int(
        boto3.client("sqs", region_name=REGION).get_queue_attributes(QueueUrl=queue_url, AttributeNames=[attribute])[
            "Attributes"
        ][attribute]
    )
    fires: bool = COMPARISONS[alarm["ComparisonOperator"]](value, alarm["Threshold"])
    return fires


def dead_letters(queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        boto3.client("sqs", region_name=REGION)
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0)
        .get("Messages", [])
    )
    return messages


def seal_runner(definition: ScheduleDefinition, queue_url: str, template: dict[str, Any]) -> SealRunner:
    """The local stack's sealer runner, with the real seal function pool it builds from the template."""
    pools = build_function_pools(function_definitions(template), REPO_ROOT)
    return SealRunner(pools[SEAL_FUNCTION], 60.0, definition, queue_url)


def end_a_session(deployment: Deployment) -> str:
    session_id = str(uuid.uuid4())
    events = [client_event(0, "SESSION_START"), client_event(1, "SESSION_END")]
    event = http_api_event("POST", f"/v1/sessions/{session_id}/events", caller=AGENT, body=body(events))
    assert invoke(deployment.handler("ingest"), event, "IngestFunction")["statusCode"] == 200
    return session_id


def test_the_schedule_retries_and_dead_letters_are_those_of_the_template(
    template: dict[str, Any], definition: ScheduleDefinition
) -> None:
    target = template["Resources"]["SealSchedule"]["Properties"]["Target"]
    assert definition.delivery_retries == target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert definition.input == json.loads(target["Input"])
    assert definition.target_function == SEAL_FUNCTION
    assert definition.dead_letter_queue == "SealScheduleDeadLetterQueue"


def test_a_healthy_run_seals_and_dead_letters_nothing(
    deployment: Deployment, template: dict[str, Any], definition: ScheduleDefinition, queue_url: str
) -> None:
    session_id = end_a_session(deployment)

    assert seal_runner(definition, queue_url, template).run_scheduled() == {"sealed": [session_id]}

    assert dead_letters(queue_url) == []
    assert not dead_letter_alarm_fires(template, queue_url)


def test_an_undelivered_run_is_retried_then_dead_lettered_and_alarms(
    deployment: Deployment, template: dict[str, Any], definition: ScheduleDefinition, queue_url: str
) -> None:
    attempts: list[dict[str, Any]] = []

    def throttled(event: dict[str, Any]) -> Any:
        attempts.append(event)
        raise DeliveryFailedError("TooManyRequestsException", "Rate Exceeded.")

    scheduler = LocalScheduler(definition, throttled, boto3.client("sqs", region_name=REGION), queue_url, REGION)
    assert scheduler.fire() is None

    assert len(attempts) == 1 + definition.delivery_retries
    (message,) = dead_letters(queue_url)
    assert json.loads(message["Body"]) == definition.input
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "TooManyRequestsException"
    assert attributes["RETRY_ATTEMPTS"] == str(definition.delivery_retries)
    assert attributes["TARGET_ARN"].endswith(f":function:{SEAL_FUNCTION}")
    assert dead_letter_alarm_fires(template, queue_url)


def test_a_run_the_sealer_fails_for_a_lost_key_is_dead_lettered_and_alarms(
    deployment: Deployment, template: dict[str, Any], definition: ScheduleDefinition, queue_url: str
) -> None:
    """The seal key is gone (a deleted key, a wrong SEAL_KEY_ID): KMS answers NotFoundException, the run stops,
    Lambda's on-failure destination records it, and the session waits unsealed for a key."""
    session_id = end_a_session(deployment)
    deployment.patch.setenv("SEAL_KEY_ID", f"arn:aws:kms:{REGION}:123456789012:key/{uuid.uuid4()}")

    assert seal_runner(definition, queue_url, template).run_scheduled() is None

    (message,) = dead_letters(queue_url)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1 + definition.function_retries
    assert record["responsePayload"]["errorType"] == "SigningKeyMisconfiguredError"
    assert record["requestPayload"] == definition.input
    assert dead_letter_alarm_fires(template, queue_url)
    head = deployment.handler("ingest").wiring.store.get_head(session_id)
    assert head is not None
    assert head.status != "SEALED"
