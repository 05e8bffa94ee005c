"""`make demo` as a newcomer runs it: real agent, real stack, offline verification, a tamper that is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT
from tests.support.viewer_page import embedded


def test_demo_verifies_genuine_evidence_and_rejects_the_tampered_copy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.demo", "--output", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3/3 sessions valid" in result.stdout
    assert "PASS\tAUTHORITATIVE_EVIDENCE" in result.stdout
    assert "FAIL\tNON_AUTHORITATIVE_EVIDENCE\tPAYLOAD_HASH_MISMATCH at sequence" in result.stdout
    assert "genuine evidence verified: yes" in result.stdout
    # The session's inclusion in the evidence log is verified offline, the log audit passes over the downloaded
    # bucket, and a copy without the session's archive is reported MISSING, naming it.
    assert "included in agentops-replay/evidence-log at index" in result.stdout
    assert "1/1 logged sessions present and intact" in result.stdout
    assert "evidence log audit passed: yes" in result.stdout
    assert "withheld archive reported MISSING: yes" in result.stdout
    for name in (
        "chain.jsonl",
        "keys.json",
        "log-proof.json",
        "export.json",
        "export-selective.json",
        "report.pdf",
        "viewer.html",
    ):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")
    chain_lines = (tmp_path / "chain.jsonl").read_bytes().splitlines()
    assert json.loads(chain_lines[-1])["event_type"] == "CHAIN_SEAL"
    session_id = json.loads(chain_lines[0])["session_id"]
    viewed = json.loads(embedded((tmp_path / "viewer.html").read_bytes()))
    assert viewed["session_id"] == session_id
    assert len(viewed["events"]) == len(chain_lines)
    key_id = json.loads((tmp_path / "keys.json").read_text())["keys"][0]["signer_key_id"]
    for command in (
        "$ export AGENTOPS_ENDPOINT=http://127.0.0.1:",
        "$ agentops-replay sessions --agent-id customer-support-agent",
        f"$ agentops-replay show {session_id}",
        f"$ agentops-replay verify {session_id} --trusted-key {key_id} --require-authoritative",
        f"$ agentops-replay export {session_id} --format html --out ",
    ):
        assert command in result.stdout
    # It still ends on the verdicts: genuine evidence authoritative, the tampered copy rejected.
    assert result.stdout.index("agentops-replay export") < result.stdout.index("PASS\tAUTHORITATIVE_EVIDENCE")
