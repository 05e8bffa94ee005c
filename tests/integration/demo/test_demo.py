"""`make demo` as a newcomer runs it: real agent, real stack, offline verification, a tamper that is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT


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
    for name in ("chain.jsonl", "keys.json", "export.json", "export-selective.json", "report.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")
    chain_lines = (tmp_path / "chain.jsonl").read_bytes().splitlines()
    assert json.loads(chain_lines[-1])["event_type"] == "CHAIN_SEAL"
