"""RFC 8785 conformance (ELS section 2): the official vectors byte for byte, the ES6 number edge cases, and the
golden payload hash of the spec."""

from __future__ import annotations

import csv
import struct

import pytest
from agentops_verify import CanonicalizationError, canonicalize, loads, payload_hash

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


@pytest.mark.parametrize(("hex_ieee", "expected"), NUMBER_ROWS)
def test_es6_number_edge_case(hex_ieee: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(hex_ieee))
    if expected.startswith("ERROR_"):
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
        with pytest.raises(ValueError, match=r"."):  # CanonicalizationError is a ValueError (ELS section 7)
            canonicalize([value])
    else:
        assert canonicalize(value) == expected.encode("ascii")
        # The output is a JSON number that reads back as the same double.
        assert float(expected) == value


def test_golden_payload_hash_of_els_section_2() -> None:
    payload = {"test": "data", "number": 42, "nested": {"key": "value"}}
    assert payload_hash(payload) == "5357e4c31d1b855c84c3b2c70640071d84279d20e7e1786e77ab5f1522df5a4a"
