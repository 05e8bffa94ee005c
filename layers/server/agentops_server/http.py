"""The one place where errors become HTTP responses, and the request plumbing every handler shares.

Handlers register ``install_error_handlers`` on their resolver; the core raises ``ApiError`` (or a storage error)
and never builds responses itself. A 5xx body is generic: the detail goes to the log, not to the caller.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic_core import to_json

from agentops_server.errors import ApiError
from agentops_server.limits import MAX_BODY_BYTES
from agentops_server.store import StoredItemMalformedError, StoreThrottledError, StoreUnavailableError

JSON_CONTENT_TYPE = "application/json"


def json_response(status: int, body: Any) -> Response[str]:
    # pydantic-core's writer: compact UTF-8 JSON like json.dumps(separators=(",", ":"), ensure_ascii=False), about
    # three times faster for the 50-event answer of an append. Response bodies are not hashed, so any valid JSON
    # will do; canonical bytes come only from agentops_verify.
    return Response(status_code=status, content_type=JSON_CONTENT_TYPE, body=to_json(body).decode("utf-8"))


def error_response(error: ApiError) -> Response[str]:
    response = json_response(error.status, error.body())
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def api_error_of(error: Exception) -> ApiError:
    """The API error a route's exception is answered with (its code is also what the metrics count)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, StoreThrottledError):
        return ApiError("THROTTLED", "Storage is throttling requests; retry later.")
    if isinstance(error, StoreUnavailableError):
        return ApiError("SERVICE_UNAVAILABLE", "Storage is unavailable; nothing was written, retry the same request.")
    if isinstance(error, StoredItemMalformedError):
        # Only this session's: an item of it was written by something other than this service, so it cannot be
        # verified, and no retry changes that.
        return ApiError(
            "VERIFICATION_FAILED",
            "A stored item of this session cannot be read, so the session cannot be verified; nothing was written.",
            {"violations": []},
        )
    return ApiError("INTERNAL_ERROR", "The service failed; retry the same request.")


def install_error_handlers(app: APIGatewayHttpResolver, logger: Logger) -> None:
    """Map every exception a route can raise to the API's error body (API.md "Errors")."""

    def _api_error(error: ApiError) -> Response[str]:
        if error.status >= 500:
            logger.error("request failed", extra={"code": error.code})
        return error_response(error)

    def _throttled(error: StoreThrottledError) -> Response[str]:
        logger.warning("storage throttled", extra={"reason": str(error)})
        return error_response(api_error_of(error))

    def _unavailable(error: StoreUnavailableError) -> Response[str]:
        logger.error("storage unavailable", extra={"reason": str(error)})
        return error_response(api_error_of(error))

    def _malformed(error: StoredItemMalformedError) -> Response[str]:
        logger.error("a stored item cannot be read", extra={"reason": str(error)})
        return error_response(api_error_of(error))

    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return error_response(api_error_of(error))

    def _no_route(error: Exception) -> Response[str]:
        return error_response(ApiError("NOT_FOUND", "No such route."))

    # Registered by call rather than as decorators: the handlers keep their types.
    app.exception_handler(ApiError)(_api_error)
    app.exception_handler(StoreThrottledError)(_throttled)
    app.exception_handler(StoreUnavailableError)(_unavailable)
    app.exception_handler(StoredItemMalformedError)(_malformed)
    app.exception_handler(Exception)(_unexpected)
    app.not_found(_no_route)


def caller_identity(event: Mapping[str, Any]) -> str:
    """The IAM principal API Gateway authenticated (``requestContext.authorizer.iam.userArn``); 403 without one."""
    authorizer = event.get("requestContext", {}).get("authorizer") or {}
    user_arn = (authorizer.get("iam") or {}).get("userArn")
    if not isinstance(user_arn, str) or not user_arn:
        raise ApiError("FORBIDDEN", "The request carries no caller identity.")
    return user_arn


def require_json_content_type(headers: Mapping[str, str]) -> None:
    """415 unless the body is declared ``application/json`` (a ``charset=utf-8`` parameter is allowed)."""
    declared = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
    media_type, *parameters = (part.strip() for part in declared.split(";"))
    acceptable = media_type.lower() == JSON_CONTENT_TYPE and all(
        parameter.lower().replace('"', "") == "charset=utf-8" for parameter in parameters if parameter
    )
    if not acceptable:
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE",
            "The body must be sent as application/json (UTF-8).",
            {"content_type": declared},
        )


def request_body(event: Mapping[str, Any], limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body bytes (API Gateway base64-encodes some); 413 when over ``limit``."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "surrogatepass")
    if len(raw) > limit:
        raise ApiError(
            "PAYLOAD_TOO_LARGE",
            f"The body is {len(raw)} bytes; the limit is {limit}.",
            {"limit_bytes": limit, "body_bytes": len(raw)},
        )
    return raw
