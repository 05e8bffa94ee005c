"""RFC 8785 conformance (ELS section 2): the official vectors byte for byte, the ES6 number edge cases, and the
golden payload hash of the spec."""

from __future__ import annotations

import csv
import struct

import pytest
from agentops_verify import (
    CanonicalizationError,
    MalformedJSONError,
    canonicalize,
    loads,
    payload_hash,
    verify_lines,
)
from agentops_verify._eventline import EventLineParser
from agentops_verify._jcs import exact_canonical, format_number

from tests.support.chains import build_chain
from tests.support.keys import default_signer
from tests.support.paths import CONFORMANCE
from tests.tamper.support import trust_for

JCS = CONFORMANCE / "jcs"
VECTOR_NAMES = sorted(path.stem for path in (JCS / "input").glob("*.json"))


def test_all_six_vector_pairs_are_present() -> None:
    assert VECTOR_NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_canonicalizes_to_the_expected_bytes(name: str) -> None:
    value = loads((JCS / "input" / f"{name}.json").read_bytes())
    assert canonicalize(value) == (JCS / "output" / f"{name}.json").read_bytes()


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_canonicalizes_to_the_expected_hex(name: str) -> None:
    expected = bytes.fromhex((JCS / "outhex" / f"{name}.txt").read_text())
    assert canonicalize(loads((JCS / "input" / f"{name}.json").read_bytes())) == expected


def _number_rows() -> list[tuple[str, str]]:
    with (JCS / "es6_number_edge_cases.csv").open(newline="") as stream:
        return [(row["hex_ieee"], row["expected"]) for row in csv.DictReader(stream)]


NUMBER_ROWS = _number_rows()


def test_number_edge_cases_are_all_read() -> None:
    assert len(NUMBER_ROWS) == 28
    assert sum(expected.startswith("ERROR_") for _, expected in NUMBER_ROWS) == 2


def _is_integer_text(text: str) -> bool:
    return text.lstrip("-").isdigit()


# ELS section 2: hashed data is I-JSON. A whole-number double from 2**53 up to 1e21 is written as an integer literal
# outside +-(2**53 - 1), which the verifier's reader refuses, so canonicalize refuses the double too.
UNSAFE_INTEGRAL_ROWS = [
    (hex_ieee, expected) for hex_ieee, expected in NUMBER_ROWS if _is_integer_text(expected) and len(expected) > 15
]


def test_the_rows_outside_i_json_are_the_whole_numbers_from_2_to_the_53_up_to_1e21() -> None:
    assert [expected for _, expected in UNSAFE_INTEGRAL_ROWS] == [
        "9007199254740992",
        "-9007199254740992",
        "9007199254740994",
        "9007199254740996",
        "295147905179352830000",
        "999999999999999700000",
        "999999999999999900000",
    ]


@pytest.mark.parametrize(("hex_ieee", "expected"), NUMBER_ROWS)
def test_es6_number_edge_case(hex_ieee: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(hex_ieee))
    if expected.startswith("ERROR_"):
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
        with pytest.raises(ValueError, match=r"."):  # CanonicalizationError is a ValueError (ELS section 7)
            canonicalize([value])
        return
    # The RFC 8785 number text, and a JSON number that reads back as the same double.
    assert format_number(value) == expected
    assert float(expected) == value
    if (hex_ieee, expected) in UNSAFE_INTEGRAL_ROWS:
        for container in (value, [value], {"n": value}):
            with pytest.raises(CanonicalizationError, match="outside"):
                canonicalize(container)
        with pytest.raises(MalformedJSONError):  # the reader refuses the text the writer would have produced
            loads(expected.encode("ascii"))
    else:
        assert canonicalize(value) == expected.encode("ascii")
        assert canonicalize([value]) == f"[{expected}]".encode("ascii")


def test_golden_payload_hash_of_els_section_2() -> None:
    payload = {"test": "data", "number": 42, "nested": {"key": "value"}}
    assert payload_hash(payload) == "5357e4c31d1b855c84c3b2c70640071d84279d20e7e1786e77ab5f1522df5a4a"


# The vectors as a producer may send them: the input text itself, spacing and escapes as they are, as the payload of
# an event line. The line reader's payload bytes (the C encoder, or the exact writer where the parse says so) must be
# the expected output, the exact writer's too, and a chain whose payload hash is taken over that output verifies.
def _one_line(text: bytes) -> bytes:
    return text.replace(b"\r\n", b" ").replace(b"\n", b" ").strip()  # a JSON string holds no raw line break


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_input_as_an_event_payload_gives_the_expected_bytes_on_every_writer(name: str) -> None:
    raw = _one_line((JCS / "input" / f"{name}.json").read_bytes())
    expected = (JCS / "output" / f"{name}.json").read_bytes()
    line = b'{"event_id": "e-1", "payload": {"vector": ' + raw + b"}}"
    _, payload_jcs = EventLineParser().parse_event(line)
    assert payload_jcs == b'{"vector":' + expected + b"}"
    assert exact_canonical(loads(raw)) == expected


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_a_chain_with_a_vector_payload_written_as_the_input_verifies(name: str) -> None:
    raw = _one_line((JCS / "input" / f"{name}.json").read_bytes())
    vector = loads(raw)
    events = build_chain(3, payload_factory=lambda _: ("ANNOTATION", _annotation_with(vector)))
    lines = [canonicalize(event) for event in events]
    canonical_payload = b'"vector":' + canonicalize(vector)
    assert lines[1].count(canonical_payload) == 1
    lines[1] = lines[1].replace(canonical_payload, b'"vector" : ' + raw)
    assert verify_lines(lines, trust=trust_for(default_signer())).passed


def _annotation_with(vector: object) -> dict[str, object]:
    return {"annotator_id": "r", "annotation_type": "comment", "content": "vector", "vector": vector}
