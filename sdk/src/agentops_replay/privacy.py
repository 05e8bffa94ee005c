"""Privacy helpers: content recorded as hashes, and single values redacted (ELS section 3, "Redaction before hashing").

Every hash here is ``agentops_verify.payload_hash``: hex SHA-256 of the RFC 8785 canonical form, the same rule an
auditor uses to check a disclosed original against the recorded hash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agentops_verify import payload_hash

REDACTED = "[REDACTED]"


def content_hash(value: Any) -> str:
    """hex(SHA-256(JCS(value))): what a redacted or content-free event records in place of ``value``."""
    return payload_hash(value)


def redact(payload: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """Return a copy of ``payload`` with each of ``keys`` replaced by ``"[REDACTED]"`` and the original value's hash
    in the sibling key ``<key>_hash``. Keys that are absent are left alone.

    Raises ``agentops_verify.CanonicalizationError`` when a redacted value is not I-JSON (it has no hash).
    """
    redacted = dict(payload)
    for key in keys:
        if key in redacted:
            redacted[f"{key}_hash"] = content_hash(redacted[key])
            redacted[key] = REDACTED
    return redacted


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Best-effort conversion of framework objects (messages, pydantic models, tuples) into I-JSON values, so their
    hash or content can be recorded. Used by the integrations; unknown objects become their ``str()``."""
    if _depth > 32:
        return str(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 - 1 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item, _depth + 1) for item in value]
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return jsonable(model_dump(), _depth + 1)
        except Exception:  # a framework object that cannot dump itself is still recorded, as text
            return str(value)
    return str(value)
