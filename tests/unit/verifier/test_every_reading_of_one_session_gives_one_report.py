"""Every way the verifier reads one session gives one report (ELS sections 2, 7 and 9), checked by differential
testing: the fast line reader (``add_line``: C scanner and C encoder, the exact writer only where the parse says so)
against ``add_event`` on the parsed events (the exact canonicalizer); a JSON Lines file verified as bytes, as a file
in one process and in several (each worker's segment handed over), as a JSON array and as an export document.

The sessions hold what sends the fast path elsewhere - whole-number floats, floats in exponent form, long integers,
member names outside the Basic Multilingual Plane beside U+E000-U+FFFF ones, U+2028, control characters - and LOG_DROP
counts, clocks going backwards and legacy schema versions, whose warnings the parallel run must list as a serial run
does. Each is written every way JSON allows: escapes (``\\/``, ``\\u0041``, surrogate pairs), spacing, member order,
other spellings of the same number, CRLF and blank lines. Text that is not I-JSON (duplicate keys at any level, lone
surrogates, numbers beyond the safe range or a double's, nesting beyond 64, bytes that are not UTF-8) must fail
``MALFORMED_JSON`` on every path, at the event that holds it.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from agentops_verify import (
    MALFORMED_JSON,
    Report,
    _files,
    _parallel,
    canonicalize,
    verify_bytes,
    verify_events,
    verify_file,
    verify_lines,
)
from agentops_verify._chain import SegmentResult
from agentops_verify._eventline import EventLineParser
from agentops_verify._jcs import MAX_SAFE_INTEGER, exact_canonical, is_unsafe_integral
from agentops_verify._parallel import _finished
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.chains import Event, build_chain, rehash_from, reseal
from tests.support.keys import default_signer
from tests.tamper.support import trust_for
from tests.tamper.test_export_claims_are_recomputed import export_document

_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_TRUST = trust_for(default_signer())

# -- the values: I-JSON, with what the fast writer cannot write itself -----------------------------------------------

_FLOATS = (
    st.sampled_from(
        [
            *(1.0, -0.0, 0.0, 512.0, 1e-7, 1e-6, 1e-4, 1e21, -1e21, 1e22, 5e-324, 1.5e300, 9.995, 0.1),
            *(float(MAX_SAFE_INTEGER), -float(MAX_SAFE_INTEGER), 4503599627370495.5, 123456789012345.6),
        ]
    )
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER).map(float)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: not is_unsafe_integral(value))
)
_INTEGERS = st.sampled_from([0, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 10**15]) | st.integers(
    -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER
)
_UNUSUAL_TEXT = ["\U0001f600", "\ue000", "\uffff", "\U00010000", "\U0010ffff", "\ufb33", "\u2028", "\u2029", "\ufeff"]
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=6) | st.sampled_from(
    [*_UNUSUAL_TEXT, "\x00\x1f\x7f", "a/b</script>", '"\\', "\u0085", "Ça 🙂"]
)
_MEMBER_NAMES = st.text(st.characters(exclude_categories=["Cs"]), max_size=4) | st.sampled_from(
    [*_UNUSUAL_TEXT, "top_p", "/", "\x00", "A"]
)
_VALUES = st.recursive(
    st.none() | st.booleans() | _INTEGERS | _FLOATS | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_MEMBER_NAMES, children, max_size=4),
    max_leaves=16,
)


_SEALS: tuple[Literal["signed", "unsigned"] | None, ...] = ("signed", "unsigned", None)


@st.composite
def _sessions(draw: st.DrawFn) -> list[Event]:
    """A valid session (SESSION_START, ordinary events, SESSION_END, maybe a seal) whose TOOL_CALL arguments hold the
    values above, with LOG_DROPs (their counts right or wrong), clocks going backwards and legacy schema versions."""
    kinds = draw(st.lists(st.sampled_from(["TOOL_CALL", "LOG_DROP", "ANNOTATION"]), min_size=2, max_size=7))
    arguments = [draw(st.dictionaries(_MEMBER_NAMES, _VALUES, max_size=4)) for _ in kinds]
    drops = [draw(st.tuples(st.integers(-1, 3), st.integers(-1, 12))) for _ in kinds]

    def payload(sequence_number: int) -> tuple[str, dict[str, Any]]:
        kind = kinds[sequence_number - 1]
        if kind == "TOOL_CALL":
            return kind, {"tool_name": "t", "tool_id": "c-1", "args": copy.deepcopy(arguments[sequence_number - 1])}
        if kind == "LOG_DROP":
            dropped, cumulative = drops[sequence_number - 1]
            return kind, {"dropped_count": dropped, "cumulative_drops": cumulative, "drop_reason": "queue full"}
        return kind, {"annotator_id": "r", "annotation_type": "flag", "content": f"note {sequence_number}"}

    seal = draw(st.sampled_from(_SEALS))
    events = build_chain(len(kinds) + 2, seal=seal, payload_factory=payload)
    earlier = {index for index in range(1, len(kinds) + 1) if draw(st.booleans())}
    for index in earlier:  # an hour before the event preceding it
        events[index]["timestamp_wall"] = "2026-01-01T11:00:00.5Z"
    if earlier:
        events = rehash_from(events, min(earlier))
        if seal is not None:
            events = reseal(events, default_signer() if seal == "signed" else None)
    for index in draw(st.sets(st.integers(0, len(events) - 1))):
        events[index]["schema_ver"] = "v0.5"  # not hashed
    return events


# -- the writer: the same JSON value in any of the spellings JSON allows ---------------------------------------------

_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


class _Writer:
    """Writes JSON text with choices drawn from ``rng``: spacing (no LF inside a JSON Lines line), member order,
    escapes, and, below a member named ``args``, other spellings of each number (``5`` as ``5.0`` or ``5E0``,
    ``0.25`` as ``25e-2``). ``inject`` puts raw text as the first member of the object it names (by identity).

    Half the writers write RFC 8785 text instead, as the archive does (``inject`` still puts its text first): the
    line reader reads such a line by its envelope's text and parses only the payload (``read_event``)."""

    def __init__(self, rng: random.Random, *, newlines: bool = False, canonical: bool | None = None) -> None:
        self._rng = rng
        self._spaces = [" ", "\t", "\r", "  "] + (["\n", "\r\n"] if newlines else [])
        self.inject: tuple[dict[str, Any], str] | None = None
        self._canonical = rng.random() < 0.5 if canonical is None else canonical

    def write(self, value: Any, *, free_numbers: bool = False) -> str:
        if self._canonical and not isinstance(value, (dict, list)):
            return canonicalize(value).decode("utf-8")
        if value is None or value is True or value is False:
            return {None: "null", True: "true", False: "false"}[value]
        if isinstance(value, int):
            return self._integer(value) if free_numbers else str(value)
        if isinstance(value, float):
            return self._float(value) if free_numbers else repr(value)
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, list):
            items = [self._space() + self.write(item, free_numbers=free_numbers) + self._space() for item in value]
            return "[" + ",".join(items) + "]" if items else "[" + self._space() + "]"
        members = list(value.items())
        if self._canonical:  # RFC 8785 section 3.2.3: by the names' UTF-16 code units
            members.sort(key=lambda member: member[0].encode("utf-16-be"))
        else:
            self._rng.shuffle(members)
        written = [
            self._space()
            + self._string(name)
            + self._space()
            + ":"
            + self._space()
            + self.write(member, free_numbers=free_numbers or name == "args")
            + self._space()
            for name, member in members
        ]
        if self.inject is not None and self.inject[0] is value:
            written.insert(0, self.inject[1])
        return "{" + ",".join(written) + "}" if written else "{" + self._space() + "}"

    def _space(self) -> str:
        return "" if self._canonical or self._rng.random() < 0.7 else self._rng.choice(self._spaces)

    def _string(self, text: str) -> str:
        if self._canonical:
            return canonicalize(text).decode("utf-8")
        out = ['"']
        for character in text:
            code = ord(character)
            if character in _SHORT_ESCAPES and (code >= 0x20 or self._rng.random() < 0.5):
                out.append(_SHORT_ESCAPES[character])
            elif code < 0x20 or self._rng.random() < 0.15:
                out.append(self._escaped(character))
            elif character == "/" and self._rng.random() < 0.5:
                out.append("\\/")
            else:
                out.append(character)
        out.append('"')
        return "".join(out)

    def _escaped(self, character: str) -> str:
        code = ord(character)
        units = [code] if code <= 0xFFFF else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
        return "".join(self._rng.choice(["\\u%04x", "\\u%04X"]) % unit for unit in units)

    def _integer(self, value: int) -> str:
        if self._rng.random() < 0.7:
            return str(value)
        return self._rng.choice([f"{value}.0", f"{value}E0", f"{value}e+0", f"{value}.000e-0"])

    def _float(self, value: float) -> str:
        """The same double, the decimal point moved and the exponent adjusted (exactly the same decimal value)."""
        text = repr(value)
        sign = "-" if text.startswith("-") else ""
        mantissa, _, exponent_text = text.lstrip("-").partition("e")
        whole, _, fraction = mantissa.partition(".")
        digits = (whole + fraction).lstrip("0") or "0"
        exponent = int(exponent_text or "0") - len(fraction)  # value = digits * 10**exponent
        if self._rng.random() < 0.3:
            return text.replace("e", "E")
        point = self._rng.randint(1, len(digits))
        padding = "0" * self._rng.randint(0, 2)
        shown_exponent = exponent + len(digits) - point
        marker = self._rng.choice(["e", "E", "e+"]) if shown_exponent >= 0 else self._rng.choice(["e", "E"])
        return f"{sign}{digits[:point]}.{digits[point:]}{padding}0{marker}{shown_exponent}"


def _jsonl(writer: _Writer, events: list[Event], rng: random.Random) -> tuple[bytes, list[int]]:
    """The session as JSON Lines with LF or CRLF, blank and whitespace-only lines, the last line end there or not;
    and each event's line number."""
    end = rng.choice([b"\n", b"\r\n"])
    out: list[bytes] = []
    numbers = []
    for event in events:
        while rng.random() < 0.15:
            out.append(rng.choice([b"", b" ", b"\t\r"]) + end)
        numbers.append(len(out) + 1)
        out.append(writer.write(event).encode("utf-8", "surrogateescape") + end)
    while rng.random() < 0.15:
        out.append(rng.choice([b"", b" ", b"\t\r"]) + end)
    data = b"".join(out)
    return data.removesuffix(end) if rng.random() < 0.2 else data, numbers


# -- the paths -------------------------------------------------------------------------------------------------------


def _wait_for_the_worker(inbox: _parallel._Inbox, chunk: int) -> SegmentResult | None:
    while chunk not in inbox.finished:
        inbox.collect()
        time.sleep(0.001)
    return _finished(inbox, chunk)


def _comparable(report: Report) -> dict[str, Any]:
    reported = report.to_dict()
    for member in ("source", "unverified_metadata"):
        reported.pop(member, None)
    return reported


def _jsonl_reports(data: bytes, tmp_path: Path) -> dict[str, dict[str, Any]]:
    path = tmp_path / "session.jsonl"
    path.write_bytes(data)
    reports = {
        "add_line": verify_lines(data.split(b"\n"), trust=_TRUST),
        "bytes": verify_bytes(data, trust=_TRUST),
        "file": verify_file(path, trust=_TRUST),
    }
    with pytest.MonkeyPatch.context() as patch:  # every file goes to the workers, and their results are taken over
        patch.setattr(_files, "PARALLEL_MIN_BYTES", 1)
        patch.setattr(_parallel, "_finished", _wait_for_the_worker)
        patch.setattr(_parallel, "_MIN_CHUNKS_PER_PROCESS", 1)  # segments of several events, not one each
        reports["file in 3 processes"] = verify_file(path, trust=_TRUST, workers=3)
    return {name: _comparable(report) for name, report in reports.items()}


def _document_reports(writer: _Writer, events: list[Event], inject: Callable[[Any], None]) -> dict[str, Report]:
    """The session as a JSON array and as an export document, each written by ``writer`` (newlines allowed) after
    ``inject`` has chosen what to put into the copy of the events each holds."""
    array = copy.deepcopy(events)
    inject(array)
    reports = {"array": verify_bytes(writer.write(array).encode("utf-8", "surrogateescape"), trust=_TRUST)}
    document = export_document(events)
    document["events"] = copy.deepcopy(events)
    inject(document["events"])
    reports["export"] = verify_bytes(writer.write(document).encode("utf-8", "surrogateescape"), trust=_TRUST)
    return reports


# -- the properties --------------------------------------------------------------------------------------------------


@_SETTINGS
@given(session=_sessions(), seed=st.integers(0, 2**32))
def test_one_session_written_any_way_gives_one_report_on_every_path(
    session: list[Event], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = random.Random(seed)  # the writer's choices: a seed shrinks better than a stream of draws
    reference = _comparable(verify_events(copy.deepcopy(session), trust=_TRUST))
    assert reference["violations"] == []
    data, _ = _jsonl(_Writer(rng), session, rng)
    for path, report in _jsonl_reports(data, tmp_path_factory.mktemp("session")).items():
        assert report == reference, path
    documents = _document_reports(_Writer(rng, newlines=True), session, lambda events: None)
    for path, document_report in documents.items():
        assert _comparable(document_report) == reference, path


def _containers(value: Any, depth: int = 0) -> list[tuple[dict[Any, Any], int]]:
    """Every object in ``value`` with its nesting depth (``value`` itself at ``depth``)."""
    found: list[tuple[dict[Any, Any], int]] = []
    if isinstance(value, dict):
        found.append((value, depth))
        for member in value.values():
            found.extend(_containers(member, depth + 1))
    elif isinstance(value, list):
        for item in value:
            found.extend(_containers(item, depth + 1))
    return found


# Where a trap goes: which event (a fraction of the session's length), and which object in it (a fraction of
# ``_containers``: the envelope, the payload and the objects inside it).
_WHERE = st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True))

# Members that are not I-JSON, as the text of one object member; "{deep}" becomes arrays nested just past 64 levels.
# Bytes that are not UTF-8 are written as surrogateescape characters (U+DC80-U+DCFF stand for bytes 80-FF).
_NOT_I_JSON = {
    "duplicate key": '"q":1,"q":1',
    "duplicate key whose dropped copy is longer": '"q":"a much longer first copy","q":2',
    "duplicate key spelled with an escape": '"q":1,"\\u0071":1',
    "duplicate astral key, escaped and literal": '"\\ud83d\\ude00":1,"\U0001f600":1',
    "lone high surrogate": '"s":"a\\ud800b"',
    "lone low surrogate": '"s":"\\udc00"',
    "surrogates in the wrong order": '"s":"\\ude00\\ud83d"',
    "high surrogate after a pair": '"s":"\\ud83d\\ude00\\ud83d"',
    "lone surrogate in a member name": '"\\udbff":1',
    "2**53": '"n":9007199254740992',
    "minus 2**53 in an array": '"n":[1,-9007199254740992]',
    "a 31-digit integer": '"n":-1234567890123456789012345678901',
    "an integer of 5,000 digits": '"n":' + "9" * 5000,
    "2**53 as a double": '"n":9007199254740992.0',
    "1e20": '"n":1E20',
    "1e400": '"n":1e400',
    "minus 1e400": '"n":-1e400',
    "NaN": '"n":NaN',
    "Infinity": '"n":Infinity',
    "minus Infinity": '"n":-Infinity',
    "nesting past 64": '"d":{deep}',
    "raw control character": '"s":"a\x01b"',
    "byte that starts no UTF-8 character": '"s":"\udcff"',
    "overlong UTF-8": '"s":"\udcc0\udcaf"',
    "UTF-8 of a surrogate": '"s":"\udced\udca0\udc80"',
    "truncated UTF-8": '"s":"\udce2\udc82"',
}


@_SETTINGS
@given(
    session=_sessions(),
    seed=st.integers(0, 2**32),
    trap=st.sampled_from(sorted(_NOT_I_JSON)),
    where=_WHERE,
)
@example(session=build_chain(4), seed=1, trap="duplicate key", where=(0.5, 0.0))
def test_text_that_is_not_i_json_fails_as_malformed_json_on_every_path(
    session: list[Event], seed: int, trap: str, where: tuple[float, float], tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = random.Random(seed)
    position, place = where
    index = int(position * len(session))  # the event that holds the trap
    places = _containers(session[index])  # the envelope, the payload, and the objects in it

    def trap_in(events: list[Event]) -> tuple[dict[str, Any], str]:
        container, depth = _containers(events[index])[int(place * len(places))]
        return container, _NOT_I_JSON[trap].replace("{deep}", "[" * (64 - depth) + "]" * (64 - depth))

    line_writer = _Writer(rng)
    line_writer.inject = trap_in(session)
    data, line_numbers = _jsonl(line_writer, session, rng)
    reports = _jsonl_reports(data, tmp_path_factory.mktemp("session"))
    reference = reports["add_line"]
    assert [(found["type"], found["event_sequence"]) for found in reference["violations"]] == [(MALFORMED_JSON, index)]
    assert reference["violations"][0]["context"] == {"line": line_numbers[index]}
    assert reference["event_count"] == len(session)
    for path, report in reports.items():
        assert report == reference, path
    writer = _Writer(rng, newlines=True)
    documents = _document_reports(writer, session, lambda events: setattr(writer, "inject", trap_in(events)))
    for path, document_report in documents.items():
        assert document_report.status == "FAIL", path
        assert document_report.violations[0].type == MALFORMED_JSON, path


@_SETTINGS
@given(payload=st.dictionaries(_MEMBER_NAMES, _VALUES, max_size=6), seed=st.integers(0, 2**32))
def test_the_line_reader_gives_the_exact_writers_payload_bytes_however_the_line_is_written(
    payload: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    # The payload's numbers are respelled too (it sits under "args"): the canonical bytes depend on the values only.
    event = {"event_id": "e-1", "sequence_number": 7.0, "payload": {"args": payload}}
    line = _Writer(rng, canonical=False).write(event).encode("utf-8")
    parsed, payload_jcs = EventLineParser().parse_event(line)
    assert payload_jcs == exact_canonical({"args": payload})
    assert type(parsed["sequence_number"]) is float  # the envelope keeps what was written, for its type checks


# What json.loads gives (it reads NaN, Infinity and integers of any size) or a Python caller builds, that I-JSON
# refuses: add_event, the reader of parsed events, fails it as the line reader fails its text.
_PARSED_NOT_I_JSON: dict[str, Any] = {
    "NaN": float("nan"),
    "Infinity": float("inf"),
    "minus Infinity": float("-inf"),
    "2**53": 2**53,
    "minus 2**53": -(2**53),
    "1e20": 1e20,
    "10**30": 10**30,
    "an integer of 5,000 digits": 10**5000,
    "lone surrogate": "a\ud800",
    "lone surrogate in a list": ["\udfff"],
}


@_SETTINGS
@given(
    session=_sessions(),
    trap=st.sampled_from([*sorted(_PARSED_NOT_I_JSON), "member name that is not a string"]),
    where=_WHERE,
)
def test_a_parsed_value_that_is_not_i_json_fails_as_malformed_json_as_its_text_does(
    session: list[Event], trap: str, where: tuple[float, float]
) -> None:
    position, place = where
    index = int(position * len(session))
    containers = _containers(session[index])
    container, _ = containers[int(place * len(containers))]
    if trap == "member name that is not a string":
        container[7] = "seven"
    else:
        container["trap"] = _PARSED_NOT_I_JSON[trap]
    parsed = verify_events(session, trust=_TRUST).violations[0]
    assert (parsed.type, parsed.event_sequence, parsed.context) == (MALFORMED_JSON, index, {"line": index + 1})
    # json.dumps writes the name 7 as the string "7", and refuses to print 5,000 digits.
    if trap not in ("member name that is not a string", "an integer of 5,000 digits"):
        read = verify_lines([json.dumps(event).encode("utf-8") for event in session], trust=_TRUST).violations[0]
        assert (read.type, read.event_sequence, read.context) == (parsed.type, parsed.event_sequence, parsed.context)


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("last_level", [63, 64])  # the envelope is level 1: 64 levels are allowed, 65 are not
def test_nesting_at_the_limit_gets_one_report_on_every_json_lines_path(
    last_level: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The envelope, payload and "args" take three levels; the arrays under "d" the rest. (A JSON array or an export
    # document adds its own levels around each event, so only the JSON Lines paths are compared here.)
    deep = {"d": _nested(last_level - 3)}
    session = build_chain(4, payload_factory=lambda _: ("TOOL_CALL", {"tool_name": "t", "tool_id": "c", "args": deep}))
    data, _ = _jsonl(_Writer(random.Random(last_level)), session, random.Random(last_level))
    reference = _comparable(verify_events(copy.deepcopy(session), trust=_TRUST))
    assert reference["violations"] == []
    for path, report in _jsonl_reports(data, tmp_path_factory.mktemp("session")).items():
        assert report == reference, path


@pytest.mark.parametrize("index", [0, 2])
def test_a_byte_order_mark_fails_as_malformed_json_on_every_path(
    index: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # RFC 8259 section 8.1: JSON text sent between systems carries no BOM; U+FEFF is not JSON whitespace either.
    session = build_chain(4)
    rng = random.Random(index)
    data, line_numbers = _jsonl(_Writer(rng), session, rng)
    lines = data.split(b"\n")
    lines[line_numbers[index] - 1] = b"\xef\xbb\xbf" + lines[line_numbers[index] - 1]
    reports = _jsonl_reports(b"\n".join(lines), tmp_path_factory.mktemp("session"))
    reference = reports["add_line"]
    assert [(found["type"], found["event_sequence"]) for found in reference["violations"]] == [(MALFORMED_JSON, index)]
    for path, report in reports.items():
        assert report == reference, path
    if index == 0:
        for shape, document in (("array", session), ("export", export_document(session))):
            written = b"\xef\xbb\xbf" + _Writer(rng, newlines=True).write(document).encode("utf-8")
            assert verify_bytes(written, trust=_TRUST).violations[0].type == MALFORMED_JSON, shape
