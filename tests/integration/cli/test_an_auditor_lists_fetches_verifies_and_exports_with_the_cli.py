"""``agentops-replay`` against the local stack, as an auditor runs it: a failed, sealed session with a tool error,
dropped events and a redacted value is listed, shown, fetched, verified and exported over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.integration.ingest.builders import event

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Sealed:
    session_id: str
    agent_id: str
    key_id: str


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str


def events(agent_id: str) -> list[dict[str, Any]]:
    return [
        event(0, "SESSION_START", {"agent_id": agent_id, "environment": "prod", "framework": "langchain"}),
        event(1, "MODEL_REQUEST", {"model": "gpt-4o", "provider": "openai", "prompt_hash": "a" * 64}),
        event(
            2,
            "TOOL_CALL",
            {"tool_name": "issue_refund", "tool_id": "call-1", "args": {"email": "[REDACTED]", "email_hash": "c" * 64}},
        ),
        event(3, "TOOL_RESULT", {"tool_name": "issue_refund", "tool_id": "call-1", "status": "error"}),
        event(4, "ERROR", {"error_type": "PaymentDeclined", "message": "card declined \x1b[2J", "fatal": False}),
        event(5, "LOG_DROP", {"dropped_count": 3, "cumulative_drops": 3, "drop_reason": "NETWORK_LOSS"}),
        event(6, "SESSION_END", {"status": "failure", "reason": "refund declined"}),
    ]


@pytest.fixture(scope="module")
def sealed(local_stack: LocalStackHandle) -> Sealed:
    agent = ApiClient(local_stack.base_url, access_key_id=f"AKIDAGENT{uuid.uuid4().hex[:11].upper()}")
    agent_id = f"refund-agent-{uuid.uuid4().hex[:12]}"
    session_id = str(uuid.uuid4())
    posted = agent.post(f"/v1/sessions/{session_id}/events", {"events": events(agent_id)})
    assert posted.status == 200, posted.body
    assert session_id in local_stack.seal_now()
    (key,) = agent.get("/v1/keys").json()["keys"]
    return Sealed(session_id, agent_id, key["signer_key_id"])


def cli(local_stack: LocalStackHandle, *arguments: str, cwd: Path | None = None, endpoint: bool = True) -> Run:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "AGENTOPS_", "NO_COLOR"))
    }
    environment |= {
        "AWS_ACCESS_KEY_ID": "AKIDAUDITOR000000001",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if endpoint:
        environment["AGENTOPS_ENDPOINT"] = local_stack.base_url
    completed = subprocess.run(
        [sys.executable, "-m", "agentops_replay.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def test_sessions_lists_the_session_as_a_table_and_as_json(local_stack: LocalStackHandle, sealed: Sealed) -> None:
    table = cli(local_stack, "sessions", "--agent-id", sealed.agent_id)
    assert table.status == 0, table.err
    header, row = table.out.splitlines()
    assert header.split() == ["SESSION", "AGENT", "STATUS", "EVENTS", "STARTED", "ENDED"]
    assert row.split()[:4] == [sealed.session_id, sealed.agent_id, "SEALED", "8"]

    listed = cli(local_stack, "sessions", "--status", "sealed", "--since", "1h", "--format", "json", "--limit", "500")
    assert listed.status == 0, listed.err
    rows = {row["session_id"]: row for row in json.loads(listed.out)["sessions"]}
    assert rows[sealed.session_id]["agent_id"] == sealed.agent_id
    assert {row["status"] for row in rows.values()} == {"SEALED"}


def test_show_prints_the_timeline_with_errors_and_drops_marked(local_stack: LocalStackHandle, sealed: Sealed) -> None:
    shown = cli(local_stack, "show", sealed.session_id)
    assert shown.status == 0, shown.err
    assert "\x1b" not in shown.out  # not a terminal: no colour, and the event's escape sequence is shown escaped
    lines = shown.out.splitlines()
    assert lines[0].startswith(f"session {sealed.session_id}  SEALED  8 events")
    assert "verified by the service: PASS PARTIAL_AUTHORITATIVE_EVIDENCE (LOG_DROP_PRESENT)" in lines[1]
    timeline = [line for line in lines[2:] if line.strip()]
    assert [line[2:8].strip() for line in timeline] == ["0", "1", "2", "", "3", "4", "5", "6", "7"]
    assert "agent " + sealed.agent_id + " (prod, langchain)" in timeline[0]
    assert "+ REDACTED" in timeline[3]
    assert "/payload/args/email" in timeline[3]
    marked = [line for line in timeline if line.startswith("!")]
    assert len(marked) == 4
    assert "issue_refund [call-1] -> error" in marked[0]
    assert "PaymentDeclined: card declined \\x1b[2J" in marked[1]
    assert "3 events dropped (NETWORK_LOSS)" in marked[2]
    assert "failure: refund declined" in marked[3]
    assert timeline[-1].endswith(f"CHAIN_SEAL            7 events before the seal, signed by {sealed.key_id}")


def test_fetch_writes_the_exact_archived_chain_the_key_set_and_the_log_proof(
    local_stack: LocalStackHandle, sealed: Sealed, tmp_path: Path
) -> None:
    fetched = cli(local_stack, "fetch", sealed.session_id, "--out", str(tmp_path / "evidence"))
    assert fetched.status == 0, fetched.err
    folder = tmp_path / "evidence"
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [f"{sealed.session_id}.jsonl", "keys.json", "log-proof.json", "manifest.json"]
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    chain, keys, log_proof = manifest["files"]
    assert manifest["unavailable"] == []
    proof = ApiClient(local_stack.base_url).get(f"/v1/sessions/{sealed.session_id}/log-proof").json()
    assert json.loads((folder / log_proof["name"]).read_text()) == proof
    session = ApiClient(local_stack.base_url).get(f"/v1/sessions/{sealed.session_id}").json()
    assert (chain["version_id"], chain["sha256"]) == (session["archive"]["version_id"], session["archive"]["sha256"])
    assert hashlib.sha256((folder / chain["name"]).read_bytes()).hexdigest() == session["archive"]["sha256"]
    assert [key["signer_key_id"] for key in json.loads((folder / "keys.json").read_text())["keys"]] == [sealed.key_id]
    assert keys["sha256"] == hashlib.sha256((folder / "keys.json").read_bytes()).hexdigest()


def test_the_verify_command_fetch_prints_checks_the_sessions_inclusion_in_the_evidence_log(
    local_stack: LocalStackHandle, sealed: Sealed, tmp_path: Path
) -> None:
    fetched = cli(local_stack, "fetch", sealed.session_id, "--out", str(tmp_path / "evidence"))
    assert fetched.status == 0, fetched.err
    command = shlex.split(fetched.out.splitlines()[-1])
    assert command[0] == "agentops-verify"
    assert {"--log-key", "--log-proof", "--require-log-inclusion"} <= set(command)
    verified = subprocess.run(
        [sys.executable, "-m", "agentops_verify", *command[1:], "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["log"]["included"] is True
    assert report["seal_key_id"] == sealed.key_id


def test_verify_with_the_pinned_key_trusts_the_seal(local_stack: LocalStackHandle, sealed: Sealed) -> None:
    verified = cli(local_stack, "verify", sealed.session_id, "--trusted-key", sealed.key_id)
    assert verified.status == 0, verified.err
    summary = verified.out.splitlines()[0].split("\t")
    assert summary == [f"{sealed.session_id}.jsonl", "PASS", "PARTIAL_AUTHORITATIVE_EVIDENCE", "LOG_DROP_PRESENT"]
    assert f"seal signed by {sealed.key_id} (trusted)" in verified.out
    # The fetched log proof is checked under the pinned key: the sealer published the session in the evidence log.
    (included,) = [line for line in verified.out.splitlines() if line.startswith("  included in ")]
    assert " at index " in included
    # The session dropped events: not authoritative, and the policy says so with the verifier's exit status.
    strict = cli(local_stack, "verify", sealed.session_id, "--trusted-key", sealed.key_id, "--require-authoritative")
    assert strict.status == 1
    assert "POLICY_VIOLATION" in strict.out


def test_verify_without_a_pinned_key_refuses_to_trust_the_fetched_keys(
    local_stack: LocalStackHandle, sealed: Sealed
) -> None:
    unpinned = cli(local_stack, "verify", sealed.session_id, "--format", "json")
    assert unpinned.status == 0, unpinned.err
    report = json.loads(unpinned.out)
    assert (report["seal_key_id"], report["seal_key_trusted"]) == (sealed.key_id, False)
    assert "UNTRUSTED_SEAL_KEY" in report["partial_reasons"]
    assert "the key set fetched from the service is not a trust anchor" in unpinned.err
    other = "sha256:" + "0" * 64
    wrong_pin = cli(local_stack, "verify", sealed.session_id, "--trusted-key", other, "--require-authoritative")
    assert wrong_pin.status == 1
    assert f"pinned key {other} is not among the keys the service published" in wrong_pin.err


def test_export_downloads_json_and_pdf_checked_against_their_sha256(
    local_stack: LocalStackHandle, sealed: Sealed, tmp_path: Path
) -> None:
    exported = cli(local_stack, "export", sealed.session_id, "--withhold", "2,4", cwd=tmp_path)
    assert exported.status == 0, exported.err
    name, size, sha256, evidence_class, _ = exported.out.strip().split("\t")
    document = (tmp_path / name).read_bytes()
    assert (len(document), f"sha256 {hashlib.sha256(document).hexdigest()}") == (int(size.split()[0]), sha256)
    assert evidence_class == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    withheld = [event for event in json.loads(document)["events"] if "payload" not in event]
    assert [event["sequence_number"] for event in withheld] == [2, 4]

    pdf = cli(local_stack, "export", sealed.session_id, "--format", "pdf", "--out", str(tmp_path / "report.pdf"))
    assert pdf.status == 0, pdf.err
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["show", "3f1c2b6e-0000-4000-8000-000000000001"], "HTTP 404 SESSION_NOT_FOUND: No session has this id."),
        (["fetch", "../../etc"], "is not a session id"),
        (["sessions", "--since", "yesterday"], "--since yesterday: give an RFC 3339 UTC time"),
        (["export", "3f1c2b6e-0000-4000-8000-000000000001", "--withhold", "x"], "--withhold x: give 'all'"),
    ],
)
def test_errors_exit_2_with_the_services_code_and_message(
    local_stack: LocalStackHandle, arguments: list[str], message: str
) -> None:
    failed = cli(local_stack, *arguments)
    assert failed.status == 2
    assert message in failed.err
    assert failed.out == ""


def test_fetch_of_an_open_session_says_it_is_not_sealed(local_stack: LocalStackHandle, tmp_path: Path) -> None:
    agent = ApiClient(local_stack.base_url, access_key_id=f"AKIDAGENT{uuid.uuid4().hex[:11].upper()}")
    session_id = str(uuid.uuid4())
    assert agent.post(f"/v1/sessions/{session_id}/events", {"events": [event(0, "SESSION_START")]}).status == 200
    failed = cli(local_stack, "fetch", session_id, "--out", str(tmp_path / "evidence"))
    assert failed.status == 2
    assert "HTTP 409 NOT_SEALED" in failed.err
    assert not any((tmp_path / "evidence").iterdir())


def test_no_endpoint_is_a_usage_error(local_stack: LocalStackHandle) -> None:
    failed = cli(local_stack, "sessions", endpoint=False)
    assert (failed.status, failed.err.strip()) == (
        2,
        "agentops-replay: error: no endpoint: pass --endpoint URL or set AGENTOPS_ENDPOINT",
    )
