"""Fast, exact reading of one JSON Lines event and of its payload's canonical bytes (ELS section 2).

The verifier spends nearly all its time here, so the common case runs on the standard library's C scanner and C
encoder, and the pure-Python exact code runs only when the parse says it is needed:

- The fast writer of ``_jcs`` (the C encoder) is exact for values without floats outside the plain-decimal range and
  without object keys outside the Basic Multilingual Plane. The parser learns both while parsing: a ``parse_float``
  hook sees every float, and in a line that can hold a character outside the BMP (a UTF-8 byte from F0 to F4, or a
  surrogate escape) the hook that refuses duplicate keys also looks at every object's keys. Non-ASCII text and emoji
  in string values need nothing more: the C encoder writes them as literal UTF-8, as RFC 8785 does.
- A whole-number float (``1.0``, ``0.0``, as producers write ``top_p`` and ``temperature``) is the one common float
  the C encoder writes differently (``1.0``, where RFC 8785 writes ``1``). ``parse_event`` then reads the line a
  second time, with whole-number floats read as integers, and writes that copy's payload with the C encoder: a
  second C parse costs less than the pure-Python writer. The event it returns keeps the floats, so the envelope
  checks still see ``5.0`` as a float. A service writing each payload of a batch (``parse_for_hashing``) has the
  parse count whole-number floats instead, and drops their ".0" from the C writer's text (``canonical_parts``).
- The I-JSON checks that the C scanner cannot do while parsing (nesting depth, lone surrogates) need work only when
  the raw text has more than 64 brackets or a ``\\uD8xx``-``\\uDFxx`` escape; without those neither problem can
  exist. For an event line a lone surrogate in the payload shows when its canonical text is encoded as UTF-8, which
  happens anyway, so only the envelope's other members are walked. Duplicate keys and NaN/Infinity are refused
  during the parse.
- A line as the archive writes it (RFC 8785, envelope strings in plain ASCII) is read by ``read_event`` without the
  hook that refuses repeated member names: the patterns of ``_envelope`` read the envelope from the text, only the
  payload is parsed, and the payload's text must equal the C encoder's text for the value parsed from it, which
  lists every member once. Its bytes in the line are then its RFC 8785 bytes. Any other line is parsed whole.
- An integer outside +-(2**53 - 1) has 16 digits or more. A hook that range-checks each integer costs more than the
  rest of the parse of an ordinary event's half-dozen integers, so it runs only for lines where one pass over the
  bytes finds such a run of digits in a place an integer can start.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._envelope import CANONICAL_HEAD, CANONICAL_TAIL, Envelope, canonical_envelope
from ._errors import CanonicalizationError, MalformedJSONError
from ._jcs import (
    ASTRAL_CHARACTER,
    FAST_FLOAT_MAX,
    FAST_FLOAT_MIN,
    MAX_DEPTH,
    canonicalize,
    fast_canonical_text,
    prints_as_integer,
)
from ._json import (
    SURROGATE_ESCAPE,
    _checked_int,
    _reject_constant,
    _unique_object,
    check_depth,
    check_tree,
    check_value,
    checked_float,
)

# RFC 8259 section 2: the only insignificant whitespace.
JSON_WHITESPACE = " \t\r\n"

_LONE_SURROGATE = "string contains a lone surrogate"


def _scanner(**hooks: Any) -> Callable[[str, int], tuple[Any, int]]:
    # The C scanner itself, skipping JSONDecoder.decode's Python-level wrapper (typeshed does not list it).
    scan: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(**hooks), "scan_once")  # noqa: B009
    return scan


def _whole_number_as_int(text: str) -> float | int:
    # Only for text the strict scanner has accepted: every integral float in it is within +-(2**53 - 1) or
    # beyond 1e21, and only the former (which RFC 8785 writes as the integer) is turned into an int.
    value = float(text)
    return int(value) if prints_as_integer(value) else value


# For the copy of a line whose payload is written with whole-number floats as integers (see the module docstring).
_scan_whole_numbers_as_ints = _scanner(parse_float=_whole_number_as_int)

# One pass over a line's bytes answers two cheap questions: translated with _SHAPE (digits written as "0") and with
# the brackets deleted, the bytes it lost are its brackets, and an integer of 16 digits or more shows as 16 zeros at
# the start or just after a character that can precede an integer in JSON once brackets are gone (what preceded a
# "[" precedes its first member). A separate count of the brackets would cost a second pass.
_SHAPE = bytes.maketrans(b"123456789", b"000000000")
_BRACKETS = b"{["
_SIXTEEN_DIGITS = b"0" * 16
_LONG_INTEGERS = tuple(before + _SIXTEEN_DIGITS for before in (b":", b",", b"-", b" ", b"\t", b"\r", b"\n"))


def _holds_astral_characters(line: bytes) -> bool:
    # F0 to F4 start the UTF-8 sequence of a character outside the BMP, and nothing else.
    # Byte values, not one-byte strings: "b'x' in data" first tries the operand as an integer and formats an
    # exception before it searches, which costs ten times the search.
    return 0xF0 in line or 0xF1 in line or 0xF2 in line or 0xF3 in line or 0xF4 in line


def _may_hold_a_long_integer(shape: bytes) -> bool:
    """Whether the text might hold an integer literal of 16 digits or more (a float or a string with such a run
    counts too: this only decides whether each integer is range-checked while parsing)."""
    return shape.find(_SIXTEEN_DIGITS) >= 0 and _long_integer_starts(shape)


def _long_integer_starts(shape: bytes) -> bool:
    return shape.startswith(_SIXTEEN_DIGITS) or any(shape.find(start) >= 0 for start in _LONG_INTEGERS)


@dataclass(frozen=True)
class HashableDocument:
    """A document parsed strictly as I-JSON (``parse_for_hashing``) and what its parse learned about writing it:
    ``exact`` when a float or member name needs the exact writer, else how many whole-number floats it holds
    (``1.0``), the one thing the fast writer writes differently from RFC 8785 then."""

    value: Any
    exact: bool
    whole_floats: int

    def canonical_parts(self, parts: Sequence[Any]) -> list[bytes]:
        """RFC 8785 bytes of each of ``parts``: objects or arrays within ``value`` that together hold every float of
        the document (a service that has checked that the rest holds none). Raises ``MalformedJSONError``.

        Each part is written by the fast writer. Where whole-number floats exist, its text writes each one as its
        integer followed by ".0" (repr) and a delimiter (a number inside an object or array is always followed by
        one), where RFC 8785 writes the integer alone; a string may hold the same three characters too; when the parts
        hold exactly as many such endings as the document holds whole-number floats, every ending is a number and
        dropping its ".0" gives RFC 8785 (-0.0, which RFC 8785 writes as 0, takes the exact writer). Otherwise the
        parts with an ending take the exact writer."""
        if self.exact or any(type(part) is not dict and type(part) is not list for part in parts):
            return [canonical_bytes(part, exact=True) for part in parts]
        written = [canonical_bytes(part, exact=False) for part in parts]
        if not self.whole_floats:
            return written
        fixed = [_without_whole_float_endings(text) for text in written]
        if sum(len(text) - len(fixed_text) for text, fixed_text in zip(written, fixed, strict=True)) == 2 * (
            self.whole_floats
        ):
            return fixed
        return [
            canonical_bytes(part, exact=True) if len(text) != len(fixed_text) else text
            for part, text, fixed_text in zip(parts, written, fixed, strict=True)
        ]


def _without_whole_float_endings(text: bytes) -> bytes:
    return text.replace(b".0,", b",").replace(b".0}", b"}").replace(b".0]", b"]")


# How a scanner treats member names: refuse repeats; refuse repeats and note names outside the BMP; or leave them
# unchecked, for a canonical line, whose payload proves it has no repeats by equalling its RFC 8785 text.
_NAMES_UNIQUE, _NAMES_ASTRAL, _NAMES_UNCHECKED = "unique", "astral", "unchecked"


class EventLineParser:
    """Parses lines one at a time; not thread-safe (one per verifier)."""

    def __init__(self) -> None:
        # Set while parsing one line: a float or an object key the fast writer cannot write (``_exact``); a
        # whole-number float, which a copy read with ``_scan_whole_numbers_as_ints`` writes exactly (``_whole``).
        self._exact = False
        self._whole = False
        # For ``parse``: how many whole-number floats the line holds, and whether one is -0.0 (``HashableDocument``).
        self._whole_floats = 0
        self._negative_zero = False
        # A scanner for each kind of line, by how it treats member names (``_NAMES``) and whether the line might hold
        # an integer too long: names are checked for characters outside the BMP, and integers range-checked, only
        # where they can be (a hook costs more than the rest of the parse of an ordinary event's objects and
        # integers). Built when first needed: a service parses one document per parser.
        self._scanners: dict[tuple[str, bool], Callable[[str, int], tuple[Any, int]]] = {}

    def _scanner_for(self, names: str, long_integers: bool) -> Callable[[str, int], tuple[Any, int]]:
        scan = self._scanners.get((names, long_integers))
        if scan is None:
            hooks: dict[str, Any] = {}
            if names != _NAMES_UNCHECKED:
                hooks["object_pairs_hook"] = self._object_checking_names if names == _NAMES_ASTRAL else _unique_object
            scan = self._scanners[names, long_integers] = _scanner(
                parse_float=self._parse_float,
                parse_int=_checked_int if long_integers else None,
                parse_constant=_reject_constant,
                **hooks,
            )
        return scan

    def _parse_float(self, text: str) -> float:
        value = float(text)
        # float_prints_as_jcs, written out: this runs for every float of every line.
        if FAST_FLOAT_MIN <= abs(value) < FAST_FLOAT_MAX and not value.is_integer():
            return value
        if prints_as_integer(value):  # within +-(2**53 - 1), so finite and safe: checked_float would pass it
            self._whole = True
            self._whole_floats += 1
            if value == 0 and math.copysign(1.0, value) < 0:
                self._negative_zero = True
        else:
            checked_float(text, value)
            self._exact = True
        return value

    def _object_checking_names(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            _unique_object(pairs)  # raises, naming the repeated key
        # Code-point order (the C encoder's) equals UTF-16 order (RFC 8785's) unless a key leaves the BMP.
        names = "".join(obj)
        if not names.isascii() and ASTRAL_CHARACTER.search(names) is not None:
            self._exact = True
        return obj

    def _read(self, line: bytes, *, count_brackets: bool = True) -> tuple[str, Any, int, bool]:
        """The line's text and value, how many brackets it has (0 unless ``count_brackets``), and whether it holds a
        surrogate escape. Counting brackets comes with the pass over the bytes that decides whether integers need
        range-checking; without it every integer is checked, which costs less than that pass alone."""
        text = _decoded(line)
        scan, brackets, surrogates = self._prepare(line, text, count_brackets=count_brackets)
        return text, self._scan_whole(scan, text), brackets, surrogates

    def _prepare(
        self, line: bytes, text: str, *, count_brackets: bool = True
    ) -> tuple[Callable[[str, int], tuple[Any, int]], int, bool]:
        """The scanner the line needs, how many brackets it has (0 unless ``count_brackets``) and whether it holds a
        surrogate escape; resets what the float and name hooks learn."""
        shape = line.translate(_SHAPE, _BRACKETS) if count_brackets else b""
        surrogates = line.find(b"\\") >= 0 and SURROGATE_ESCAPE.search(text) is not None
        astral = surrogates or (not line.isascii() and _holds_astral_characters(line))
        names = _NAMES_ASTRAL if astral else _NAMES_UNIQUE
        scan = self._scanner_for(names, not count_brackets or _may_hold_a_long_integer(shape))
        self._exact = self._whole = False
        return scan, len(line) - len(shape) if count_brackets else 0, surrogates

    @staticmethod
    def _scan_whole(scan: Callable[[str, int], tuple[Any, int]], text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except StopIteration as stop:
            raise MalformedJSONError(f"expecting a JSON value at character {stop.value}") from None
        except MalformedJSONError:
            raise
        except (ValueError, RecursionError) as exc:
            raise MalformedJSONError(str(exc)) from None
        if end != len(text):
            raise MalformedJSONError(f"extra data after the JSON value at character {end}")
        return value

    def parse(self, line: bytes, *, caller_bounds_depth: bool = False) -> tuple[Any, bool]:
        """Parse one line (without surrounding whitespace) strictly as I-JSON. Returns the value and whether its
        canonical form needs the exact (slow) canonicalizer rather than ``fast_canonical_text``. With
        ``caller_bounds_depth`` the nesting depth is left unchecked (``check_depth``) for a caller that can bound it
        more cheaply; everything else is checked."""
        document = self.parse_for_hashing(line, caller_bounds_depth=caller_bounds_depth)
        return document.value, document.exact or document.whole_floats > 0

    def parse_for_hashing(self, line: bytes, *, caller_bounds_depth: bool = False) -> HashableDocument:
        """``parse``, returning what ``HashableDocument.canonical_parts`` needs to write parts of the value."""
        self._whole_floats = 0
        self._negative_zero = False
        _, value, brackets, surrogates = self._read(line, count_brackets=not caller_bounds_depth)
        check_value(value, surrogate_escapes=surrogates, many_brackets=brackets > MAX_DEPTH)
        return HashableDocument(value, self._exact or self._negative_zero, self._whole_floats)

    def read_event(self, line: bytes) -> tuple[Envelope | None, Any, bytes | None]:
        """Read one event line (without surrounding whitespace) strictly as I-JSON. A line written as the archive
        writes it (``_envelope``) gives its envelope, already through check 1, its payload and the payload's RFC
        8785 bytes; any other line gives None, the parsed value and the payload's bytes, as ``parse_event``. Raises
        ``MalformedJSONError`` for anything that is not I-JSON."""
        text = _decoded(line)
        head = CANONICAL_HEAD.match(text)
        if head is not None:
            canonical = self._read_canonical(line, text, head)
            if canonical is not None:
                return canonical
        value, payload_jcs = self._parse_event(line, text)
        return None, value, payload_jcs

    def _read_canonical(
        self, line: bytes, text: str, head: re.Match[str]
    ) -> tuple[Envelope, dict[str, Any], bytes] | None:
        """``read_event`` for a line whose envelope begins as the archive writes it: None when anything about it
        leaves a doubt (the general reading then decides, and words any error the same way for every line).

        The payload is parsed without the hook that refuses repeated member names, which costs more than the rest of
        the parse: a payload whose text is the fast writer's text for the value parsed from it repeats no name, since
        that text lists each member of each object once. The fast writer's text is RFC 8785 when no float needs the
        exact writer and no object's names sort differently by UTF-16 code units (then a name holds a character
        outside the BMP and another one from U+E000 to U+FFFF: a line without both has no such pair). The envelope
        members around the payload are read by ``CANONICAL_HEAD`` and ``CANONICAL_TAIL``."""
        shape = line.translate(_SHAPE, _BRACKETS)
        if len(line) - len(shape) > MAX_DEPTH:
            return None
        if not line.isascii() and _holds_astral_characters(line) and (0xEE in line or 0xEF in line):
            return None
        long_integers = shape.find(_SIXTEEN_DIGITS) >= 0 and _long_integer_starts(shape)
        scan = self._scanner_for(_NAMES_UNCHECKED, long_integers)
        self._exact = self._whole = False
        start = head.end()
        try:
            payload, end = scan(text, start)
        except (StopIteration, ValueError, RecursionError):  # MalformedJSONError is a ValueError
            return None
        if self._exact or self._whole:
            return None
        tail = CANONICAL_TAIL.fullmatch(text, end)
        if tail is None:
            return None
        # Compared in place rather than copied out. Equal when it starts there: a JSON object's text ends where its
        # braces balance, so the payload's text cannot go on past a written text it starts with.
        if not text.startswith(fast_canonical_text(payload), start):
            return None
        # Both patterns read ASCII only, so the payload's bytes in the line are the UTF-8 of its text.
        return canonical_envelope(head, payload, tail), payload, line[start : end + len(line) - len(text)]

    def parse_event(self, line: bytes) -> tuple[Any, bytes | None]:
        """Parse one line (without surrounding whitespace) strictly as I-JSON, like ``parse``, and return the value
        with the RFC 8785 bytes of its ``payload`` member: None unless the value is an object whose payload is an
        object. Raises ``MalformedJSONError`` for anything that is not I-JSON, in the payload or elsewhere."""
        return self._parse_event(line, _decoded(line))

    def _parse_event(self, line: bytes, text: str) -> tuple[Any, bytes | None]:
        scan, brackets, surrogates = self._prepare(line, text)
        value = self._scan_whole(scan, text)
        if brackets > MAX_DEPTH:
            check_depth(value)
        payload = value.get("payload") if type(value) is dict else None
        if type(payload) is not dict:
            if surrogates:
                check_tree(value)
            return value, None
        if surrogates:
            _check_envelope_strings(value)
        return value, self._payload_bytes(payload, text, None, surrogates=surrogates)

    def _payload_bytes(self, payload: dict[str, Any], text: str, start: int | None, *, surrogates: bool) -> bytes:
        """RFC 8785 bytes of a payload object just parsed from ``text`` (at ``start``, or as the ``payload`` member
        of the value there when None)."""
        if self._exact:
            if surrogates:
                check_tree(payload)
            return canonical_bytes(payload, exact=True)
        if self._whole:
            if start is None:
                payload = _scan_whole_numbers_as_ints(text, 0)[0]["payload"]
            else:
                payload = _scan_whole_numbers_as_ints(text, start)[0]
        try:
            return fast_canonical_text(payload).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedJSONError(_LONE_SURROGATE) from None


def _decoded(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSONError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _check_envelope_strings(event: dict[str, Any]) -> None:
    """Lone surrogates in an event's member names and in every member but the payload: the strings are encoded
    together, in one call, and only members that are containers are walked."""
    texts = [*event]
    for name, member in event.items():
        if type(member) is str:
            texts.append(member)
        elif name != "payload" and (type(member) is dict or type(member) is list):
            check_tree(member)
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJSONError(_LONE_SURROGATE) from None


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
    document = parse_for_hashing(data, caller_bounds_depth=caller_bounds_depth)
    return document.value, document.exact or document.whole_floats > 0


def parse_for_hashing(data: bytes | str, *, caller_bounds_depth: bool = False) -> HashableDocument:
    """``loads_for_hashing`` for a service that writes several parts of the document (``canonical_parts``)."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:
        raise MalformedJSONError(_LONE_SURROGATE) from None
    return EventLineParser().parse_for_hashing(
        raw.strip(JSON_WHITESPACE.encode()), caller_bounds_depth=caller_bounds_depth
    )
