"""What the command line does with answers the local stack does not give on demand: downloads that are not what the
service published, an export written asynchronously, a chain that does not verify, and paging."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from agentops_replay.cli import _main, main

from tests.functional.cli.conftest import SESSION_ID, FakeService

CHAIN = b'{"event_type":"SESSION_START"}\n'


def chain_answer(service: FakeService, *, sha256: str, version_in_link: str = "v1") -> dict[str, Any]:
    return {
        "bucket": "archive",
        "key": f"sessions/{SESSION_ID}.jsonl",
        "version_id": "v1",
        "sha256": sha256,
        "url": f"{service.base_url}/archive/sessions/{SESSION_ID}.jsonl?versionId={version_in_link}&X-Amz-Signature=x",
        "expires_in": 900,
    }


def test_a_chain_that_does_not_match_its_published_sha256_is_not_kept(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service.on("GET", f"/v1/sessions/{SESSION_ID}/chain", (200, chain_answer(service, sha256="0" * 64)))
    service.on("GET", f"/archive/sessions/{SESSION_ID}.jsonl", (200, CHAIN))
    assert main(["fetch", SESSION_ID, "--out", str(tmp_path)]) == 1
    assert "the downloaded bytes have SHA-256" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_link_to_another_version_than_the_archived_one_is_refused(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = chain_answer(service, sha256=hashlib.sha256(CHAIN).hexdigest(), version_in_link="v0")
    service.on("GET", f"/v1/sessions/{SESSION_ID}/chain", (200, answer))
    service.on("GET", f"/archive/sessions/{SESSION_ID}.jsonl", (200, CHAIN))
    assert main(["fetch", SESSION_ID, "--out", str(tmp_path)]) == 2
    assert "is not for the archived version v1" in capsys.readouterr().err
    assert [request.path for request in service.requests] == [f"/v1/sessions/{SESSION_ID}/chain"]


def test_a_link_that_is_not_http_is_never_opened(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = chain_answer(service, sha256="0" * 64) | {"url": "file:///etc/passwd?versionId=v1"}
    service.on("GET", f"/v1/sessions/{SESSION_ID}/chain", (200, answer))
    assert main(["fetch", SESSION_ID, "--out", str(tmp_path)]) == 2
    assert "not http(s)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_pending_export_is_waited_for_then_downloaded(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_main, "EXPORT_POLL_SECONDS", 0.01)
    document = b'{"export":"document"}'
    written = {
        "export_id": "e-1",
        "format": "json",
        "bucket": "archive",
        "key": f"exports/{SESSION_ID}/e-1.json",
        "version_id": "v1",
        "sha256": hashlib.sha256(document).hexdigest(),
        "url": f"{service.base_url}/archive/exports/e-1.json",
        "expires_in": 900,
        "evidence_class": "AUTHORITATIVE_EVIDENCE",
    }
    pending = {"export_id": "e-1", "format": "json", "status": "PENDING"}
    service.on("POST", f"/v1/sessions/{SESSION_ID}/exports", (202, pending))
    service.on("GET", f"/v1/sessions/{SESSION_ID}/exports/e-1", (202, pending), (202, pending), (200, written))
    service.on("GET", "/archive/exports/e-1.json", (200, document))
    out = tmp_path / "export.json"
    assert main(["export", SESSION_ID, "--withhold", "all", "--out", str(out)]) == 0
    assert out.read_bytes() == document
    assert json.loads(service.requests[0].body) == {"format": "json", "withhold_payloads": True}
    polls = [r for r in service.requests if r.path == f"/v1/sessions/{SESSION_ID}/exports/e-1"]
    assert len(polls) == 3
    assert "AUTHORITATIVE_EVIDENCE" in capsys.readouterr().out


def test_show_of_a_chain_that_does_not_verify_names_the_violation_and_exits_1(
    service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.on("GET", f"/v1/sessions/{SESSION_ID}", (200, {"status": "SEALED", "event_count": 3}))
    violation = {"type": "PAYLOAD_HASH_MISMATCH", "message": "payload changed", "event_sequence": 0}
    refused = {
        "error": {"code": "VERIFICATION_FAILED", "message": "does not verify", "details": {"violations": [violation]}}
    }
    service.on("GET", f"/v1/sessions/{SESSION_ID}/replay", (422, refused))
    assert main(["show", SESSION_ID]) == 1
    assert "PAYLOAD_HASH_MISMATCH at sequence 0: payload changed" in capsys.readouterr().out


def frame(sequence: int) -> dict[str, Any]:
    event = {"event_type": "TOOL_CALL", "timestamp_wall": "2026-01-01T12:00:00Z", "payload": {"tool_name": "t"}}
    return {"type": "EVENT", "sequence_number": sequence, "event": event}


def test_show_follows_next_from_sequence_to_the_last_page(
    service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.on("GET", f"/v1/sessions/{SESSION_ID}", (200, {"status": "OPEN", "event_count": 3}))
    verification = {"status": "PASS", "evidence_class": "PARTIAL_AUTHORITATIVE_EVIDENCE", "partial_reasons": []}
    first = {"verification": verification, "warnings": [], "frames": [frame(0), frame(1)], "next_from_sequence": 2}
    last = {"verification": verification, "warnings": [], "frames": [frame(2)], "next_from_sequence": None}
    service.on("GET", f"/v1/sessions/{SESSION_ID}/replay", (200, first), (200, last))
    assert main(["show", SESSION_ID]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "TOOL_CALL" in line]
    assert [row.split()[0] for row in rows] == ["0", "1", "2"]
    replays = [request.query for request in service.requests if request.path.endswith("/replay")]
    assert replays == [{"from_sequence": ["0"], "limit": ["1000"]}, {"from_sequence": ["2"], "limit": ["1000"]}]


def test_sessions_pages_with_next_token_up_to_the_limit(
    service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    def row(n: int) -> dict[str, Any]:
        return {"session_id": f"s-{n}", "agent_id": "a", "status": "SEALED", "event_count": n}

    service.on(
        "GET",
        "/v1/sessions",
        (200, {"sessions": [row(1), row(2)], "next_token": "t1"}),
        (200, {"sessions": [row(3)], "next_token": "t2"}),
    )
    assert main(["sessions", "--limit", "3", "--agent-id", "a", "--format", "json"]) == 0
    assert [r["session_id"] for r in json.loads(capsys.readouterr().out)["sessions"]] == ["s-1", "s-2", "s-3"]
    assert [request.query for request in service.requests] == [
        {"agent_id": ["a"], "limit": ["3"]},
        {"agent_id": ["a"], "limit": ["1"], "next_token": ["t1"]},
    ]


def test_every_request_is_signed_with_sigv4_for_execute_api(
    service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.on("GET", "/v1/sessions", (200, {"sessions": [], "next_token": None}))
    assert main(["sessions", "--status", "open"]) == 0
    (request,) = service.requests
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDCLIFUNCTIONAL/")
    assert "/us-east-1/execute-api/aws4_request" in request.headers["authorization"]
    assert request.query == {"status": ["OPEN"], "limit": ["50"]}
    assert "no sessions match" in capsys.readouterr().err


def test_an_api_gateway_refusal_without_a_code_is_reported_with_its_message(
    service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.on("GET", "/v1/keys", (403, {"message": "User is not authorized\x1b[31m"}))
    service.on("GET", f"/v1/sessions/{SESSION_ID}/chain", (200, chain_answer(service, sha256="0" * 64)))
    service.on("GET", f"/archive/sessions/{SESSION_ID}.jsonl", (200, CHAIN))
    assert main(["verify", SESSION_ID]) == 1  # the chain's checksum comes first
    service.on(
        "GET",
        f"/v1/sessions/{SESSION_ID}/chain",
        (200, chain_answer(service, sha256=hashlib.sha256(CHAIN).hexdigest())),
    )
    capsys.readouterr()
    assert main(["verify", SESSION_ID]) == 2
    assert capsys.readouterr().err.strip() == "agentops-replay: error: HTTP 403: User is not authorized\\x1b[31m"


def test_without_credentials_nothing_is_sent(
    service: FakeService, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["sessions"]) == 2
    assert "no AWS credentials found" in capsys.readouterr().err
    assert service.requests == []


LOG_PROOF = {
    "checkpoint": "agentops-replay/test\n1\nAAAA\n\n\u2014 agentops-replay/test sig\n",
    "leaf_index": 0,
    "leaf": {"session_id": SESSION_ID},
    "inclusion_proof": [],
}


def sealed_chain(service: FakeService) -> None:
    service.on(
        "GET",
        f"/v1/sessions/{SESSION_ID}/chain",
        (200, chain_answer(service, sha256=hashlib.sha256(CHAIN).hexdigest())),
    )
    service.on("GET", f"/archive/sessions/{SESSION_ID}.jsonl", (200, CHAIN))
    service.on("GET", "/v1/keys", (200, {"keys": []}))


def test_fetch_saves_the_log_proof_and_prints_the_verify_command_that_checks_inclusion(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed_chain(service)
    service.on("GET", f"/v1/sessions/{SESSION_ID}/log-proof", (200, LOG_PROOF))
    folder = tmp_path / "evidence"
    assert main(["fetch", SESSION_ID, "--out", str(folder)]) == 0

    assert json.loads((folder / "log-proof.json").read_text(encoding="utf-8")) == LOG_PROOF
    manifest = json.loads((folder / "manifest.json").read_text())
    (listed,) = [entry for entry in manifest["files"] if entry["role"] == "log_proof"]
    assert listed["route"] == f"GET /v1/sessions/{SESSION_ID}/log-proof"
    assert listed["sha256"] == hashlib.sha256((folder / "log-proof.json").read_bytes()).hexdigest()
    assert manifest["unavailable"] == []
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        f"agentops-verify --trusted-key {folder}/keys.json --log-key {folder}/keys.json "
        f"--log-proof {folder}/log-proof.json --require-log-inclusion {folder}/{SESSION_ID}.jsonl"
    )


@pytest.mark.parametrize(
    ("status", "code"), [(409, "LOG_PENDING"), (409, "NOT_SEALED"), (404, "SESSION_NOT_FOUND"), (404, "NOT_FOUND")]
)
def test_a_session_not_yet_in_the_log_is_said_plainly_and_the_rest_is_fetched(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int, code: str
) -> None:
    sealed_chain(service)
    pending = {"error": {"code": code, "message": "Not in a published checkpoint yet.", "details": {}}}
    service.on("GET", f"/v1/sessions/{SESSION_ID}/log-proof", (status, pending))
    folder = tmp_path / "evidence"
    assert main(["fetch", SESSION_ID, "--out", str(folder)]) == 0

    assert sorted(path.name for path in folder.iterdir()) == [f"{SESSION_ID}.jsonl", "keys.json", "manifest.json"]
    assert json.loads((folder / "manifest.json").read_text())["unavailable"] == [
        {
            "role": "log_proof",
            "route": f"GET /v1/sessions/{SESSION_ID}/log-proof",
            "answer": f"HTTP {status} {code}: Not in a published checkpoint yet.",
        }
    ]
    printed = capsys.readouterr()
    assert f"no log proof yet: GET /v1/sessions/{SESSION_ID}/log-proof answered HTTP {status} {code}" in printed.err
    command = printed.out.splitlines()[-1]
    assert command == f"agentops-verify --trusted-key {folder}/keys.json {folder}/{SESSION_ID}.jsonl"


def test_a_failing_log_proof_route_fails_the_fetch(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed_chain(service)
    failed = {"error": {"code": "INTERNAL_ERROR", "message": "The service failed; retry the same request."}}
    service.on("GET", f"/v1/sessions/{SESSION_ID}/log-proof", (500, failed))
    folder = tmp_path / "evidence"
    assert main(["fetch", SESSION_ID, "--out", str(folder)]) == 2
    assert "HTTP 500 INTERNAL_ERROR" in capsys.readouterr().err
    assert not (folder / "manifest.json").exists()
    assert not (folder / "log-proof.json").exists()
