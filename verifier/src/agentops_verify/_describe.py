"""How findings name a JSON value they quote: its kind, and the value itself when it is short."""

from __future__ import annotations

from typing import Any

# A quoted string longer than this is cut, so a finding never repeats a whole payload.
_MAX_QUOTED = 80


def json_kind(value: Any) -> str:
    """``"null"``, ``"a boolean"``, ``"an integer"``, ... : the JSON kind of a parsed value, with its article."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is int:
        return "an integer"
    if type(value) is float:
        return "a number with a fraction or exponent"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


def describe(value: Any) -> str:
    """A short description for a message: a string quoted (cut at 80 characters), a scalar with its kind."""
    if type(value) is str:
        shown = value if len(value) <= _MAX_QUOTED else value[: _MAX_QUOTED - 3] + "..."
        return repr(shown)
    if value is None or type(value) in (bool, int, float):
        return f"{json_kind(value)} {value!r}"
    return json_kind(value)
