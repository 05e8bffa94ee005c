"""Every example command of docs/api.md (its ```sh blocks: signed curl calls and agentops-replay commands) runs
against the local stack and gets a successful answer, and every route template.yaml serves is listed and called in
it, so the reference cannot drift from the service."""

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
from infra.template import http_routes, load_template
from tests.integration.ingest.builders import event
from tests.support.paths import REPO_ROOT, TEMPLATE

pytestmark = pytest.mark.integration

API_REFERENCE = REPO_ROOT / "docs" / "api.md"
REFERENCE = API_REFERENCE.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```sh\n(.*?)^```$", REFERENCE, re.MULTILINE | re.DOTALL)
# The commands of every fenced block, runnable or not (polling an asynchronous export needs a 202 answer's id), each
# on one line.
COMMANDS = re.sub(r"\\\n\s*", "", "\n".join(re.findall(r"^```\w*\n(.*?)^```$", REFERENCE, re.MULTILINE | re.DOTALL)))
SIGNED = '--aws-sigv4 "aws:amz:us-east-1:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"'
PATH_PARAMETERS = {"{session_id}": r"\$(NEW_)?SESSION_ID", "{export_id}": r"\$EXPORT_ID"}


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


def curl_calls(method: str, path: str) -> list[str]:
    """The example commands that call ``method path`` (path parameters as the examples' shell variables)."""
    url = re.escape(path)
    for parameter, variable in PATH_PARAMETERS.items():
        url = url.replace(re.escape(parameter), variable)
    calls = [line for line in COMMANDS.splitlines() if re.search(rf'curl .*"\$AGENTOPS_ENDPOINT{url}["?]', line)]
    return [line for line in calls if ("-X POST" in line) == (method == "POST")]


def test_the_reference_lists_and_calls_every_route_the_template_serves() -> None:
    for route in http_routes(load_template(TEMPLATE)):
        assert f"`{route.method} {route.path}`" in REFERENCE, f"{route.route_key} is not in the routes table"
        calls = curl_calls(route.method, route.path)
        assert calls, f"no example calls {route.route_key}"
        assert all((SIGNED in call) == route.authorized for call in calls), f"{route.route_key}: signed or not"
    for command in ("sessions", "show", "fetch", "verify", "export"):
        assert f"agentops-replay {command} " in "\n".join(BLOCKS), command


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
