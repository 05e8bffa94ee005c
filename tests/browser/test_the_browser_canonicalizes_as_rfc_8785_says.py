"""RFC 8785 in the browser (ELS section 2): the viewer's canonicalization gives the official vectors byte for byte
and writes every ES6 number edge case as the conformance table says, so its hashes are the Python verifier's."""

from __future__ import annotations

import csv
import json

import pytest

from tests.browser.chromium import Page
from tests.browser.documents import export_document
from tests.browser.viewing import Viewer
from tests.support.paths import CONFORMANCE

JCS = CONFORMANCE / "jcs"
VECTOR_NAMES = sorted(path.stem for path in (JCS / "input").glob("*.json"))


@pytest.fixture(scope="module")
def verifier_page(shared_page: Page, tmp_path_factory: pytest.TempPathFactory) -> Page:
    """Any viewer page: it carries AgentOpsVerifier."""
    Viewer(shared_page, tmp_path_factory.mktemp("jcs")).show(export_document([]))
    return shared_page


def test_all_six_vectors_are_checked() -> None:
    assert VECTOR_NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_canonicalizes_to_the_expected_bytes(verifier_page: Page, name: str) -> None:
    source = (JCS / "input" / f"{name}.json").read_text(encoding="utf-8")
    written = verifier_page.evaluate(f"AgentOpsVerifier.canonicalize(AgentOpsVerifier.parseJSON({json.dumps(source)}))")
    assert written.encode("utf-8") == (JCS / "output" / f"{name}.json").read_bytes()
    assert written.encode("utf-8") == bytes.fromhex((JCS / "outhex" / f"{name}.txt").read_text())


def _number_rows() -> list[tuple[str, str]]:
    with (JCS / "es6_number_edge_cases.csv").open(newline="") as stream:
        return [(row["hex_ieee"], row["expected"]) for row in csv.DictReader(stream)]


NUMBER_ROWS = _number_rows()

# The double with these IEEE bits, as the strict parser would hold it (an integral double is an IntegralFloat).
WRITE_DOUBLE = """((bits) => {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt("0x" + bits));
  const value = view.getFloat64(0);
  const held = Number.isInteger(value) ? new AgentOpsVerifier.IntegralFloat(value) : value;
  try { return AgentOpsVerifier.canonicalize(held); } catch (error) { return "ERROR " + error.message; }
})"""


def test_every_number_edge_case_is_read() -> None:
    assert len(NUMBER_ROWS) == 28


@pytest.mark.parametrize(("hex_ieee", "expected"), NUMBER_ROWS)
def test_es6_number_edge_case(verifier_page: Page, hex_ieee: str, expected: str) -> None:
    written = verifier_page.evaluate(f"{WRITE_DOUBLE}({json.dumps(hex_ieee)})")
    if expected.startswith("ERROR_"):
        assert written.startswith("ERROR ")
    else:
        assert written == expected


def test_the_golden_payload_hash_of_the_spec(verifier_page: Page) -> None:
    payload = '{"test":"data","number":42,"nested":{"key":"value"}}'
    digest = verifier_page.evaluate(
        f"""(async () => {{
          const text = AgentOpsVerifier.canonicalize(AgentOpsVerifier.parseJSON({json.dumps(payload)}));
          const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
          return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
        }})()"""
    )
    assert digest == "5357e4c31d1b855c84c3b2c70640071d84279d20e7e1786e77ab5f1522df5a4a"
