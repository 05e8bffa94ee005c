"""The ``agentops-verify`` command (ELS section 7): trust arguments, policies, output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    LOAD_ERROR,
    NON_AUTHORITATIVE_EVIDENCE,
    PARTIAL_AUTHORITATIVE_EVIDENCE,
    POLICY_VIOLATION,
    UNTRUSTED_SEAL_KEY,
    canonicalize,
    verify_lines,
)
from agentops_verify._cli import main

from tests.support.chains import build_chain, to_jsonl
from tests.support.keys import TestSigner, default_signer, keys_json
from tests.tamper.support import trust_for


@pytest.fixture
def sealed_chain(tmp_path: Path) -> Path:
    path = tmp_path / "session.jsonl"
    path.write_bytes(to_jsonl(build_chain(5)))
    return path


@pytest.fixture
def pem_file(tmp_path: Path) -> Path:
    path = tmp_path / "seal-key.pem"
    path.write_text(default_signer().public_key_pem)
    return path


def _json_output(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


def test_trusted_pem_key_makes_a_signed_complete_session_authoritative(
    sealed_chain: Path, pem_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--format", "json", "--trusted-key", str(pem_file), str(sealed_chain)]) == 0
    report = _json_output(capsys)
    assert report["evidence_class"] == AUTHORITATIVE_EVIDENCE
    assert report["seal_key_trusted"] is True


def test_keys_json_file_trusts_every_key_in_it(
    sealed_chain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_bytes(keys_json(TestSigner(), default_signer()))
    assert main(["--format", "json", "--trusted-key", str(keys), str(sealed_chain)]) == 0
    assert _json_output(capsys)["evidence_class"] == AUTHORITATIVE_EVIDENCE


def test_without_a_trusted_key_the_session_is_partial(sealed_chain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "json", str(sealed_chain)]) == 0
    report = _json_output(capsys)
    assert report["evidence_class"] == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report["partial_reasons"] == [UNTRUSTED_SEAL_KEY]


def test_require_authoritative_exits_1_on_partial_evidence(
    sealed_chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--format", "json", "--require-authoritative", str(sealed_chain)]) == 1
    report = _json_output(capsys)
    assert report["violations"][0]["type"] == POLICY_VIOLATION  # type: ignore[index]


def test_reject_local_authority_exits_1_on_sdk_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = tmp_path / "local.jsonl"
    local.write_bytes(to_jsonl(build_chain(4, authority="sdk", seal="unsigned")))
    assert main([str(local)]) == 0
    capsys.readouterr()
    assert main(["--format", "json", "--reject-local-authority", str(local)]) == 1
    report = _json_output(capsys)
    assert report["evidence_class"] == NON_AUTHORITATIVE_EVIDENCE
    assert report["violations"][0]["type"] == POLICY_VIOLATION  # type: ignore[index]


def _export_document(events: list[dict[str, Any]]) -> dict[str, Any]:
    report = verify_lines([canonicalize(event) for event in events], trust=trust_for(default_signer()))
    return {
        "export_version": "1.0",
        "session_id": events[0]["session_id"],
        "evidence_class": report.evidence_class,
        "chain_authority": "server",
        "verification": report.export_verification(),
        "seal": events[-1]["payload"],
        "events": events,
        "public_keys": [default_signer().key_entry()],
        "generated_at": "2026-01-02T00:00:00Z",
        "generator": "test",
    }


def test_pinned_key_id_trusts_the_key_an_export_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.json"
    export.write_bytes(canonicalize(_export_document(build_chain(5))))
    assert main(["--format", "json", str(export)]) == 0
    assert _json_output(capsys)["partial_reasons"] == [UNTRUSTED_SEAL_KEY]
    assert main(["--format", "json", "--trusted-key", default_signer().key_id, str(export)]) == 0
    assert _json_output(capsys)["evidence_class"] == AUTHORITATIVE_EVIDENCE


def test_unreadable_file_gets_its_own_line_and_others_are_checked(
    tmp_path: Path, sealed_chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ELS section 7 (rev 2): one unreadable file no longer abandons the others; it is reported, and exits 2.
    missing = tmp_path / "missing.jsonl"
    directory = tmp_path / "a-directory"
    directory.mkdir()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(to_jsonl(build_chain(5))[:-40] + b"\n")
    assert main([str(missing), str(sealed_chain), str(directory), str(broken)]) == 2
    captured = capsys.readouterr()
    summary = captured.out.splitlines()[:4]
    assert summary[0].startswith(f"{missing}\tFAIL\t{NON_AUTHORITATIVE_EVIDENCE}\tLOAD_ERROR")
    assert summary[1] == f"{sealed_chain}\tPASS\t{PARTIAL_AUTHORITATIVE_EVIDENCE}\t{UNTRUSTED_SEAL_KEY}"
    assert summary[2].startswith(f"{directory}\tFAIL\t{NON_AUTHORITATIVE_EVIDENCE}\tLOAD_ERROR")
    assert summary[3].startswith(f"{broken}\tFAIL\t{NON_AUTHORITATIVE_EVIDENCE}\tMALFORMED_JSON")
    assert captured.out.endswith("1/4 sessions valid\n")
    assert captured.err.splitlines() == [
        f"agentops-verify: error: cannot read {missing}: No such file or directory",
        f"agentops-verify: error: cannot read {directory}: Is a directory",
    ]


def test_unreadable_file_exits_2_even_when_every_other_file_passes_and_has_a_json_report(
    tmp_path: Path, sealed_chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["--format", "json", str(sealed_chain), str(missing)]) == 2
    document = _json_output(capsys)
    assert (document["passed"], document["failed"]) == (1, 1)
    unreadable = document["reports"][1]  # type: ignore[index]
    assert unreadable["status"] == "FAIL"
    assert unreadable["event_count"] == 0
    [violation] = unreadable["violations"]
    assert violation["type"] == LOAD_ERROR
    assert violation["message"] == f"cannot read {missing}: No such file or directory"


def test_export_metadata_is_shown_labelled_unverified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.json"
    export.write_bytes(canonicalize(_export_document(build_chain(5))))
    assert main([str(export)]) == 0
    out = capsys.readouterr().out
    assert "  unverified (not covered by any hash or signature):\n" in out
    assert '    generated_at "2026-01-02T00:00:00Z"\n' in out
    assert '    generator "test"\n' in out
    assert main(["--format", "json", str(export)]) == 0
    assert _json_output(capsys)["unverified_metadata"] == {"generated_at": "2026-01-02T00:00:00Z", "generator": "test"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "bad key file"),
        (b'{"keys": []}', "bad key file"),
        (b'{"keys": [{"signer_key_id": "sha256:00", "algorithm": "ECDSA_P256_SHA256"}]}', "bad key file"),
    ],
)
def test_bad_key_file_exits_2(
    tmp_path: Path, sealed_chain: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(content)
    assert main(["--trusted-key", str(key), str(sealed_chain)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_missing_key_file_and_malformed_key_id_exit_2(sealed_chain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trusted-key", "/nonexistent/key.pem", str(sealed_chain)]) == 2
    assert "cannot read key file" in capsys.readouterr().err
    assert main(["--trusted-key", "sha256:ABC", str(sealed_chain)]) == 2
    assert "sha256:ABC" in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [[], ["--format", "xml", "x"], ["--no-such-option", "x"]])
def test_bad_arguments_exit_2(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_text_output_names_the_seal_key_and_the_fingerprint(
    sealed_chain: Path, pem_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--trusted-key", str(pem_file), str(sealed_chain)]) == 0
    out = capsys.readouterr().out
    first, *_ = out.splitlines()
    assert first == f"{sealed_chain}\tPASS\t{AUTHORITATIVE_EVIDENCE}\t-"
    assert f"seal signed by {default_signer().key_id} (trusted)" in out
    assert "replay fingerprint " in out
    assert out.endswith("1/1 sessions valid\n")


def test_no_progress_indicator_when_stderr_is_not_a_terminal(
    sealed_chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(sealed_chain)]) == 0
    assert capsys.readouterr().err == ""


def test_console_script_and_module_entry_point_agree(sealed_chain: Path) -> None:
    module = subprocess.run(
        [sys.executable, "-m", "agentops_verify", "--format", "json", str(sealed_chain)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert module.returncode == 0
    assert json.loads(module.stdout)["status"] == "PASS"
    script = Path(sys.executable).parent / "agentops-verify"
    if script.exists():  # installed into the same environment as the interpreter running the tests
        installed = subprocess.run(
            [str(script), "--format", "json", str(sealed_chain)], capture_output=True, text=True, check=False
        )
        assert installed.returncode == 0
        assert json.loads(installed.stdout) == json.loads(module.stdout)
