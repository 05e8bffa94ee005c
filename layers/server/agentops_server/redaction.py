"""Redaction before hashing (ELS section 3) as the ingestion API applies it: a payload holding ``"[REDACTED]"``
without a string ``<key>_hash`` sibling is refused with VALIDATION_ERROR, since the verifier would fail the session
(REDACTION_INTEGRITY) and it could never be sealed. The rule itself is the verifier's (``find_unbacked_redaction``);
this module names the place in the API's field style (``payload.args.cc[1]``, as every validation error does)."""

from __future__ import annotations

from typing import Any

from agentops_verify import REDACTED, canonicalize, find_unbacked_redaction

from agentops_server.errors import ApiError

# How the marker appears in canonical bytes: a payload without it needs no walk.
_REDACTED_JSON = canonicalize(REDACTED)
UNBACKED_PROBLEM = "is [REDACTED] without a string <key>_hash sibling (ELS section 3)"


def reject_unbacked_redaction(event_index: int, payload: dict[str, Any], payload_bytes: bytes) -> None:
    """Raise VALIDATION_ERROR naming the first unbacked ``"[REDACTED]"`` of the payload whose canonical bytes are
    ``payload_bytes``; return when every marker is backed."""
    if _REDACTED_JSON not in payload_bytes:
        return
    pointer = find_unbacked_redaction(payload)
    if pointer is not None:
        field = api_field(payload, pointer)
        raise ApiError(
            "VALIDATION_ERROR",
            f"Event {event_index}: {field} {UNBACKED_PROBLEM}.",
            {"errors": [{"event_index": event_index, "field": field, "problem": UNBACKED_PROBLEM}]},
        )


def api_field(payload: Any, pointer: str) -> str:
    """The API's name of the payload member at JSON Pointer ``pointer`` (relative to the payload): object members
    joined by dots, array positions in brackets, under ``payload``."""
    field = "payload"
    node = payload
    for token in pointer.split("/")[1:]:
        if type(node) is list:
            position = int(token)
            field += f"[{position}]"
            node = node[position]
        else:
            key = token.replace("~1", "/").replace("~0", "~")  # RFC 6901 section 4
            field += f".{key}"
            node = node[key]
    return field
