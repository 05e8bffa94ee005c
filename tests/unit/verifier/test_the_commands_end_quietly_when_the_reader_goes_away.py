"""``agentops-verify`` and ``agentops-log-audit`` piped into a reader that has gone away (``| head`` after its lines):
the verdict is still the exit status, and no traceback is printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.chains import build_chain, to_jsonl
from tests.support.evidence_log import PublishedLog
from tests.support.keys import default_signer, keys_json

SEAL_KEY = default_signer()


def _run_with_the_reader_gone(module: str, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader goes away before anything is written
    _, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, b"", err)


def test_the_verify_command_exits_by_its_verdict_without_a_traceback(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_bytes(keys_json(SEAL_KEY))
    chain = tmp_path / "chain.jsonl"
    chain.write_bytes(to_jsonl(build_chain(4, signer=SEAL_KEY)))
    completed = _run_with_the_reader_gone("agentops_verify._cli", "--trusted-key", str(keys), str(chain))
    assert (completed.returncode, completed.stderr) == (0, b"")


def test_the_log_audit_exits_by_its_verdict_without_a_traceback(tmp_path: Path) -> None:
    log = PublishedLog(tmp_path / "bucket", SEAL_KEY)
    for _ in range(3):
        log.add(build_chain(4, signer=SEAL_KEY))
    log.publish()
    keys = tmp_path / "keys.json"
    keys.write_bytes(keys_json(SEAL_KEY))
    arguments = ["--log-key", str(keys), "--archives", str(log.archives), str(log.log_dir)]
    completed = _run_with_the_reader_gone("agentops_verify._logaudit_cli", *arguments)
    assert (completed.returncode, completed.stderr) == (0, b"")
