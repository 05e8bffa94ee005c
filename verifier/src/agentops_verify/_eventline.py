"""Fast, exact reading of one JSON Lines event and of its payload's canonical bytes (ELS section 2).

The verifier spends nearly all its time here, so the common case runs on the standard library's C scanner and C
encoder, and the pure-Python exact code runs only when a cheap test on the raw text says it might be needed:

- ``json``'s C encoder with sorted keys, no whitespace and no ASCII escaping writes exactly RFC 8785 for a value that
  holds no float and no object key outside the Basic Multilingual Plane: integers print the same, strings are escaped
  the same way (only ``"``, ``\\`` and C0 controls, lowercase ``\\u00xx``), and for BMP-only keys code-point order is
  UTF-16 code-unit order. A non-integral float ``v`` with ``1e-4 <= |v| < 1e16`` also prints the same, because both
  ``repr`` and ECMAScript then write the shortest round-trip digits in plain decimal notation. Anything else (other
  floats, astral characters, surrogate escapes) goes to ``canonicalize``. ``tests/unit/verifier`` checks this
  equivalence with hypothesis.
- The I-JSON checks that the C scanner cannot do while parsing (nesting depth, lone surrogates) need a walk of the
  parsed tree only when the raw text has more than 64 brackets or a ``\\uD8xx``-``\\uDFxx`` escape; without those
  neither problem can exist. Duplicate keys, NaN/Infinity and out-of-range integers are refused during the parse.
"""

from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Callable
from typing import Any

from ._errors import CanonicalizationError, MalformedJSONError
from ._jcs import MAX_DEPTH, canonicalize
from ._json import _checked_int, _reject_constant, _unique_object, check_tree, checked_float

# RFC 8259 section 2: the only insignificant whitespace.
JSON_WHITESPACE = " \t\r\n"

# An escape that could produce a surrogate code unit: \uD800 to \uDFFF, either case.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ALL_BUT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"{[")

# Above 1e16 repr() switches to exponent notation; below 1e-4 too (ES6 only below 1e-6).
_FAST_FLOAT_MIN = 1e-4
_FAST_FLOAT_MAX = 1e16


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


def float_prints_as_jcs(value: float) -> bool:
    """Whether ``repr(value)`` is already the RFC 8785 form of ``value`` (see the module docstring)."""
    magnitude = abs(value)
    return _FAST_FLOAT_MIN <= magnitude < _FAST_FLOAT_MAX and not value.is_integer()


class EventLineParser:
    """Parses lines one at a time; not thread-safe (one per verifier)."""

    def __init__(self) -> None:
        self._needs_exact = False
        decoder = json.JSONDecoder(
            object_pairs_hook=_unique_object,
            parse_float=self._parse_float,
            parse_int=_checked_int,
            parse_constant=_reject_constant,
        )
        # The C scanner itself, skipping JSONDecoder.decode's Python-level wrapper (typeshed does not list it).
        self._scan_once: Callable[[str, int], tuple[Any, int]] = getattr(decoder, "scan_once")  # noqa: B009

    def _parse_float(self, text: str) -> float:
        value = float(text)
        if not float_prints_as_jcs(value):
            checked_float(text, value)
            self._needs_exact = True
        return value

    def parse(self, line: bytes) -> tuple[Any, bool]:
        """Parse one line (without surrounding whitespace) strictly as I-JSON. Returns the value and whether its
        canonical form needs the exact (slow) canonicalizer rather than ``fast_canonical_text``."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSONError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        self._needs_exact = False
        try:
            value, end = self._scan_once(text, 0)
        except StopIteration as stop:
            raise MalformedJSONError(f"expecting a JSON value at character {stop.value}") from None
        except MalformedJSONError:
            raise
        except (ValueError, RecursionError) as exc:
            raise MalformedJSONError(str(exc)) from None
        if end != len(text):
            raise MalformedJSONError(f"extra data after the JSON value at character {end}")
        # The raw-byte tests below are cheap; the walk they guard is not.
        # (find() of one byte is much faster than "in" with a two-byte needle.)
        surrogate_escape = line.find(b"\\") >= 0 and _SURROGATE_ESCAPE.search(text) is not None
        # Each nesting level needs its own bracket, so at most 64 brackets means at most 64 levels.
        if surrogate_escape or len(line.translate(None, _ALL_BUT_BRACKETS)) > MAX_DEPTH:
            check_tree(value)
        if self._needs_exact or surrogate_escape:
            return value, True
        return value, not line.isascii() and _ASTRAL.search(text) is not None


def canonical_bytes(value: Any, *, exact: bool) -> bytes:
    """RFC 8785 bytes of a value parsed by ``EventLineParser`` (``exact`` as it returned), or of any value when
    ``exact`` is true. Raises ``MalformedJSONError`` for values that are not I-JSON."""
    try:
        if exact:
            return canonicalize(value)
        return fast_canonical_text(value).encode("utf-8")
    except (CanonicalizationError, UnicodeEncodeError, RecursionError, ValueError, TypeError) as exc:
        raise MalformedJSONError(str(exc)) from None
