"""``HashableDocument.canonical_parts``: the per-part writer the ingestion service uses for payloads gives exactly the
reference ``canonicalize`` bytes, whatever mix of whole-number floats, look-alike strings and astral names the
document holds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentops_verify import MalformedJSONError, canonicalize, parse_for_hashing
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.verifier.test_the_fast_canonical_path_equals_the_reference import _safe_floats, _text

# Strings that read like the fast writer's whole-number floats (".0" then a delimiter), and whole-number floats
# themselves, so the count that decides between the two writers meets both.
_look_alikes = st.sampled_from(
    ["1.0,", "x.0}", ".0]", "2.0", '.0"', "-0.0,", "1.0, 2.0]", ":1.0,", "[2.0]", "a,3.0}", "x:-4.0]", "[1.0,2.0]"]
)
_whole_floats = st.sampled_from([0.0, -0.0, 1.0, -1.0, 512.0, 9007199254740991.0, -9007199254740991.0])
_names = _text | _look_alikes | st.sampled_from(["\U0001f600", "\ue000", "a\U0001f600b"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | _safe_floats
    | _whole_floats
    | _text
    | _look_alikes
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_names, children, max_size=4),
    max_leaves=20,
)
_payloads = st.dictionaries(_names, _values, max_size=4)


def _parts_written(document: dict[str, Any]) -> tuple[list[bytes], list[bytes]]:
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
        parsed = parse_for_hashing(text.encode())
        written = parsed.canonical_parts([event["payload"] for event in parsed.value["events"]])
        assert written == [canonicalize(event["payload"]) for event in document["events"]]
    return written, [canonicalize(event["payload"]) for event in document["events"]]


@settings(max_examples=400)
@given(st.lists(_payloads, min_size=1, max_size=5))
@example([{"top_p": 1.0}, {"note": "version 1.0, final"}])
@example([{"top_p": 1.0}, {"note": "ratio:1.0,"}])  # the count of numbers alone would not tell them apart
@example([{"top_p": 1.0, "note": "[1.0]"}, {"x": 2.0}])
@example([{"a": -0.0}, {"b": 1.0}])  # RFC 8785 writes -0.0 as 0
@example([{"\U0001f600": 1.0}, {"\ue000": 2.0}])  # an astral name in one payload only
def test_each_payload_is_written_as_the_reference_writes_it(payloads: list[dict[str, Any]]) -> None:
    _parts_written({"events": [{"sequence_number": index, "payload": p} for index, p in enumerate(payloads)]})


@pytest.mark.parametrize(
    "payloads",
    [
        [{"top_p": 1.0}, {"content": "plain"}, {"price": [180.0, 180.5]}],  # some payloads with whole floats, some not
        [{"note": "1.0, 2.0]"}, {"top_p": 1.0}],  # text that reads like numbers only after a space
        [{"note": "x:1.0,"}, {"top_p": 1.0}],  # text that reads like a number, and a number: each payload on its own
        [{"text": "[1.0]"}, {"text": ",2.0}"}],  # look-alikes without any whole float
        [{"max": 9007199254740991.0, "min": -9007199254740991.0}],
        [{"deep": [[[[1.0]]]], "flat": {"a": 0.0}}],
    ],
)
def test_mixed_batches_are_written_as_the_reference_writes_them(payloads: list[dict[str, Any]]) -> None:
    written, reference = _parts_written({"events": [{"payload": payload} for payload in payloads]})
    assert written == reference


def test_an_integer_of_2_to_the_53_in_one_payload_is_refused_while_parsing() -> None:
    body = '{"events":[{"payload":{"top_p":1.0}},{"payload":{"n":9007199254740992}}]}'
    with pytest.raises(MalformedJSONError, match="outside"):
        parse_for_hashing(body)


def test_a_part_that_is_not_an_object_or_array_takes_the_exact_writer() -> None:
    # A bare 1.0 has no delimiter after it, so its ".0" would not be counted: such parts never take the fast path.
    parsed = parse_for_hashing('[1.0, {"s": "2.0,"}]')
    assert parsed.canonical_parts(parsed.value) == [b"1", b'{"s":"2.0,"}']
