"""Reading evidence files: shape detection (JSON Lines, JSON array, export document, single event) and streaming."""

from __future__ import annotations

import io
import json
from pathlib import Path

from agentops_verify import (
    LOAD_ERROR,
    MALFORMED_JSON,
    canonicalize,
    verify_bytes,
    verify_file,
    verify_lines,
    verify_stream,
)

from tests.support.chains import build_chain, to_jsonl


def test_jsonl_file_is_streamed_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    path.write_bytes(to_jsonl(build_chain(40)))
    seen: list[int] = []
    report = verify_file(path, progress=seen.append)
    assert report.passed
    assert report.source == str(path)
    assert seen[-1] == path.stat().st_size


def test_pretty_printed_json_array_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(build_chain(5), indent=2))
    report = verify_file(path)
    assert report.passed
    assert report.event_count == 6


def test_single_pretty_printed_event_is_one_event_session() -> None:
    [start] = build_chain(1, end=False, seal=None)
    report = verify_bytes(json.dumps(start, indent=2).encode())
    assert report.passed
    assert report.event_count == 1


def test_json_value_that_is_no_session_is_a_load_error() -> None:
    report = verify_bytes(b'"just a string"')
    assert report.violations[0].type == LOAD_ERROR  # ELS rev 2: one JSON value that is no session
    assert "a string" in report.violations[0].message
    report = verify_bytes(b"[1, 2]")
    assert report.violations[0].type == MALFORMED_JSON
    report = verify_bytes(b'{"export_version": "1.0"}')
    assert report.violations[0].type == LOAD_ERROR


def test_malformed_first_line_is_reported_with_its_line_number() -> None:
    events = build_chain(3)
    data = b'{"broken": \n' + to_jsonl(events)
    report = verify_stream(io.BytesIO(data))
    assert report.violations[0].type == MALFORMED_JSON
    assert report.violations[0].context == {"line": 1}
    assert report.event_count == 5


def test_leading_blank_lines_do_not_change_detection() -> None:
    data = b"\n \r\n" + to_jsonl(build_chain(3))
    assert verify_stream(io.BytesIO(data)).passed


def test_export_document_on_one_line_is_detected_from_its_first_line() -> None:
    events = build_chain(3, seal="unsigned")
    report = verify_lines([canonicalize(event) for event in events])
    document = {
        "export_version": "1.0",
        "session_id": events[0]["session_id"],
        "evidence_class": report.evidence_class,
        "chain_authority": "server",
        "verification": report.export_verification(),
        "seal": events[-1]["payload"],
        "events": events,
        "public_keys": [],
        "generated_at": "2026-01-02T00:00:00Z",
        "generator": "test",
    }
    assert verify_stream(io.BytesIO(canonicalize(document) + b"\n")).passed
    assert verify_stream(io.BytesIO(json.dumps(document, indent=1).encode())).passed
