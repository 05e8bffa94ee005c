"""Strict I-JSON parsing (ELS section 2): the one parser whose reading of hashed data everyone shares."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ._errors import MalformedJSONError
from ._jcs import MAX_DEPTH, MAX_SAFE_INTEGER, is_unsafe_integral


def _reject_constant(name: str) -> Any:
    raise MalformedJSONError(f"{name} is not allowed in I-JSON")


def _finite_float(text: str) -> float:
    return checked_float(text, float(text))


def checked_float(text: str, value: float) -> float:
    """ELS section 2 for a number written with a fraction or exponent. float() turns 1e400 into infinity, which
    I-JSON forbids. And an integral value from 2**53 up to 1e21 (such as 1e20) is refused as canonicalize refuses it
    (``is_unsafe_integral``): its canonical form would be an integer literal this loader refuses."""
    if not math.isfinite(value):
        raise MalformedJSONError(f"number {text} is outside the range of a double")
    if is_unsafe_integral(value):
        raise MalformedJSONError(f"number {text} is an integer outside +-(2**53 - 1)")
    return value


def _checked_int(text: str) -> int:
    value = int(text)
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    raise MalformedJSONError(f"integer {text} is outside +-(2**53 - 1)")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedJSONError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_constant=_reject_constant,
    parse_int=_checked_int,
    parse_float=_finite_float,
)


# An escape that could produce a surrogate code unit: \uD800 to \uDFFF, either case.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_parsed(text: str, value: Any, *, depth: bool = True) -> None:
    """The I-JSON checks the C scanner cannot make while parsing ``text`` into ``value``: nesting depth (unless
    ``depth`` is false) and lone surrogates. A surrogate needs a \\uD8xx-\\uDFxx escape (UTF-8 cannot carry one
    literally), so without such an escape only the depth is walked, and not at all when the text has too few brackets
    to nest 64 deep."""
    check_value(
        value,
        surrogate_escapes="\\" in text and SURROGATE_ESCAPE.search(text) is not None,
        many_brackets=depth and text.count("{") + text.count("[") > MAX_DEPTH,
    )


def check_value(value: Any, *, surrogate_escapes: bool, many_brackets: bool) -> None:
    """``check_parsed`` for a caller that has already looked at the text: whether it holds a surrogate escape, and
    more than 64 brackets (false when the caller bounds the depth itself)."""
    if surrogate_escapes:
        check_tree(value)
    elif many_brackets:
        check_depth(value)


def loads(data: bytes | str) -> Any:
    """Parse one JSON text strictly as I-JSON; raise ``MalformedJSONError`` on anything two parsers could read
    differently."""
    try:
        if isinstance(data, (bytes, bytearray)):
            text = data.decode("utf-8")
        else:
            text = data
            text.encode("utf-8")  # a str may hold a literal lone surrogate
        value = _DECODER.decode(text)
    except MalformedJSONError:
        raise
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise MalformedJSONError(str(exc)) from exc
    check_parsed(text, value)
    return value


def check_tree(value: Any) -> None:
    """Raise ``MalformedJSONError`` for what ``json.loads`` accepts silently and I-JSON refuses: nesting deeper than
    64, a string with a lone surrogate, NaN, Infinity, an integer outside +-(2**53 - 1) (or a whole-number double
    written as one, ``is_unsafe_integral``); and for an object key that is not a string (a value built in Python)."""
    # Iterative walk: no recursion limit to hit.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node)
        elif isinstance(node, dict):
            if depth >= MAX_DEPTH:
                raise MalformedJSONError(f"nesting deeper than {MAX_DEPTH}")
            for key, child in node.items():
                if not isinstance(key, str):
                    raise MalformedJSONError(f"object key {key!r} is not a string")
                _check_string(key)
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            if depth >= MAX_DEPTH:
                raise MalformedJSONError(f"nesting deeper than {MAX_DEPTH}")
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, float):
            if not math.isfinite(node) or is_unsafe_integral(node):
                checked_float(repr(node), node)  # raises, naming the number
        elif isinstance(node, int) and not isinstance(node, bool) and not -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER:
            raise MalformedJSONError("an integer is outside +-(2**53 - 1)")  # not printed: str() refuses 4,300 digits


def check_depth(value: Any) -> None:
    """Raise ``MalformedJSONError`` for nesting deeper than 64; visits containers only, level by level."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        if depth >= MAX_DEPTH:
            raise MalformedJSONError(f"nesting deeper than {MAX_DEPTH}")
        children: list[Any] = []
        for node in level:
            children.extend(node.values() if type(node) is dict else node)
        level = [child for child in children if type(child) is dict or type(child) is list]
        depth += 1


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedJSONError("string contains a lone surrogate") from exc
