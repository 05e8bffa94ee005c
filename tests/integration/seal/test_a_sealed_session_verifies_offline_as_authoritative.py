"""Sealing through the local stack, end to end over HTTP, checked the way an auditor checks: offline, with the CLI.

Ingest -> end -> ``POST /_local/seal`` -> ``GET /chain`` -> download the presigned archive version ->
``agentops-verify`` with the keys from ``GET /v1/keys`` pinned.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle, running_local_stack
from tests.integration.ingest.builders import batch_body, event, new_session_id, opening_batch

pytestmark = pytest.mark.integration


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # a presigned URL needs no credentials
        body: bytes = response.read()
        return body


def verify_offline(tmp_path: Path, chain: bytes, keys: bytes) -> dict[str, Any]:
    """Run the verifier CLI on the downloaded chain with the published keys trusted, as an auditor would."""
    chain_file = tmp_path / "chain.jsonl"
    keys_file = tmp_path / "keys.json"
    chain_file.write_bytes(chain)
    keys_file.write_bytes(keys)
    completed = subprocess.run(
        [sys.executable, "-m", "agentops_verify", "--format", "json", "--trusted-key", str(keys_file), str(chain_file)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    assert completed.returncode == (0 if report["status"] == "PASS" else 1), completed.stderr
    return report


def fetch_archive(api: ApiClient, session_id: str) -> tuple[dict[str, Any], bytes]:
    response = api.get(f"/v1/sessions/{session_id}/chain")
    assert response.status == 200, response.body
    chain: dict[str, Any] = response.json()
    body = download(chain["url"])
    assert hashlib.sha256(body).hexdigest() == chain["sha256"]
    return chain, body


def test_ended_session_downloaded_through_chain_verifies_offline_as_authoritative(
    api: ApiClient, local_stack: LocalStackHandle, tmp_path: Path
) -> None:
    session_id = new_session_id()
    path = f"/v1/sessions/{session_id}/events"
    assert api.post(path, batch_body(opening_batch(extra_events=2))).status == 200
    assert api.post(path, batch_body([event(3, "TOOL_CALL"), event(4, "SESSION_END")])).status == 200
    assert api.get(f"/v1/sessions/{session_id}/chain").error_code == "NOT_SEALED"

    assert session_id in local_stack.seal_now()

    chain, body = fetch_archive(api, session_id)
    assert chain["bucket"] == local_stack.info["archive_bucket"]
    assert chain["key"] == f"sessions/{session_id}.jsonl"
    keys = api.get("/v1/keys")
    assert keys.status == 200
    report = verify_offline(tmp_path, body, keys.body)
    assert (report["status"], report["evidence_class"], report["event_count"]) == ("PASS", "AUTHORITATIVE_EVIDENCE", 6)
    assert report["seal_key_id"] in [entry["signer_key_id"] for entry in keys.json()["keys"]]
    view = api.get(f"/v1/sessions/{session_id}").json()
    assert (view["status"], view["evidence_class"]) == ("SEALED", "AUTHORITATIVE_EVIDENCE")
    assert view["archive"]["version_id"] == chain["version_id"]


def test_without_a_trusted_key_the_same_chain_is_only_partial(
    api: ApiClient, local_stack: LocalStackHandle, tmp_path: Path
) -> None:
    """A key shipped inside the evidence is never a trust anchor (ELS section 5): the auditor must pin one."""
    session_id = new_session_id()
    path = f"/v1/sessions/{session_id}/events"
    assert api.post(path, batch_body([*opening_batch(extra_events=1), event(2, "SESSION_END")])).status == 200
    local_stack.seal_now()
    _, body = fetch_archive(api, session_id)
    chain_file = tmp_path / "chain.jsonl"
    chain_file.write_bytes(body)
    completed = subprocess.run(
        [sys.executable, "-m", "agentops_verify", "--format", "json", str(chain_file)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    report = json.loads(completed.stdout)
    assert (report["status"], report["evidence_class"]) == ("PASS", "PARTIAL_AUTHORITATIVE_EVIDENCE")
    assert report["partial_reasons"] == ["UNTRUSTED_SEAL_KEY"]


def test_append_after_the_seal_is_refused_and_the_archive_is_unchanged(
    api: ApiClient, local_stack: LocalStackHandle
) -> None:
    session_id = new_session_id()
    path = f"/v1/sessions/{session_id}/events"
    assert api.post(path, batch_body([*opening_batch(extra_events=1), event(2, "SESSION_END")])).status == 200
    local_stack.seal_now()
    before, body = fetch_archive(api, session_id)

    refused = api.post(path, batch_body([event(4)]))
    assert (refused.status, refused.error_code) == (409, "SESSION_SEALED")
    assert session_id not in local_stack.seal_now()  # sealing twice changes nothing

    after, body_after = fetch_archive(api, session_id)
    assert after["version_id"] == before["version_id"]
    assert body_after == body


def test_idle_session_seals_as_partial_with_missing_session_end(tmp_path: Path) -> None:
    with running_local_stack(tmp_path / "idle-stack.log", {"SEAL_IDLE_SECONDS": "1"}) as stack:
        api = ApiClient(stack.base_url, access_key_id="AKIDIDLEAGENT0000001")
        session_id = new_session_id()
        assert api.post(f"/v1/sessions/{session_id}/events", batch_body(opening_batch(extra_events=2))).status == 200
        time.sleep(2.5)  # idle for longer than SEAL_IDLE_SECONDS

        assert session_id in stack.seal_now()

        _, body = fetch_archive(api, session_id)
        report = verify_offline(tmp_path, body, api.get("/v1/keys").body)
        assert (report["status"], report["evidence_class"], report["partial_reasons"]) == (
            "PASS",
            "PARTIAL_AUTHORITATIVE_EVIDENCE",
            ["MISSING_SESSION_END"],
        )
        view = api.get(f"/v1/sessions/{session_id}").json()
        assert (view["status"], view["evidence_class"]) == ("SEALED", "PARTIAL_AUTHORITATIVE_EVIDENCE")
