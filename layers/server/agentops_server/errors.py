"""API errors (API.md "Errors"): a stable code, its HTTP status, one human sentence and details.

The core raises ``ApiError``; ``agentops_server.http`` is the one place that turns it into a response.
"""

from __future__ import annotations

from typing import Any

# Every code the API can answer with, and its status (API.md tables).
STATUS_BY_CODE: dict[str, int] = {
    "INVALID_JSON": 400,
    "VALIDATION_ERROR": 400,
    "UNKNOWN_EVENT_TYPE": 400,
    "SERVER_ONLY_EVENT_TYPE": 400,
    "AUTHORITY_FIELD_REJECTED": 400,
    "SESSION_ID_MISMATCH": 400,
    "NON_CONTIGUOUS_BATCH": 400,
    "INVALID_FIRST_EVENT": 400,
    "ORDER_VIOLATION": 400,
    "PAYLOAD_HASH_MISMATCH": 400,
    "DUPLICATE_EVENT_ID": 400,
    "EMPTY_BATCH": 400,
    "BATCH_TOO_LARGE": 400,
    "FORBIDDEN": 403,
    "SESSION_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "EXPORT_NOT_FOUND": 404,
    "SEQUENCE_CONFLICT": 409,
    "SESSION_ENDED": 409,
    "SESSION_SEALED": 409,
    "SESSION_TOO_LARGE": 409,
    "NOT_SEALED": 409,
    "LOG_PENDING": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "VERIFICATION_FAILED": 422,
    "THROTTLED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}


class ApiError(Exception):
    """A request the service answers with a non-2xx status. A 4xx means nothing was written."""

    retry_after: int | None = None  # seconds, sent as ``Retry-After`` when set

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS_BY_CODE[code]
        self.message = message
        self.details: dict[str, Any] = details if details is not None else {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}
