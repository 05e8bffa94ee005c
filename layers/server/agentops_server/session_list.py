"""GET /v1/sessions (API.md rev 2): sessions newest first, filtered, in pages, from the store's listing indexes.

Pure core: the query string's parameters come in, the 200 body goes out. Every parameter is checked before the
store is read, and anything unknown, malformed or out of range is a 400 VALIDATION_ERROR naming the parameter.

``next_token`` is opaque to clients: the URL-safe base64 (unpadded) of the canonical JSON
``{"v": 1, "at": <started_at>, "id": <session_id>, "f": <filter fingerprint>}``, the place where the previous page
ended. It holds no storage key, so a client cannot steer a query anywhere a filter could not; it is accepted only
in exactly the form this module writes, and only with the filters it was made for (the fingerprint).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from agentops_verify import MalformedJSONError, canonicalize, is_canonical_uuid, loads
from pydantic import TypeAdapter, ValidationError

from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.errors import ApiError
from agentops_server.event_schema import Timestamp
from agentops_server.sessions import session_row
from agentops_server.store import (
    STATUS_ENDED,
    STATUS_OPEN,
    STATUS_SEALED,
    STATUS_SEALING,
    ChainStore,
    ListPosition,
    SessionListQuery,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
PARAMETERS = ("agent_id", "status", "started_after", "started_before", "limit", "next_token")
STATUSES = (STATUS_OPEN, STATUS_ENDED, STATUS_SEALING, STATUS_SEALED)
TOKEN_VERSION = 1
_MAX_TOKEN_CHARS = 256  # a token this module writes is about 160 characters
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
_TIMESTAMP = TypeAdapter(Timestamp)  # ELS section 1's RFC 3339 UTC form, the one events use
# Each row reads its chain's tip (one small query); a page's tips are read this many at a time, so a page of 50 waits
# for about 7 round trips instead of 50.
TIP_READERS = 8


def list_sessions(store: ChainStore, parameters: Mapping[str, str] | None) -> dict[str, Any]:
    """The API.md 200 body for these query string parameters, or ``ApiError`` VALIDATION_ERROR."""
    query, fingerprint = parse_query(parameters or {})
    page = store.list_sessions(query)
    with ThreadPoolExecutor(max_workers=TIP_READERS) as readers:
        tips = list(readers.map(lambda head: store.tip(head.session_id), page.heads))
    rows = []
    for head, tip in zip(page.heads, tips, strict=True):
        row = session_row(head, tip)
        # The store filters on the head's recorded status, which can lag the chain's tip after a crash; the row
        # shows the tip's, and a row that no longer has the status asked for is left out.
        if query.status is None or row["status"] == query.status:
            rows.append(row)
    next_token = None if page.next_position is None else encode_token(page.next_position, fingerprint)
    return {"sessions": rows, "next_token": next_token}


def parse_query(parameters: Mapping[str, str]) -> tuple[SessionListQuery, str]:
    """The store query for the request, and the fingerprint of its filters. An empty value counts as absent."""
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise _invalid(unknown[0], f"is not a parameter of this route; the parameters are {', '.join(PARAMETERS)}")
    given = {name: value for name, value in parameters.items() if value != ""}
    status = given.get("status")
    if status is not None and status not in STATUSES:
        raise _invalid("status", f"must be one of {', '.join(STATUSES)}")
    limit_text = given.get("limit", str(DEFAULT_LIMIT))
    if not _LIMIT.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise _invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    started_after = _time_parameter(given, "started_after")
    started_before = _time_parameter(given, "started_before")
    if started_after is not None and started_before is not None and started_after >= started_before:
        raise _invalid("started_after", "must be earlier than started_before")
    filters = {
        "agent_id": given.get("agent_id"),
        "status": status,
        "started_after": None if started_after is None else format_timestamp(started_after),
        "started_before": None if started_before is None else format_timestamp(started_before),
    }
    fingerprint = hashlib.sha256(canonicalize(filters)).hexdigest()[:32]
    token = given.get("next_token")
    query = SessionListQuery(
        limit=int(limit_text),
        agent_id=filters["agent_id"],
        status=status,
        started_after=started_after,
        started_before=started_before,
        older_than=None if token is None else decode_token(token, fingerprint),
    )
    return query, fingerprint


def encode_token(position: ListPosition, fingerprint: str) -> str:
    document = {
        "v": TOKEN_VERSION,
        "at": format_timestamp(position.started_at),
        "id": position.session_id,
        "f": fingerprint,
    }
    return base64.urlsafe_b64encode(canonicalize(document)).rstrip(b"=").decode("ascii")


def decode_token(token: str, fingerprint: str) -> ListPosition:
    """The position a token names; 400 unless it is exactly what ``encode_token`` wrote for these filters."""
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_ALPHABET.fullmatch(token):
        raise _bad_token()
    try:
        document = loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, MalformedJSONError):
        raise _bad_token() from None
    if not isinstance(document, dict) or set(document) != {"v", "at", "id", "f"} or document["v"] != TOKEN_VERSION:
        raise _bad_token()
    at, session_id = document["at"], document["id"]
    if not isinstance(at, str) or not isinstance(session_id, str) or not is_canonical_uuid(session_id):
        raise _bad_token()
    try:
        position = ListPosition(parse_timestamp(at), session_id)
    except ValueError:
        raise _bad_token() from None
    if document["f"] != fingerprint:
        raise _invalid("next_token", "was made for other filters; repeat the filters of the first page")
    if encode_token(position, fingerprint) != token:
        raise _bad_token()
    return position


def _time_parameter(given: Mapping[str, str], name: str) -> datetime | None:
    text = given.get(name)
    if text is None:
        return None
    problem = "must be an RFC 3339 UTC time such as 2026-01-31T09:30:00Z (at most microseconds)"
    try:
        _TIMESTAMP.validate_python(text)
        fraction = text[20:-1]
        if len(fraction) > 6:
            raise ValueError("finer than a microsecond")
        return datetime.fromisoformat(text)
    except (ValidationError, ValueError):
        raise _invalid(name, problem) from None


def _invalid(parameter: str, problem: str) -> ApiError:
    return ApiError(
        "VALIDATION_ERROR",
        f"The query parameter {parameter} {problem}.",
        {"errors": [{"field": parameter, "problem": problem}]},
    )


def _bad_token() -> ApiError:
    return _invalid("next_token", "is not a token this service gave out")
