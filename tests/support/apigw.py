"""Invoking a handler in process as API Gateway (HTTP API, payload format 2.0, IAM authorizer) would.

The local stack builds its events from real HTTP requests (``infra.apigw``); tests and benchmarks that call a handler
directly build them here, naming the caller's IAM ARN themselves.
"""

from __future__ import annotations

import base64
import uuid
from types import ModuleType
from typing import Any

from infra.lambda_runtime import LocalLambdaContext


def http_api_event(
    method: str,
    path: str,
    *,
    caller: str | None,
    body: bytes | str | None = None,
    query: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> dict[str, Any]:
    """The event API Gateway sends after IAM authorization; ``caller=None`` is a request without identity."""
    request_context: dict[str, Any] = {
        "accountId": "111122223333",
        "apiId": "test",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "timeEpoch": 0,
    }
    if caller is not None:
        request_context["authorizer"] = {"iam": {"userArn": caller, "accessKey": "AKIATEST"}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "&".join(f"{name}={value}" for name, value in (query or {}).items()),
        "headers": {"content-type": content_type} if content_type else {},
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if isinstance(body, bytes):
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:  # API Gateway base64-encodes bodies that are not UTF-8 text
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
    elif body is not None:
        event["body"] = body
    return event


def invoke(handler: ModuleType, event: dict[str, Any], function_name: str = "TestFunction") -> dict[str, Any]:
    """Call ``handler.lambda_handler`` with a Lambda context; returns the raw response dict."""
    response: dict[str, Any] = handler.lambda_handler(event, LocalLambdaContext(function_name, 512, 30))
    return response
