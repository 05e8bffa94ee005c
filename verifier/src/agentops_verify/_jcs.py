"""RFC 8785 JSON Canonicalization Scheme (JCS), as required by ELS section 2.

Pure function over parsed JSON values; no I/O. Values that are not I-JSON (RFC 7493) are refused rather than
canonicalized "somehow", because two parsers must never disagree about hashed data.

Two writers produce the same bytes. The exact writer below follows the RFC line by line. The fast writer is the
standard library's C encoder with sorted keys, no whitespace and no ASCII escaping, which writes exactly RFC 8785 for
a value that holds only plain JSON types, integers within +-(2**53 - 1), no float outside the range where ``repr``
and ECMAScript agree (``float_prints_as_jcs``) and no object key outside the Basic Multilingual Plane (code-point
order equals UTF-16 order there): strings are escaped the same way (only ``"``, ``\\`` and C0 controls, lowercase
``\\u00xx``) and integers print the same. ``canonicalize`` checks those conditions in one pass and uses the fast
writer when they hold. A whole-number float within +-(2**53 - 1) (``1.0``, ``512.0``, ``-0.0``, as producers send
``top_p`` and ``max_tokens``) is the one common float the C encoder writes differently (``1.0`` where RFC 8785 writes
``1``): the same pass gives the fast writer a copy of the value with such floats as ints, which it writes as RFC 8785
writes the floats; only the containers that hold one are copied. ``tests/unit/verifier`` proves the equivalence
with hypothesis.
"""

from __future__ import annotations

import json
import json.encoder
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import CanonicalizationError

# ELS section 2 / RFC 7493 section 2.2: integers must be exactly representable as IEEE-754 doubles.
MAX_SAFE_INTEGER = 2**53 - 1
# ELS section 2: nesting deeper than this is refused.
MAX_DEPTH = 64
# An integer this many bits long or shorter has at most 600 digits, which str() prints whatever
# sys.set_int_max_str_digits() allows (at least 640); a longer one is refused without being printed.
_PRINTABLE_INTEGER_BITS = 1993
# ES6 Number.prototype.toString writes integral values below this in plain digits (RFC 8785 section 3.2.2.3).
_FIRST_EXPONENT_FORM = 1e21


def is_unsafe_integral(value: float) -> bool:
    """ELS section 2: a whole-number double from 2**53 up to 1e21 (such as 1e20) is written as an integer literal
    (100000000000000000000) outside +-(2**53 - 1), which no I-JSON reader accepts; it is refused, as such an integer
    is. From 1e21 on the canonical form has an exponent and reads back as the same double."""
    return value.is_integer() and MAX_SAFE_INTEGER < abs(value) < _FIRST_EXPONENT_FORM


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

# Above 1e16 repr() switches to exponent notation; below 1e-4 too (ES6 only below 1e-6).
FAST_FLOAT_MIN = 1e-4
FAST_FLOAT_MAX = 1e16
ASTRAL_CHARACTER = re.compile("[\U00010000-\U0010ffff]")


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON type")


def _make_fast_encoder() -> Callable[[Any], str]:
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # not CPython: the pure-Python encoder writes the same text, only slower
        encoder = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return encoder.encode
    # Same arguments JSONEncoder.iterencode passes, built once: no circular-reference markers (parsed JSON has no
    # cycles), C string escaping without ASCII escaping, ":" and ",", sorted keys, no skipped keys, no NaN.
    iterencode = c_make_encoder(None, _no_default, json.encoder.encode_basestring, None, ":", ",", True, False, False)

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


fast_canonical_text: Callable[[Any], str] = _make_fast_encoder()
"""The fast writer: RFC 8785 text for values that meet the module docstring's conditions, and only for those."""


def float_prints_as_jcs(value: float) -> bool:
    """Whether ``repr(value)`` is already the RFC 8785 form of ``value``: for a non-integral double with
    ``1e-4 <= |v| < 1e16`` both write the shortest round-trip digits in plain decimal notation."""
    magnitude = abs(value)
    return FAST_FLOAT_MIN <= magnitude < FAST_FLOAT_MAX and not value.is_integer()


class _ExactWriterNeededError(Exception):
    """Raised by ``_fast_writer_input`` for a value only the exact writer writes (or refuses) correctly."""


def _fast_writer_input(value: Any, depth: int = 0) -> Any:
    """What the fast writer must be given to write ``value``'s exact RFC 8785 form: ``value`` itself, or, when it
    holds whole-number floats within +-(2**53 - 1), a copy with those floats as the ints RFC 8785 writes for them
    (only the containers that hold one are copied; the caller's value is never changed). Raises
    ``_ExactWriterNeededError`` when no input will do. Exact types only, so subclasses (enums, say) take the exact
    writer, which refuses what is not JSON. One pass with scalars judged inline: this runs for every hash the service
    computes."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _ExactWriterNeededError
        for key in value:
            if type(key) is not str or (not key.isascii() and ASTRAL_CHARACTER.search(key) is not None):
                raise _ExactWriterNeededError
        members: Iterable[tuple[Any, Any]] = value.items()
    elif kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise _ExactWriterNeededError
        members = enumerate(value)
    else:
        return _fast_writer_scalar(value)
    copy: Any = None
    for position, child in members:
        child_kind = type(child)
        if child_kind is str or child_kind is bool or child is None:
            continue
        if child_kind is int:
            if -MAX_SAFE_INTEGER <= child <= MAX_SAFE_INTEGER:
                continue
            raise _ExactWriterNeededError
        if child_kind is float:
            if float_prints_as_jcs(child):
                continue
            if not prints_as_integer(child):
                raise _ExactWriterNeededError
            written: Any = int(child)
        elif child_kind is dict or child_kind is list or child_kind is tuple:
            written = _fast_writer_input(child, depth + 1)
            if written is child:
                continue
        else:
            raise _ExactWriterNeededError
        if copy is None:
            copy = dict(value) if kind is dict else list(value)
        copy[position] = written
    return value if copy is None else copy


def _fast_writer_scalar(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    if kind is float:
        if float_prints_as_jcs(value):
            return value
        if prints_as_integer(value):
            return int(value)
    raise _ExactWriterNeededError


def prints_as_integer(value: float) -> bool:
    """Whether RFC 8785 writes this double as the integer it equals (``1.0`` as ``1``, ``-0.0`` as ``0``), which
    the fast writer then writes too: a whole number within +-(2**53 - 1). ``repr`` writes ``1.0``."""
    return value.is_integer() and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER


# The C string writer of the fast writer: RFC 8785 section 3.2.2.2's escapes (see the module docstring).
_write_string: Callable[[str], str] = json.encoder.encode_basestring


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value``.

    Raises ``CanonicalizationError`` for NaN or Infinity, integers beyond +-(2**53 - 1) (whole-number doubles from
    2**53 up to 1e21 included: they would be written as such integers), strings with lone
    surrogates, non-string object keys, nesting deeper than 64, and values that are not JSON types.
    """
    kind = type(value)
    # Scalars, the members of every envelope a service writes, skip the container walk.
    if kind is str:
        try:
            return _write_string(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalizationError("string contains a lone surrogate") from exc
    if kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return b"%d" % value
    if value is None:
        return b"null"
    try:
        fast_input = _fast_writer_input(value)
    except _ExactWriterNeededError:
        return exact_canonical(value)
    try:
        return fast_canonical_text(fast_input).encode("utf-8")
    except UnicodeEncodeError as exc:  # only lone surrogates cannot be encoded
        raise CanonicalizationError("string contains a lone surrogate") from exc


class ObjectTemplate:
    """RFC 8785 section 3.2.3 for objects with one fixed set of member names: the names are sorted by their UTF-16
    code units and written once, and ``fill`` puts in each member's value as ``canonicalize`` wrote it. JCS writes
    a member's value independently of its siblings, so a value written once (a payload whose hash was taken from
    those bytes, an envelope field that is also hashed) goes into any object as it is."""

    __slots__ = ("_template", "_values", "names")

    def __init__(self, names: Iterable[str]) -> None:
        ordered = sorted(set(names), key=_utf16_sort_key)
        if not ordered:
            raise ValueError("an object template needs at least one member name")
        self.names: tuple[str, ...] = tuple(ordered)
        # bytes %-formatting (PEP 461) fills every member in one call; a "%" in a name is written as "%%".
        members = [canonicalize(name).replace(b"%", b"%%") + b":%b" for name in ordered]
        self._template = b"{" + b",".join(members) + b"}"
        getter = operator.itemgetter(*ordered)
        self._values: Callable[[Mapping[str, bytes]], tuple[bytes, ...]] = (
            getter if len(ordered) > 1 else lambda values: (getter(values),)
        )

    def fill(self, member_values: Mapping[str, bytes]) -> bytes:
        """The object's canonical bytes from the canonical bytes of each member's value. Values for names outside
        the template are ignored; a missing one raises ``KeyError``."""
        return self._template % self._values(member_values)


def exact_canonical(value: Any) -> bytes:
    """The exact writer: RFC 8785 clause by clause, for any value (``canonicalize`` without the fast path)."""
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
        if is_unsafe_integral(value):
            raise CanonicalizationError(f"integer {format_number(value)} is outside +-(2**53 - 1)")
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
    shown = str(value) if value.bit_length() <= _PRINTABLE_INTEGER_BITS else "of more than 600 digits"
    raise CanonicalizationError(f"integer {shown} is outside +-(2**53 - 1)")


def format_number(value: float) -> str:
    """Format a double as ECMAScript's Number.prototype.toString does (RFC 8785 section 3.2.2.3), for every finite
    double: ``canonicalize`` refuses the ones ELS section 2 keeps out of hashed data (``is_unsafe_integral``)."""
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
