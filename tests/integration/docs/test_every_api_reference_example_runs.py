"""Every example command of docs/api.md (its ```sh blocks: signed curl calls and agentops-replay commands) runs
against the local stack and gets a successful answer, so the reference cannot drift from the service."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.integration.ingest.builders import event
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration

API_REFERENCE = REPO_ROOT / "docs" / "api.md"
BLOCKS = re.findall(r"^```sh\n(.*?)^```$", API_REFERENCE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def environment(local_stack: LocalStackHandle) -> dict[str, str]:
    agent = ApiClient(local_stack.base_url, access_key_id=f"AKIDDOCS{uuid.uuid4().hex[:12].upper()}")
    session_id = str(uuid.uuid4())
    batch = [event(0, "SESSION_START", {"agent_id": "refund-agent"}), event(1), event(2, "SESSION_END")]
    assert agent.post(f"/v1/sessions/{session_id}/events", {"events": batch}).status == 200
    assert session_id in local_stack.seal_now()
    (key,) = agent.get("/v1/keys").json()["keys"]
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "AGENTOPS_"))}
    return inherited | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AGENTOPS_ENDPOINT": local_stack.base_url,
        "AWS_ACCESS_KEY_ID": "AKIDMYAUDITOR0001",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SESSION_ID": session_id,
        "KEY_ID": key["signer_key_id"],
    }


def test_the_reference_has_examples_for_every_route() -> None:
    examples = "\n".join(BLOCKS)
    signed = [line for line in examples.splitlines() if '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"' in line]
    assert len(signed) == 7
    for route in ("/events", "/v1/sessions?", '/v1/sessions/$SESSION_ID"', "/replay", "/exports", "/chain", "/v1/keys"):
        assert route in examples, route
    for command in ("sessions", "show", "fetch", "verify", "export"):
        assert f"agentops-replay {command} " in examples, command


@pytest.mark.parametrize("block", BLOCKS, ids=[block.splitlines()[0][:60] for block in BLOCKS])
def test_example_runs_against_the_local_stack(block: str, environment: dict[str, str], tmp_path: Path) -> None:
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert '"error"' not in completed.stdout, completed.stdout
    assert completed.stdout.strip(), completed.stderr
