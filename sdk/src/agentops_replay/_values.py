"""Common Python values recorded as the JSON they stand for, rather than refused.

The canonical form (``agentops_verify.canonicalize``, ELS section 2) knows only JSON types. An agent's payloads often
hold a few more, with one obvious JSON form each; the sender converts them, and only when the value as given has no
canonical form (so ordinary events pay nothing):

| Python | recorded as |
|---|---|
| ``datetime`` (aware) | RFC 3339 string, ``2026-05-01T12:00:00+00:00``; naive: the same without an offset |
| ``date``, ``time`` | ISO 8601 string (``isoformat()``) |
| ``bytes``, ``bytearray``, ``memoryview`` | standard base64 string (RFC 4648 section 4, with padding) |
| ``set``, ``frozenset`` | list, sorted by the canonical form of its (converted) members |
| ``tuple``, other sequences of the types above | list |
| dataclass instance | object of its fields |
| pydantic model (``model_dump()``) | object of the dumped fields |
| ``Enum`` member | its value |
| ``UUID``, ``Decimal`` | their string (a ``Decimal`` keeps every digit) |
| ``Mapping`` | object (its keys must still be strings) |

Everything else is left as it is, so the verifier's rules decide: NaN, Infinity, integers beyond +-(2**53 - 1),
integral floats from 2**53 up to 1e21, lone surrogates, non-string keys, nesting deeper than 64 and unknown types
are refused.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import Mapping
from typing import Any

from agentops_verify import MAX_DEPTH, CanonicalizationError, canonicalize


def plain_json(value: Any, _depth: int = 0) -> Any:
    """``value`` with the types above converted, containers copied where they change; never raises for a value it
    cannot convert (it is returned unchanged, for the canonicalizer to refuse)."""
    if _depth > MAX_DEPTH:  # the canonicalizer refuses this nesting anyway; stop converting (and any cycle) here
        return value
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    depth = _depth + 1
    if kind is dict or isinstance(value, Mapping):
        return {key: plain_json(item, depth) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [plain_json(item, depth) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain_json(item, depth) for item in value), key=_canonical_order)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return plain_json(value.value, depth)
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain_json(getattr(value, field.name), depth) for field in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        try:
            return plain_json(model_dump(), depth)
        except Exception:  # a model that cannot dump itself stays as it is, and is refused
            return value
    return value


def _canonical_order(value: Any) -> tuple[int, bytes]:
    # Members that have no canonical form sort last, in no particular order; the set is refused anyway.
    try:
        return 0, canonicalize(value)
    except CanonicalizationError:
        return 1, b""
