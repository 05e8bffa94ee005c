"""RFC 8785 JSON Canonicalization Scheme (JCS), as required by ELS section 2.

Pure function over parsed JSON values; no I/O. Values that are not I-JSON (RFC 7493) are refused rather than
canonicalized "somehow", because two parsers must never disagree about hashed data.
"""

from __future__ import annotations

import math
from typing import Any

from ._errors import CanonicalizationError

# ELS section 2 / RFC 7493 section 2.2: integers must be exactly representable as IEEE-754 doubles.
MAX_SAFE_INTEGER = 2**53 - 1
# ELS section 2: nesting deeper than this is refused.
MAX_DEPTH = 64

# RFC 8785 section 3.2.2.2: the short escapes; every other control character becomes \u00xx (lowercase hex).
_SHORT_ESCAPES = {
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    0x22: '\\"',
    0x5C: "\\\\",
}
_ESCAPE_TABLE = {code: f"\\u{code:04x}" for code in range(0x20)} | _SHORT_ESCAPES


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value``.

    Raises ``CanonicalizationError`` for NaN or Infinity, integers beyond +-(2**53 - 1), strings with lone
    surrogates, non-string object keys, nesting deeper than 64, and values that are not JSON types.
    """
    parts: list[str] = []
    _serialize(value, parts, 0)
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # only lone surrogates cannot be encoded
        raise CanonicalizationError("string contains a lone surrogate") from exc


def _serialize(value: Any, out: list[str], depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise CanonicalizationError(f"nesting deeper than {MAX_DEPTH}")
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"object key {key!r} is not a string")
        # RFC 8785 section 3.2.3: members sorted by the UTF-16 code units of their names.
        out.append("{")
        first = True
        for key in sorted(value, key=_utf16_sort_key):
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _serialize(value[key], out, depth + 1)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise CanonicalizationError(f"nesting deeper than {MAX_DEPTH}")
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _serialize(item, out, depth + 1)
        out.append("]")
    else:
        raise CanonicalizationError(f"{type(value).__name__} is not a JSON type")


def _utf16_sort_key(key: str) -> bytes:
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError("object key contains a lone surrogate") from exc


def _string(text: str) -> str:
    # RFC 8785 section 3.2.2.2: only '"', '\\' and C0 controls are escaped; everything else is literal UTF-8.
    return '"' + text.translate(_ESCAPE_TABLE) + '"'


def _integer(value: int) -> str:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    raise CanonicalizationError(f"integer {value} is outside +-(2**53 - 1)")


def format_number(value: float) -> str:
    """Format a double as ECMAScript's Number.prototype.toString does (RFC 8785 section 3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        raise CanonicalizationError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"  # covers -0
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digit string that round-trips, which is what ES6 asks for.
    mantissa, _, exponent_text = repr(abs(value)).partition("e")
    integer_part, _, fraction_part = mantissa.partition(".")
    digits = (integer_part + fraction_part).lstrip("0")
    exponent = (int(exponent_text) if exponent_text else 0) - len(fraction_part)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    # value = digits * 10**exponent; in ES6 terms k = len(digits) and n = exponent + k.
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exponent_str = f"e+{e}" if e >= 0 else f"e-{-e}"
    if k == 1:
        return sign + digits + exponent_str
    return sign + digits[0] + "." + digits[1:] + exponent_str
