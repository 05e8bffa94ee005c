"""Replay and exports over real HTTP against the local stack: a sealed session with a LOG_DROP and a redacted value,
replayed page by page, exported as JSON (whole and selectively disclosed) and PDF, downloaded through the presigned
links, and verified offline with the key from GET /v1/keys."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle

pytestmark = pytest.mark.integration

REDACTED_ARGS = {"customer_email": "[REDACTED]", "customer_email_hash": "c" * 64, "order": "A-1001"}


def _event(sequence: int, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence,
        "timestamp_wall": f"2026-01-01T12:00:{sequence:02d}.000Z",
        "event_type": event_type,
        "payload": payload,
    }


def _session_events() -> list[dict[str, Any]]:
    return [
        _event(0, "SESSION_START", {"agent_id": "support-agent"}),
        _event(1, "MODEL_REQUEST", {"model": "m-1", "messages": [{"role": "user", "content": "refund order A-1001"}]}),
        _event(2, "TOOL_CALL", {"tool_name": "refund", "args": REDACTED_ARGS}),
        _event(3, "LOG_DROP", {"dropped_count": 2, "cumulative_drops": 2, "drop_reason": "BUFFER_FULL"}),
        _event(4, "TOOL_RESULT", {"tool_name": "refund", "result": {"ok": True}, "status": "success"}),
        _event(5, "SESSION_END", {"status": "success"}),
    ]


@pytest.fixture(scope="module")
def sealed_session(local_stack: LocalStackHandle) -> tuple[ApiClient, str]:
    api = ApiClient(local_stack.base_url, access_key_id=f"AKID{uuid.uuid4().hex[:16].upper()}")
    session_id = str(uuid.uuid4())
    posted = api.post(f"/v1/sessions/{session_id}/events", {"events": _session_events()})
    assert posted.status == 200, posted.body
    assert session_id in local_stack.seal_now()
    return api, session_id


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
        return data


def _verify_offline(tmp_path: Path, api: ApiClient, document: bytes) -> dict[str, Any]:
    keys = api.get("/v1/keys")
    assert keys.status == 200
    (tmp_path / "keys.json").write_bytes(keys.body)
    (tmp_path / "export.json").write_bytes(document)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentops_verify",
            "--format",
            "json",
            "--trusted-key",
            str(tmp_path / "keys.json"),
            str(tmp_path / "export.json"),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_replay_pages_show_the_drop_and_the_redaction(sealed_session: tuple[ApiClient, str]) -> None:
    api, session_id = sealed_session

    first = api.get(f"/v1/sessions/{session_id}/replay?limit=3")
    second = api.get(f"/v1/sessions/{session_id}/replay?from_sequence=3&limit=200")

    assert first.status == 200
    assert second.status == 200
    assert first.json()["next_from_sequence"] == 3
    assert second.json()["next_from_sequence"] is None
    frames = first.json()["frames"] + second.json()["frames"]
    assert [(frame["type"], frame["sequence_number"]) for frame in frames] == [
        ("EVENT", 0),
        ("EVENT", 1),
        ("EVENT", 2),
        ("REDACTION", 2),
        ("LOG_DROP", 3),
        ("EVENT", 4),
        ("EVENT", 5),
        ("EVENT", 6),
    ]
    assert frames[3]["pointers"] == ["/payload/args/customer_email"]
    verification = first.json()["verification"]
    assert verification["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert verification["partial_reasons"] == ["LOG_DROP_PRESENT"]


def test_json_export_downloads_and_verifies_offline_with_the_published_key(
    sealed_session: tuple[ApiClient, str], tmp_path: Path
) -> None:
    api, session_id = sealed_session

    created = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})

    assert created.status == 201, created.body
    body = created.json()
    document = _download(body["url"])
    report = _verify_offline(tmp_path, api, document)
    assert report["evidence_class"] == body["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert report["seal_key_trusted"] is True


def test_selective_export_verifies_offline_with_the_same_class(
    sealed_session: tuple[ApiClient, str], tmp_path: Path
) -> None:
    api, session_id = sealed_session

    created = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json", "withhold_payloads": [1, 2]})

    assert created.status == 201, created.body
    report = _verify_offline(tmp_path, api, _download(created.json()["url"]))
    assert report["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert "PAYLOAD_WITHHELD" in [warning["type"] for warning in report["warnings"]]


def test_pdf_export_downloads(sealed_session: tuple[ApiClient, str]) -> None:
    api, session_id = sealed_session

    created = api.post(f"/v1/sessions/{session_id}/exports", {"format": "pdf"})

    assert created.status == 201, created.body
    assert _download(created.json()["url"]).startswith(b"%PDF-")
