"""Start a Lambda function asynchronously (``InvocationType=Event``): Lambda queues the event and answers 202.

Used by the export function to run an export job in a fresh invocation of itself (``agentops_server.export_jobs``).
The local stack serves the same Lambda Invoke call (``infra.local_stack``). IAM: ``lambda:InvokeFunction`` on the
function named.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentops_server.export_jobs import JobNotStartedError


class AsyncInvoker:
    """``invoker(event)`` queues one invocation of the function ``function_name()`` names (read at call time: the
    handler knows its own name from the invocation's context)."""

    def __init__(self, lambda_client: Any, function_name: Callable[[], str]) -> None:
        self._lambda = lambda_client
        self._function_name = function_name

    def __call__(self, event: dict[str, Any]) -> None:
        name = self._function_name()
        try:
            response = self._lambda.invoke(
                FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode("utf-8")
            )
        except (ClientError, BotoCoreError) as error:
            raise JobNotStartedError(f"invoking {name} failed: {error}") from error
        if response.get("StatusCode") != 202:
            raise JobNotStartedError(f"invoking {name} answered {response.get('StatusCode')}")
