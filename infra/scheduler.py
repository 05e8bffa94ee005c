"""The sealer's schedule as the local stack plays it: EventBridge Scheduler's retries and dead-letter queue, and the
seal function's on-failure destination, read from ``template.yaml`` and delivered to a queue in moto.

moto has no scheduler that invokes targets, so this is the smallest equivalent that keeps the template's two failure
paths apart, as AWS does:

- the scheduler cannot deliver a run (Lambda throttled or unavailable: ``DeliveryFailedError``): it tries again up
  to ``SealSchedule``'s ``RetryPolicy.MaximumRetryAttempts`` times, then sends the schedule's input to the
  ``DeadLetterConfig`` queue with the message attributes EventBridge Scheduler sets on a dead-letter event;
- the run is delivered but the function fails (an error, a timeout): Lambda retries it
  ``EventInvokeConfig.MaximumRetryAttempts`` times, then sends its invocation record to the ``OnFailure`` queue.

The template points both at ``SealScheduleDeadLetterQueue``, which ``SealScheduleDeadLetterAlarm`` watches. Retries
here follow each other at once: the local stack has no reason to wait, and the count is what the template sets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.apigw import LOCAL_ACCOUNT_ID
from infra.template import TemplateError

SCHEDULE = "SealSchedule"


class DeliveryFailedError(Exception):
    """The scheduler could not invoke the target (on AWS: Lambda throttled the invocation or was unavailable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ScheduleDefinition:
    input: dict[str, Any]
    delivery_retries: int  # SealSchedule Target.RetryPolicy.MaximumRetryAttempts
    function_retries: int  # the target function's EventInvokeConfig.MaximumRetryAttempts
    dead_letter_queue: str  # logical id of the schedule's DeadLetterConfig queue
    target_function: str  # logical id of the target

    @classmethod
    def from_template(cls, template: dict[str, Any], logical_id: str = SCHEDULE) -> ScheduleDefinition:
        resources = template["Resources"]
        target = resources[logical_id]["Properties"]["Target"]
        function = _get_att_resource(target["Arn"])
        queue = _get_att_resource(target["DeadLetterConfig"]["Arn"])
        invoke_config = resources[function]["Properties"].get("EventInvokeConfig", {})
        on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {})
        if on_failure and _get_att_resource(on_failure["Destination"]) != queue:
            raise TemplateError(f"{function}'s failed runs go elsewhere than {logical_id}'s dead-letter queue")
        return cls(
            input=json.loads(target.get("Input", "{}")),
            delivery_retries=int(target["RetryPolicy"]["MaximumRetryAttempts"]),
            # Lambda's default for asynchronous invocations is two retries.
            function_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
            dead_letter_queue=queue,
            target_function=function,
        )


def _get_att_resource(value: Any) -> str:
    if not (isinstance(value, dict) and set(value) == {"Fn::GetAtt"}):
        raise TemplateError(f"expected !GetAtt <resource>.Arn, found {value!r}")
    attribute = value["Fn::GetAtt"]
    resource: str = attribute.split(".", 1)[0] if isinstance(attribute, str) else attribute[0]
    return resource


def create_dead_letter_queue(sqs_client: Any, template: dict[str, Any], definition: ScheduleDefinition) -> str:
    """Create the queue the template declares for missed runs; return its URL."""
    properties = template["Resources"][definition.dead_letter_queue]["Properties"]
    attributes = {"MessageRetentionPeriod": str(properties["MessageRetentionPeriod"])}
    url: str = sqs_client.create_queue(QueueName=definition.dead_letter_queue, Attributes=attributes)["QueueUrl"]
    return url


class LocalScheduler:
    """Fires the schedule once per ``fire()``: ``invoke`` runs the target with the schedule's input."""

    def __init__(
        self,
        definition: ScheduleDefinition,
        invoke: Callable[[dict[str, Any]], Any],
        sqs_client: Any,
        queue_url: str,
        region: str,
    ) -> None:
        self._definition = definition
        self._invoke = invoke
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._schedule_arn = f"arn:aws:scheduler:{region}:{LOCAL_ACCOUNT_ID}:schedule/default/{SCHEDULE}"
        self._target_arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{definition.target_function}"

    def fire(self) -> Any:
        """The run's result, or None when it ended in the dead-letter queue."""
        execution_id = str(uuid.uuid4())
        retries = self._definition.delivery_retries
        for attempt in range(retries + 1):
            try:
                return self._run_function()
            except DeliveryFailedError as error:
                if attempt == retries:
                    self._dead_letter_undelivered(execution_id, error)
        return None

    def _run_function(self) -> Any:
        """One delivered (asynchronous) invocation, retried as Lambda retries a failed one."""
        retries = self._definition.function_retries
        for attempt in range(retries + 1):
            try:
                return self._invoke(dict(self._definition.input))
            except DeliveryFailedError:
                raise
            except Exception as error:  # the function failed: Lambda's on-failure destination gets the record
                if attempt == retries:
                    self._dead_letter_failed_run(error, attempt + 1)
        return None

    def _dead_letter_undelivered(self, execution_id: str, error: DeliveryFailedError) -> None:
        # EventBridge Scheduler's dead-letter event: the target's input as the body, the failure as attributes.
        attributes = {
            "ERROR_CODE": error.code,
            "ERROR_MESSAGE": str(error),
            "EXECUTION_ID": execution_id,
            "RETRY_ATTEMPTS": str(self._definition.delivery_retries),
            "SCHEDULE_ARN": self._schedule_arn,
            "TARGET_ARN": self._target_arn,
        }
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(self._definition.input),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            },
        )

    def _dead_letter_failed_run(self, error: Exception, attempts: int) -> None:
        # Lambda's invocation record for an on-failure destination.
        record = {
            "version": "1.0",
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{self._target_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": self._definition.input,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(record))
