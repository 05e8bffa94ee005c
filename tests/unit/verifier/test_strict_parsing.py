"""The strict I-JSON parsers (``loads``, ``loads_for_hashing``): what they refuse, and the writer hint they give."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentops_verify import (
    MalformedJSONError,
    canonical_bytes,
    canonicalize,
    check_depth,
    loads,
    loads_for_hashing,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def _value_of_loads_for_hashing(text: str) -> Any:
    return loads_for_hashing(text)[0]


PARSERS = [loads, _value_of_loads_for_hashing]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _batch_around(inner: str) -> str:
    """A document with far more than 64 brackets in total but shallow everywhere except ``inner``."""
    shallow = ",".join('{"a":[1,{"b":2}]}' for _ in range(40))
    return '{"events":[' + shallow + "," + inner + "]}"


@pytest.mark.parametrize("parse", PARSERS)
def test_deep_nesting_hidden_among_many_shallow_objects_is_refused(parse: Any) -> None:
    # 2 levels of envelope + 63 = 65 levels: one too many.
    with pytest.raises(MalformedJSONError, match="nesting deeper than 64"):
        parse(_batch_around(_nested(63)))


def test_a_caller_that_bounds_depth_itself_gets_every_other_check() -> None:
    deep = _batch_around(_nested(63))
    value, _ = loads_for_hashing(deep, caller_bounds_depth=True)  # depth left to the caller...
    with pytest.raises(MalformedJSONError, match="nesting deeper than 64"):
        check_depth(value)  # ...which finds it
    for hostile in ('{"a":1,"a":2}', '{"a":NaN}', '{"a":9007199254740992}', '["\\ud800"]', "[1e400]"):
        with pytest.raises(MalformedJSONError):
            loads_for_hashing(hostile, caller_bounds_depth=True)


@pytest.mark.parametrize("parse", PARSERS)
def test_nesting_of_exactly_64_levels_is_accepted(parse: Any) -> None:
    assert parse(_batch_around(_nested(62)))["events"][-1] is not None


@pytest.mark.parametrize("parse", PARSERS)
def test_escaped_lone_surrogate_in_a_large_document_is_refused(parse: Any) -> None:
    with pytest.raises(MalformedJSONError, match="lone surrogate"):
        parse(_batch_around('"\\ud800"'))


@pytest.mark.parametrize("parse", PARSERS)
def test_escaped_surrogate_pair_is_an_ordinary_character(parse: Any) -> None:
    assert parse('{"k":"\\ud83d\\ude00"}') == {"k": "\U0001f600"}


def test_literal_lone_surrogate_in_a_str_input_is_refused() -> None:
    for parse in PARSERS:
        with pytest.raises(MalformedJSONError):
            parse('{"k":"\ud800"}')


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ('{"b":1,"a":"x","c":[true,null,0.5]}', False),
        ('{"a":1.0}', True),  # ES6 writes 1, repr 1.0
        ('{"a":1e-7}', True),
        ('{"\\ud83d\\ude00":1,"\\ufb33":2}', True),  # astral key: UTF-16 order differs from code points
        ('{"\U0001f600":1,"\ufb33":2}', True),
    ],
)
def test_writer_hint_names_the_values_the_fast_writer_cannot_handle(text: str, exact: bool) -> None:
    value, needs_exact = loads_for_hashing(text.encode())
    assert needs_exact is exact
    assert canonical_bytes(value, exact=needs_exact) == canonicalize(json.loads(text))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"n":9007199254740991}', 2**53 - 1),  # 16 digits, in range
        ('{"n":-9007199254740991}', -(2**53 - 1)),
        ('{"n":999999999999999}', 999_999_999_999_999),  # 15 digits: never checked, always in range
        ('{"s":"12345678901234567890","n":1}', 1),  # a long digit run inside a string only
    ],
)
def test_integers_up_to_the_limit_are_read_exactly(text: str, value: int) -> None:
    for parsed in (loads(text), loads_for_hashing(text)[0], loads_for_hashing(text.encode())[0]):
        assert parsed.get("n") == value


@settings(max_examples=400)
@given(
    st.integers(min_value=2**53, max_value=10**30) | st.integers(min_value=-(10**30), max_value=-(2**53)),
    # Right after brackets too, which the line reader drops before it looks for long runs of digits.
    st.sampled_from(
        ['{"a":%s}', '[1,"x",%s]', '{"deep":[[{"k":%s}]]}', '[%s,"1234"]', "[[[%s]]]", '{"a":[%s]}', '{"a": [ [%s]]}']
    ),
)
def test_an_integer_beyond_the_limit_is_refused_wherever_it_stands(number: int, shape: str) -> None:
    text = shape % number
    with pytest.raises(MalformedJSONError, match="outside"):
        loads_for_hashing(text)
