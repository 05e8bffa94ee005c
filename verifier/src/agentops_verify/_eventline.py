"""Fast, exact reading of one JSON Lines event and of its payload's canonical bytes (ELS section 2).

The verifier spends nearly all its time here, so the common case runs on the standard library's C scanner and C
encoder, and the pure-Python exact code runs only when a cheap test on the raw text says it might be needed:

- The fast writer of ``_jcs`` (the C encoder) is exact for values without floats outside the plain-decimal range and
  without object keys outside the Basic Multilingual Plane. The parser learns both while parsing (a ``parse_float``
  hook; one test of the raw text for astral characters) instead of walking the parsed tree.
- The I-JSON checks that the C scanner cannot do while parsing (nesting depth, lone surrogates) need a walk of the
  parsed tree only when the raw text has more than 64 brackets or a ``\\uD8xx``-``\\uDFxx`` escape; without those
  neither problem can exist. Duplicate keys, NaN/Infinity and out-of-range integers are refused during the parse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._errors import CanonicalizationError, MalformedJSONError
from ._jcs import ASTRAL_CHARACTER, canonicalize, fast_canonical_text, float_prints_as_jcs
from ._json import SURROGATE_ESCAPE, _checked_int, _reject_constant, _unique_object, check_parsed, checked_float

# RFC 8259 section 2: the only insignificant whitespace.
JSON_WHITESPACE = " \t\r\n"


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

    def parse(self, line: bytes, *, caller_bounds_depth: bool = False) -> tuple[Any, bool]:
        """Parse one line (without surrounding whitespace) strictly as I-JSON. Returns the value and whether its
        canonical form needs the exact (slow) canonicalizer rather than ``fast_canonical_text``. With
        ``caller_bounds_depth`` the nesting depth is left unchecked (``check_depth``) for a caller that can bound it
        more cheaply; everything else is checked."""
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
        check_parsed(text, value, depth=not caller_bounds_depth)
        if self._needs_exact or (line.find(b"\\") >= 0 and SURROGATE_ESCAPE.search(text) is not None):
            return value, True
        return value, not line.isascii() and ASTRAL_CHARACTER.search(text) is not None


def canonical_bytes(value: Any, *, exact: bool) -> bytes:
    """RFC 8785 bytes of a value parsed by ``EventLineParser`` (``exact`` as it returned), or of any value when
    ``exact`` is true. Raises ``MalformedJSONError`` for values that are not I-JSON."""
    try:
        if exact:
            return canonicalize(value)
        return fast_canonical_text(value).encode("utf-8")
    except (CanonicalizationError, UnicodeEncodeError, RecursionError, ValueError, TypeError) as exc:
        raise MalformedJSONError(str(exc)) from None


def loads_for_hashing(data: bytes | str, *, caller_bounds_depth: bool = False) -> tuple[Any, bool]:
    """Parse one JSON document strictly as I-JSON, like ``loads``, and say whether its parts need the exact writer:
    pass the flag to ``canonical_bytes`` for any part of the value. For services that hash what they parse.
    ``caller_bounds_depth`` leaves the nesting depth to the caller, as ``EventLineParser.parse`` explains."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:
        raise MalformedJSONError("string contains a lone surrogate") from None
    return EventLineParser().parse(raw.strip(JSON_WHITESPACE.encode()), caller_bounds_depth=caller_bounds_depth)
