"""RFC 8785 conformance (ELS section 2): the official vectors byte for byte, the ES6 number edge cases, and the
golden payload hash of the spec."""

from __future__ import annotations

import csv
import struct

import pytest
from agentops_verify import CanonicalizationError, MalformedJSONError, canonicalize, loads, payload_hash
from agentops_verify._jcs import format_number

from tests.support.paths import CONFORMANCE

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
