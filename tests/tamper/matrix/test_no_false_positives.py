"""Zero false positives: genuine evidence re-serialized any way JSON allows verifies with the very same report.

ELS section 2: the verifier recomputes every hash from the parsed values, so spacing, key order, line endings,
``\\u`` escapes and the input shape (JSON Lines or one JSON array) never change the verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.chains import Event
from tests.tamper.matrix.evidence import (
    AUTHORITATIVE,
    Evidence,
    document_bytes,
    export_document,
    jsonl,
    passes,
    verdict_of,
    verify,
)
from tests.tamper.matrix.world import world


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in sorted(value, reverse=True)}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


def lines(events: list[Event], dump: Callable[[Event], str], ending: bytes = b"\n") -> bytes:
    return b"".join(dump(event).encode("utf-8") + ending for event in events)


RESERIALIZATIONS: dict[str, Callable[[list[Event]], bytes]] = {
    "spaced_separators": lambda events: lines(events, lambda e: json.dumps(e, separators=(" , ", " : "))),
    "padded_lines_and_blank_lines": lambda events: (
        b"\n \t\n".join(b"  " + json.dumps(e).encode() + b"\t " for e in events) + b"\n\n"
    ),
    "reversed_key_order": lambda events: lines(events, lambda e: json.dumps(reversed_keys(e), ensure_ascii=False)),
    "crlf_line_endings": lambda events: lines(events, lambda e: json.dumps(e, ensure_ascii=False), b"\r\n"),
    "no_final_newline": lambda events: jsonl(events).rstrip(b"\n"),
    "unicode_escapes_for_non_ascii": lambda events: lines(events, lambda e: json.dumps(e, ensure_ascii=True)),
    "json_array_compact": lambda events: json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode(),
    "json_array_pretty_escaped_reordered": lambda events: json.dumps(
        reversed_keys(events), indent=3, ensure_ascii=True
    ).encode(),
    "everything_at_once_crlf": lambda events: lines(
        events, lambda e: json.dumps(reversed_keys(e), ensure_ascii=True, separators=(" ,", ":  ")), b" \r\n"
    ),
}


@pytest.fixture(scope="module")
def genuine_report() -> dict[str, Any]:
    report = verify(Evidence(jsonl(world().sealed), (world().current,)))
    assert verdict_of(report) == passes(AUTHORITATIVE)
    assert report.warnings == ()
    return report.to_dict()


def test_the_non_ascii_sample_really_is_escaped_differently() -> None:
    canonical = jsonl(world().sealed)
    escaped = RESERIALIZATIONS["unicode_escapes_for_non_ascii"](world().sealed)
    assert "😀".encode() in canonical
    assert b"\\ud83d\\ude00" in escaped
    assert b"\\u2028" in escaped


@pytest.mark.parametrize("name", sorted(RESERIALIZATIONS))
def test_reserialized_genuine_evidence_gets_the_same_report(name: str, genuine_report: dict[str, Any]) -> None:
    data = RESERIALIZATIONS[name](world().sealed)
    assert data != jsonl(world().sealed)
    report = verify(Evidence(data, (world().current,)))
    assert report.to_dict() == genuine_report


@pytest.mark.parametrize("name", ["pretty", "reversed_keys_escaped"])
def test_reserialized_genuine_export_document_passes(name: str, genuine_report: dict[str, Any]) -> None:
    w = world()
    report = verify(Evidence(jsonl(w.sealed), (w.current,)))
    document = export_document(w.sealed, report, public_keys=[w.current.key_entry()])
    canonical = verify(Evidence(document_bytes(document), pinned_ids=(w.current.key_id,)))
    if name == "pretty":
        data = json.dumps(document, indent=2, ensure_ascii=False).encode()
    else:
        data = json.dumps(reversed_keys(document), ensure_ascii=True).encode()
    again = verify(Evidence(data, pinned_ids=(w.current.key_id,)))
    assert verdict_of(again) == passes(AUTHORITATIVE)
    assert again.to_dict() == canonical.to_dict()
    assert again.replay_fingerprint == genuine_report["replay_fingerprint"]
