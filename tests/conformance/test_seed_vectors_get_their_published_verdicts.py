"""The four seed vectors of the original v0.6 verifier with the verdicts of ``shared/conformance/README.md``,
through the library and through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    CHAIN_BROKEN,
    LEGACY_SEAL_MISMATCH,
    NON_AUTHORITATIVE_EVIDENCE,
    PARTIAL_AUTHORITATIVE_EVIDENCE,
    PAYLOAD_HASH_MISMATCH,
    SEQUENCE_GAP,
    UNSIGNED_SEAL,
    Policy,
    verify_bytes,
    verify_file,
)
from agentops_verify._cli import main

from tests.support.paths import CONFORMANCE

SEED = CONFORMANCE / "seed-v0.6"
VALID = SEED / "valid_session.jsonl"
FINGERPRINT = "32a410de908b0fd9f8465f8df7761890541b27673b4adefe8c7e802a6817245f"
FIRST_EVENT_HASH = "6b7f7fa9ba8c7f921c0a24c801ecb62a05a3fafb8f7cd1119e13c47684673f24"
INVALID = {
    "invalid_hash.jsonl": PAYLOAD_HASH_MISMATCH,
    "invalid_chain.jsonl": CHAIN_BROKEN,
    "invalid_sequence.jsonl": SEQUENCE_GAP,
}


def test_valid_session_passes_as_partial_because_its_seal_is_unsigned() -> None:
    report = verify_file(VALID)
    assert report.passed
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == (UNSIGNED_SEAL,)
    assert report.replay_fingerprint == FINGERPRINT
    assert report.first_event_hash == FIRST_EVENT_HASH
    assert report.event_count == 4
    assert report.sealed
    assert not report.seal_signed
    assert report.complete
    assert report.violations == ()
    # Its legacy seal's digest is a truncated hash: reported, but only as a warning (ELS section 5).
    assert [warning.type for warning in report.warnings] == [LEGACY_SEAL_MISMATCH]


def test_valid_session_is_authoritative_when_unsigned_seals_are_accepted() -> None:
    report = verify_file(VALID, policy=Policy(accept_unsigned_seals=True))
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == ()
    assert report.replay_fingerprint == FINGERPRINT


@pytest.mark.parametrize(("name", "code"), sorted(INVALID.items()))
def test_invalid_seed_fails_at_sequence_1(name: str, code: str) -> None:
    report = verify_file(SEED / name)
    assert not report.passed
    assert report.status == "FAIL"
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == ()
    assert len(report.violations) == 1
    violation = report.violations[0]
    assert (violation.type, violation.event_sequence) == (code, 1)
    assert violation.event_id is not None
    assert report.replay_fingerprint is None
    assert report.event_count == 4  # counting goes on after the first violation


@pytest.mark.parametrize("name", ["valid_session.jsonl", *sorted(INVALID)])
def test_bytes_and_file_entry_points_agree(name: str) -> None:
    path = SEED / name
    assert verify_bytes(path.read_bytes(), source=str(path)).to_dict() == verify_file(path).to_dict()


def test_report_has_exactly_the_keys_of_els_section_7() -> None:
    report = verify_file(SEED / "invalid_hash.jsonl").to_dict()
    assert list(report) == [
        "session_id",
        "status",
        "evidence_class",
        "partial_reasons",
        "authority",
        "sealed",
        "seal_signed",
        "seal_key_id",
        "seal_key_trusted",
        "complete",
        "event_count",
        "total_drops",
        "first_event_hash",
        "final_event_hash",
        "replay_fingerprint",
        "violations",
        "warnings",
        "verifier_version",
        "spec_version",
        "log",
    ]
    assert "unverified_metadata" not in report  # only an export document has metadata to repeat
    assert list(report["violations"][0]) == ["type", "message", "event_sequence", "event_id", "context"]
    assert report["spec_version"] == "v0.6"


def _run_cli(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentops_verify", *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_cli_passes_the_valid_session_with_exit_0_and_json_report() -> None:
    completed = _run_cli("--format", "json", VALID)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["status"] == "PASS"
    assert report["evidence_class"] == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report["partial_reasons"] == [UNSIGNED_SEAL]
    assert report["replay_fingerprint"] == FINGERPRINT
    assert report["first_event_hash"] == FIRST_EVENT_HASH


def test_cli_accept_unsigned_seals_gives_authoritative() -> None:
    completed = _run_cli("--format", "json", "--accept-unsigned-seals", VALID)
    assert completed.returncode == 0
    assert json.loads(completed.stdout)["evidence_class"] == AUTHORITATIVE_EVIDENCE


@pytest.mark.parametrize(("name", "code"), sorted(INVALID.items()))
def test_cli_fails_an_invalid_seed_with_exit_1(name: str, code: str) -> None:
    completed = _run_cli("--format", "json", SEED / name)
    assert completed.returncode == 1
    report = json.loads(completed.stdout)
    assert report["status"] == "FAIL"
    assert report["evidence_class"] == NON_AUTHORITATIVE_EVIDENCE
    assert (report["violations"][0]["type"], report["violations"][0]["event_sequence"]) == (code, 1)


def test_cli_text_output_has_one_line_per_file_and_a_closing_count(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(VALID), *(str(SEED / name) for name in sorted(INVALID))]
    assert main(paths) == 1
    lines = capsys.readouterr().out.splitlines()
    summary = [line.split("\t") for line in lines[: len(paths)]]
    assert summary[0] == [str(VALID), "PASS", PARTIAL_AUTHORITATIVE_EVIDENCE, UNSIGNED_SEAL]
    for (name, code), fields in zip(sorted(INVALID.items()), summary[1:], strict=True):
        assert fields[:3] == [str(SEED / name), "FAIL", NON_AUTHORITATIVE_EVIDENCE]
        assert fields[3].startswith(f"{code} at sequence 1 (event ")
    assert lines[-1] == "1/4 sessions valid"


def test_cli_json_output_for_several_files_counts_passed_and_failed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "json", str(VALID), str(SEED / "invalid_chain.jsonl")]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["passed"], document["failed"]) == (1, 1)
    assert [report["status"] for report in document["reports"]] == ["PASS", "FAIL"]


def test_cli_all_valid_files_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(VALID), str(VALID)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2/2 sessions valid"
