"""ELS section 7, revision 2: the input is one of the three shapes and nothing else. A JSON value that is no session is
LOAD_ERROR saying what it looks like, and a JSON array or export document is the only value of its file."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from agentops_verify import LOAD_ERROR, MALFORMED_JSON, canonicalize, verify_bytes, verify_stream
from agentops_verify._cli import main

from tests.support.chains import build_chain, to_jsonl
from tests.support.keys import default_signer, keys_json
from tests.tamper.support import first_violation


def test_key_set_given_as_evidence_is_load_error_saying_so() -> None:
    report = verify_bytes(keys_json(default_signer()))
    assert first_violation(report) == (LOAD_ERROR, None)
    assert "looks like a key set (GET /v1/keys); pass it with --trusted-key" in report.violations[0].message


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (42, "one JSON value, an integer"),
        ("a session", "one JSON value, a string"),
        (None, "one JSON value, null"),
        ({}, "an empty JSON object"),
        ({"anything": 1}, "neither an event nor an export document"),
        (default_signer().key_entry(), "one published key"),
        ({"session_id": "s", "verification": {}, "frames": [], "warnings": []}, "replay page"),
        ({"checkpoint": "c", "leaf_index": 0, "leaf": {}, "inclusion_proof": []}, "evidence-log proof"),
        ({"reports": [], "passed": 1, "failed": 0}, "agentops-verify output"),
        ({"events": [], "chain_authority": "server"}, 'holds "events" but no "export_version"'),
    ],
    ids=lambda value: str(value)[:20],
)
def test_json_value_that_is_no_session_is_load_error_saying_what_it_looks_like(document: object, says: str) -> None:
    for data in (json.dumps(document).encode(), json.dumps(document, indent=2).encode()):
        report = verify_bytes(data)
        assert first_violation(report) == (LOAD_ERROR, None)
        assert says in report.violations[0].message


def test_verification_report_given_as_evidence_is_load_error() -> None:
    report = verify_bytes(to_jsonl(build_chain(3)))
    assert first_violation(verify_bytes(json.dumps(report.to_dict()).encode()))[0] == LOAD_ERROR


def test_json_array_with_trailing_text_is_malformed() -> None:
    array = b"[" + b",".join(canonicalize(event) for event in build_chain(3)) + b"]"
    for trailing in (b"\n[]\n", b" x", b"\n" + canonicalize(build_chain(3)[0]) + b"\n"):
        report = verify_bytes(array + trailing)
        assert first_violation(report) == (MALFORMED_JSON, None)
        assert "text follows the JSON array" in report.violations[0].message
    assert verify_bytes(array + b"\n \r\n\t").passed  # whitespace is not text


def test_streamed_json_array_with_trailing_text_is_malformed() -> None:
    array = json.dumps(build_chain(3), indent=1).encode()
    assert first_violation(verify_stream(io.BytesIO(b"\n\n" + array + b"\nmore\n"))) == (MALFORMED_JSON, None)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda text: text.replace('"payload": {', '"payload": {"amount": NaN, ', 1), "NaN is not allowed in I-JSON"),
        (
            lambda text: text.replace('"event_type"', '"event_type": "SESSION_END",\n    "event_type"', 1),
            "duplicate key",
        ),
    ],
    ids=["nan", "duplicate-key"],
)
def test_pretty_printed_json_array_the_strict_reader_refuses_says_why_not_where_its_first_line_is(
    edit: Any, problem: str
) -> None:
    # Such an array was read as JSON Lines after all, and its first line "[" reported as "expecting a JSON value".
    text = edit(json.dumps(build_chain(3), indent=2))
    for report in (verify_bytes(text.encode()), verify_stream(io.BytesIO(text.encode()))):
        assert first_violation(report) == (MALFORMED_JSON, None)
        assert report.violations[0].message.startswith("the JSON array is not I-JSON: ")
        assert problem in report.violations[0].message


def test_json_lines_starting_with_a_non_event_object_is_still_json_lines() -> None:
    report = verify_bytes(b'{"anything": 1}\n' + to_jsonl(build_chain(3)))
    assert first_violation(report) == ("MISSING_FIELD", 0)


def test_key_set_file_given_to_the_command_as_evidence_fails_saying_where_it_belongs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_bytes(keys_json(default_signer()))
    assert main([str(keys)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{keys}\tFAIL\tNON_AUTHORITATIVE_EVIDENCE\tLOAD_ERROR\n")
    assert "pass it with --trusted-key" in out
