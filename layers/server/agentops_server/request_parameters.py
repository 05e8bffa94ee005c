"""What the read routes accept (API.md): replay's paging parameters and an export's request body, checked here so a
handler only routes. Every problem is reported at once, as 400 VALIDATION_ERROR with one entry per field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from agentops_verify import MalformedJSONError, loads
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from agentops_server.errors import ApiError
from agentops_server.frames import DEFAULT_LIMIT, MAX_LIMIT

MAX_WITHHELD_SEQUENCE_NUMBERS = 100_000


def page_parameters(query: Mapping[str, str] | None) -> tuple[int, int]:
    """``from_sequence`` (default 0) and ``limit`` (default ``DEFAULT_LIMIT``, at most ``MAX_LIMIT``) of a replay."""
    query = query or {}
    errors: list[dict[str, str]] = []
    from_sequence = _integer(query, "from_sequence", default=0, low=0, high=None, errors=errors)
    limit = _integer(query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT, errors=errors)
    if errors:
        raise ApiError("VALIDATION_ERROR", "The paging parameters are not valid.", {"errors": errors})
    return from_sequence, limit


def _integer(
    query: Mapping[str, str], name: str, *, default: int, low: int, high: int | None, errors: list[dict[str, str]]
) -> int:
    text = query.get(name)
    if text is None:
        return default
    # Plain decimal digits only: no sign, spaces, underscores or exponents that int() would quietly accept.
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        errors.append({"field": name, "problem": "must be a decimal integer"})
        return default
    value = int(text)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        errors.append({"field": name, "problem": f"must be {bounds}"})
    return value


class ExportRequest(BaseModel):
    """``{"format": "json" | "pdf" | "html", "withhold_payloads": false | true | [sequence numbers]}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["json", "pdf", "html"]
    withhold_payloads: (
        StrictBool | Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(max_length=MAX_WITHHELD_SEQUENCE_NUMBERS)]
    ) = False


def export_request(body: bytes) -> ExportRequest:
    """The export request of ``body``; 400 VALIDATION_ERROR when it is not JSON or not a valid request."""
    try:
        return ExportRequest.model_validate(loads(body))
    except MalformedJSONError as error:
        raise ApiError(
            "VALIDATION_ERROR", "The body is not valid JSON.", {"errors": [{"field": "", "problem": str(error)}]}
        ) from None
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]} for item in error.errors()
        ]
        raise ApiError("VALIDATION_ERROR", "The export request is not valid.", {"errors": problems}) from None
