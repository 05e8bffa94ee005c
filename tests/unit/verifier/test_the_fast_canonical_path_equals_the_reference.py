"""Properties of canonicalization (ELS section 2), and proof that the verifier's fast path computes exactly what the
reference ``canonicalize`` computes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from agentops_verify import (
    EVENT_HASH_FIELDS,
    CanonicalizationError,
    MalformedJSONError,
    ObjectTemplate,
    _jcs,
    canonicalize,
    event_hash,
    event_hash_of_members,
    loads,
    payload_hash,
    verify_lines,
)
from agentops_verify._eventline import EventLineParser, canonical_bytes
from agentops_verify._jcs import (
    MAX_SAFE_INTEGER,
    exact_canonical,
    fast_canonical_text,
    float_prints_as_jcs,
    format_number,
    is_unsafe_integral,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support.chains import build_chain, to_jsonl

# I-JSON values whose canonical form reads back: no integral doubles from 2**53 to 1e21 (they print as integer
# literals beyond the safe range, which the strict loader refuses), no lone surrogates.
_safe_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: not is_unsafe_integral(value))
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | _safe_floats | _text
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=30,
)
# The same without floats: the values the fast encoder handles directly.
json_values_without_floats = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | _text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_canonical_form_is_stable_under_reparsing(value: Any) -> None:
    canonical = canonicalize(value)
    assert canonicalize(loads(canonical)) == canonical


@settings(max_examples=300)
@given(json_values)
def test_canonical_form_reads_back_as_the_same_value(value: Any) -> None:
    reread = loads(canonicalize(value))
    assert _same_json(reread, value)


def _same_json(left: Any, right: Any) -> bool:
    # JCS prints 1.0 as 1, which reads back as an int: numbers compare by value, everything else by structure.
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same_json, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same_json(left[key], right[key]) for key in left)
    return type(left) is type(right) and left == right


@settings(max_examples=500)
@given(json_values_without_floats)
def test_fast_encoder_equals_canonicalize_without_floats_when_keys_are_in_the_bmp(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    if any(ord(character) > 0xFFFF for character in text):
        return  # astral characters go to the exact path (UTF-16 order differs from code-point order)
    assert fast_canonical_text(value).encode("utf-8") == exact_canonical(value)


# Any value, floats, astral keys, huge integers and nesting included: canonicalize picks the fast writer only where it
# gives the exact writer's bytes, and refuses exactly what the exact writer refuses.
_any_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["\U0001f600", "\ufb33", "\ud800", "a\U00010000"])
)
_any_values = st.recursive(
    _any_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(_any_scalars.filter(lambda key: isinstance(key, str)) | st.integers(), children, max_size=4)
    ),
    max_leaves=25,
)


def _nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _outcome(writer: Any, value: Any) -> bytes | str:
    try:
        result: bytes = writer(value)
    except CanonicalizationError:
        return "refused"
    return result


@settings(max_examples=1500)
@given(_any_values)
@example({"\U0001f600": 1, "\ufb33": 2})
@example([1e21, 1.0, -0.0, 1e-7, 0.5])
@example({"deep": _nested_lists(63)})
def test_canonicalize_equals_the_exact_writer_on_any_value(value: Any) -> None:
    assert _outcome(canonicalize, value) == _outcome(exact_canonical, value)


# Floats as agents send them, and the edges around them: whole numbers (1.0, 512.0, -0.0, the largest safe one),
# fractions (prices such as 9.995), huge and tiny doubles (exponent forms), and the whole numbers from 2**53 to 1e21
# that are refused; in nested objects and arrays beside non-ASCII and astral text and lone surrogates.
_agent_floats = (
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER).map(float)
    | st.integers(-2000, 2000).map(float)
    | st.sampled_from([1.0, 0.0, -0.0, 512.0, 9.995, 0.2, float(MAX_SAFE_INTEGER), 2.0**53, 1e20, 1e21, 1e-7, 5e-324])
    | st.floats(allow_nan=False, allow_infinity=False)
)
_agent_scalars = (
    _agent_floats
    | st.integers(-(2**60), 2**60)
    | st.none()
    | st.booleans()
    | st.text(max_size=12)
    | st.sampled_from(["Ça marche 🙂", "日本語", "\U0001f600", "\ud800", "line\nbreak"])
)
_agent_payloads = st.recursive(
    _agent_scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["top_p", "\U0001f600", "\ue000"]), children, max_size=6
        )
    ),
    max_leaves=40,
)


@settings(max_examples=2000)
@given(_agent_payloads)
@example({"parameters": {"temperature": 0.2, "max_tokens": 512.0, "top_p": 1.0}, "note": "Ça 🙂"})
@example({"offers": [{"price_usd": 9.995, "seats": 3.0}, {"price_usd": 523.0}], "zero": -0.0})
@example({"edges": [float(MAX_SAFE_INTEGER), -float(MAX_SAFE_INTEGER), 1e21, 1e-7]})
@example({"unsafe": [1.0, 2.0**53]})
@example({"surrogate": [1.0, "\ud800"]})
@example([1.0, {"\U0001f600": 2.0, "\ue000": 3.0}])
@example((1.0, (2.0, -0.0)))
@example(512.0)
def test_canonicalize_with_whole_number_floats_equals_the_exact_writer(value: Any) -> None:
    assert _outcome(canonicalize, value) == _outcome(exact_canonical, value)


def test_whole_number_floats_are_written_by_the_fast_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Agents send top_p as 1.0 and max_tokens as 512.0: such a payload must not fall back to the pure-Python writer.
    def no_exact_writer(value: Any) -> bytes:
        raise AssertionError("the exact writer was used")

    monkeypatch.setattr(_jcs, "exact_canonical", no_exact_writer)
    payload = {"parameters": {"max_tokens": 512.0, "top_p": 1.0, "temperature": 0.2}, "zero": -0.0, "text": "Ça"}
    assert (
        canonicalize(payload)
        == '{"parameters":{"max_tokens":512,"temperature":0.2,"top_p":1},"text":"Ça","zero":0}'.encode()
    )


def test_canonicalize_never_changes_the_callers_value() -> None:
    # The fast writer is given a copy with whole-number floats as ints; the value the caller holds keeps its floats.
    payload = {"parameters": {"top_p": 1.0, "max_tokens": 512.0}, "offers": [[9.995, 2.0], (1.0,)], "fixed": [0.5]}
    before = repr(payload)
    fixed = payload["fixed"]
    canonicalize(payload)
    assert repr(payload) == before
    assert type(payload["parameters"]["top_p"]) is float  # type: ignore[index]
    assert payload["fixed"] is fixed


def test_a_lone_surrogate_beside_whole_number_floats_is_refused() -> None:
    with pytest.raises(CanonicalizationError, match="lone surrogate"):
        canonicalize({"top_p": 1.0, "note": "\ud800"})


@settings(max_examples=3000)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(0.1)
@example(1e-4)
@example(0.00012345)
@example(123456789012345.6)
@example(9999999999999998.0)
def test_floats_the_fast_path_keeps_print_exactly_as_jcs(value: float) -> None:
    if float_prints_as_jcs(value):
        assert repr(value) == format_number(value)
        assert fast_canonical_text([value]) == "[" + format_number(value) + "]"


# The edges of the whole-number doubles canonicalize refuses: from 2**53 (the first double above MAX_SAFE_INTEGER) up to
# the last double below 1e21, where ES6 switches to the exponent form.
_LAST_BEFORE_EXPONENT_FORM = math.nextafter(1e21, 0.0)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (float(MAX_SAFE_INTEGER), b"9007199254740991"),
        (-float(MAX_SAFE_INTEGER), b"-9007199254740991"),
        (2.0**53, None),
        (-(2.0**53), None),
        (1e20, None),
        (_LAST_BEFORE_EXPONENT_FORM, None),
        (-_LAST_BEFORE_EXPONENT_FORM, None),
        (1e21, b"1e+21"),
        (-1e21, b"-1e+21"),
        (4503599627370495.5, b"4503599627370495.5"),  # below 2**53 a fraction is still exact
    ],
)
def test_whole_number_doubles_from_2_to_the_53_up_to_1e21_are_refused(value: float, canonical: bytes | None) -> None:
    if canonical is None:
        for container in (value, [value], {"k": [value]}):
            with pytest.raises(CanonicalizationError, match=r"^integer [0-9-]+ is outside"):
                canonicalize(container)
        with pytest.raises(MalformedJSONError):  # the text it would have written is refused by the reader
            loads(format_number(value).encode("ascii"))
    else:
        assert canonicalize(value) == canonical
        assert loads(canonical) == value


# An integer of more than 4,300 digits (a factorial an agent's tool computed, say) is one str() refuses to print: the
# canonicalizer must still refuse it as not I-JSON, with its own error, which callers (the SDK) catch.
@pytest.mark.parametrize("container", ["alone", "in-a-list", "in-an-object"])
@pytest.mark.parametrize("integer", [10**5000, -(10**5000), 2**2001], ids=["10**5000", "-10**5000", "2**2001"])
def test_an_integer_too_long_to_print_is_refused_as_not_i_json(integer: int, container: str) -> None:
    value = {"alone": integer, "in-a-list": [1, integer], "in-an-object": {"n": integer}}[container]
    with pytest.raises(CanonicalizationError, match=r"^integer .* is outside"):
        canonicalize(value)
    with pytest.raises(CanonicalizationError):
        exact_canonical(value)


@settings(max_examples=3000)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(2.0**53)
@example(1e20)
@example(1e21)
def test_every_double_canonicalize_writes_reads_back_as_itself(value: float) -> None:
    # Writer and reader agree on every finite double: what canonicalize writes, loads reads back as the same number;
    # what loads refuses, canonicalize refuses too.
    outcome = _outcome(canonicalize, value)
    if outcome == "refused":
        with pytest.raises(MalformedJSONError):
            loads(format_number(value).encode("ascii"))
    else:
        assert isinstance(outcome, bytes)
        assert loads(outcome) == value


def test_floats_outside_the_fast_range_are_sent_to_the_exact_path() -> None:
    for value in (1.0, -0.0, 1e-5, 1e16, 1e21, 5e-324, 2.0**60):
        assert not float_prints_as_jcs(value)


@settings(max_examples=150)
@given(json_values)
def test_line_parser_and_canonical_bytes_agree_with_the_reference(value: Any) -> None:
    # Whatever the producer's spacing and escaping, the parser plus canonical_bytes gives canonicalize's bytes.
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), canonicalize(value).decode("utf-8")):
        parsed, exact = EventLineParser().parse(text.encode("utf-8"))
        assert canonical_bytes(parsed, exact=exact) == canonicalize(value)


def test_escaped_astral_keys_sort_by_utf16_on_the_exact_path() -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (surrogates D83D DE00 come first) but before it by code point.
    text = b'{"\\ue000":1,"\\ud83d\\ude00":2}'
    parsed, exact = EventLineParser().parse(text)
    assert exact
    assert canonical_bytes(parsed, exact=exact) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_verifier_event_hash_matches_the_reference_event_hash() -> None:
    # The verifier formats the seven hashed fields itself; the chain built with event_hash() must verify.
    events = build_chain(12, seal=None)
    assert all(event["event_hash"] == event_hash(event) for event in events)
    assert all(event["payload_hash"] == payload_hash(event["payload"]) for event in events)
    assert verify_lines(to_jsonl(events).splitlines()).passed


@pytest.mark.parametrize("text", [b'{"x":NaN}', b'{"x":Infinity}', b'{"x":1e999}', b'{"x":-1e999}'])
def test_nan_and_infinity_never_reach_the_encoder(text: bytes) -> None:
    with pytest.raises(MalformedJSONError):
        EventLineParser().parse(text)


# Member names with the characters a template must not take literally: "%" (the template is %-formatted), quotes,
# controls, and astral characters (UTF-16 order differs from code-point order).
_member_names = st.text(st.characters(exclude_categories=["Cs"]), max_size=6) | st.sampled_from(
    ["%", "%s", "%%b", '"', "\\", "\x00", "\U0001f600", "\ue000"]
)


@settings(max_examples=500)
@given(st.dictionaries(_member_names, json_values, min_size=1, max_size=8))
@example({"%s": 1, "%%": [2], "\U0001f600": "x", "\ue000": None})
def test_object_template_writes_the_canonical_object(value: dict[str, Any]) -> None:
    template = ObjectTemplate(value)
    assert template.fill({name: canonicalize(member) for name, member in value.items()}) == canonicalize(value)


def test_object_template_ignores_other_members_and_requires_its_own() -> None:
    template = ObjectTemplate(["b", "a"])
    assert template.fill({"a": b"1", "b": b'"x"', "c": b"3"}) == b'{"a":1,"b":"x"}'
    assert ObjectTemplate(["only"]).fill({"only": b"null"}) == b'{"only":null}'
    with pytest.raises(KeyError):
        template.fill({"a": b"1"})
    with pytest.raises(ValueError, match="at least one member"):
        ObjectTemplate([])


def test_event_hash_from_members_equals_the_reference() -> None:
    for event in build_chain(6, seal=None):
        members = {name: canonicalize(event[name]) for name in event}  # every member: the extra ones are ignored
        assert event_hash_of_members(members) == event_hash(event) == event["event_hash"]
        assert set(EVENT_HASH_FIELDS) < set(members)


# -- the event-line parser (``EventLineParser.parse_event``): whatever the producer wrote, the payload's bytes are
# exactly what the exact writer gives, while the C scanner and C encoder do the work on ordinary content.

_whole_number_floats = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER).map(float)  # 1.0, 0.0, -0.0 included
_any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["Ça dépend : l’échéance 🙂", "\U0001f600", "\ue000", '\x00\x1f"\\', "東京", "👍🏽"]
)
_payload_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | _safe_floats
    | _whole_number_floats
    | _any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_any_text, children, max_size=4),
    max_leaves=20,
)
_payloads = st.dictionaries(_any_text, _payload_values, max_size=6)
# How producers write a line: canonical (as the service archives it), Python's json.dumps (spaces, insertion order,
# 1.0, \uXXXX escapes with surrogate pairs), the same without escaping, and whitespace before every colon.
_WRITERS: dict[str, Any] = {
    "canonical": canonicalize,
    "json.dumps": lambda event: json.dumps(event).encode(),
    "json.dumps unescaped": lambda event: json.dumps(event, ensure_ascii=False).encode(),
    "spaced": lambda event: json.dumps(event, ensure_ascii=False, separators=(" , ", " :\t")).encode(),
}


@settings(max_examples=300)
@given(_payloads, st.sampled_from(sorted(_WRITERS)))
@example({"\U0001f600": 1, "\ue000": 2, "top_p": 1.0}, "json.dumps")  # astral key: UTF-16 order on the exact path
@example({"\U00100000": 1, "\uffff": [{"\U00040000": 2, "\ue000": 3}]}, "canonical")  # F4 and F1 lead bytes
@example({"prices": [[9.995, 2], [19.99, 1.0]], "temperature": 0.0, "note": "Ça 🙂"}, "canonical")
@example({"prices": [[9.995, 2], [19.99, 1.0]], "temperature": -0.0, "note": "Ça 🙂"}, "json.dumps")
@example({"tiny": [1e-7, 5e-324, 1e21, 1.0]}, "spaced")
def test_event_line_parser_gives_the_exact_writers_payload_bytes(payload: dict[str, Any], writer: str) -> None:
    event = {"event_id": "e-1", "sequence_number": 7, "payload": payload}
    parsed, payload_jcs = EventLineParser().parse_event(_WRITERS[writer](event))
    assert payload_jcs == exact_canonical(payload)
    assert _same_json(parsed, json.loads(canonicalize(event)))


def test_whole_number_floats_hash_as_integers_but_stay_floats_for_the_checks() -> None:
    line = b'{"sequence_number": 5.0, "payload": {"top_p": 1.0, "t": [0.0, -0.0, 2.5, 1E2]}}'
    event, payload_jcs = EventLineParser().parse_event(line)
    assert payload_jcs == b'{"t":[0,0,2.5,100],"top_p":1}'
    assert type(event["sequence_number"]) is float
    assert [type(value) for value in event["payload"]["t"]] == [float] * 4


def _whole_number_parameters(sequence_number: int) -> tuple[str, dict[str, Any]]:
    parameters = {"temperature": 0.0, "top_p": 1.0, "price": [[9.995, 1.0]]}
    return "MODEL_REQUEST", {"model": "m", "messages": [{"content": "Ça dépend 🙂"}], "parameters": parameters}


def test_a_producer_formatted_chain_with_whole_number_floats_verifies() -> None:
    events = build_chain(8, payload_factory=_whole_number_parameters)
    assert verify_lines([json.dumps(event).encode() for event in events]).passed


def test_a_sequence_number_written_as_a_float_is_still_refused() -> None:
    events = build_chain(8, seal=None, payload_factory=_whole_number_parameters)
    lines = [json.dumps(event).encode() for event in events]
    lines[3] = lines[3].replace(b'"sequence_number": 3,', b'"sequence_number": 3.0,')
    violation = verify_lines(lines).first_violation
    assert violation is not None
    assert (violation.type, violation.context["field"]) == ("INVALID_FIELD", "sequence_number")


_INTEGER_PLACES = [
    "%s",
    "[%s]",
    '{"a":%s}',
    '{"a" :\t%s}',
    "[1,%s]",
    "[1,\r%s]",
    "[\n-0,%s]",
    '{"a":[ %s ]}',
    '{"h":"ab1234567890123456cd","s":"0000000000000000","n":%s}',
    '{"payload":{"deep":[[{"k":%s}]]}}',
]


@settings(max_examples=500)
@given(st.integers(-(10**30), 10**30), st.sampled_from(_INTEGER_PLACES))
@example(2**53, "[%s]")
@example(2**53 - 1, "[%s]")
@example(-(2**53), '{"a" :\t%s}')
@example(-(2**53) + 1, "%s")
@example(10**16, '{"payload":{"deep":[[{"k":%s}]]}}')
@example(9999999999999999, "[1,\r%s]")
def test_event_line_parser_refuses_exactly_the_integers_beyond_the_limit(number: int, place: str) -> None:
    line = (place % number).encode()
    for parse in (EventLineParser().parse_event, EventLineParser().parse):
        if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            parse(line)
        else:
            with pytest.raises(MalformedJSONError, match="outside"):
                parse(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"payload":{"a":"\\ud800"}}',
        b'{"payload":{"\\udc00":1}}',
        b'{"payload":{"a":["x",{"b":"\\udbff"}]}}',
        b'{"payload":{"a":1.0,"b":"x\\ud800"}}',  # whole-number float: the copy read with integers is written
        b'{"payload":{"a":1e-7,"b":"\\ud800"}}',  # a float only the exact writer writes
        b'{"payload":{"\\ud83d\\ude00":"\\ude00"}}',  # an astral key: the exact writer
        b'{"source_sdk_ver":"\\ud800","payload":{}}',
        b'{"\\ud800":1,"payload":{}}',
        b'{"extra":{"k":["\\ude00"]},"payload":{}}',
        b'{"payload":"\\ud800"}',
        b'["\\ud800"]',
    ],
)
def test_a_lone_surrogate_anywhere_in_an_event_line_is_refused(line: bytes) -> None:
    with pytest.raises(MalformedJSONError, match="lone surrogate"):
        EventLineParser().parse_event(line)


def test_an_escaped_backslash_before_u_is_not_a_surrogate_escape() -> None:
    event, payload_jcs = EventLineParser().parse_event(b'{"payload":{"a":"\\\\ud800","b":"\\ud83d\\ude00"}}')
    assert payload_jcs == '{"a":"\\\\ud800","b":"\U0001f600"}'.encode()
    assert event["payload"]["a"] == "\\ud800"


def test_deep_nesting_in_an_event_line_is_refused() -> None:
    with pytest.raises(MalformedJSONError, match="nesting deeper than 64"):
        EventLineParser().parse_event(b'{"payload":{"a":' + b"[" * 64 + b"]" * 64 + b"}}")
    assert EventLineParser().parse_event(b'{"payload":{"a":' + b"[" * 62 + b"]" * 62 + b"}}")[1] is not None
