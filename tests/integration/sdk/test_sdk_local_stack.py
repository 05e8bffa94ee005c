"""The SDK against the local stack over real HTTP: record, end, seal, download, verify as an auditor would."""

from __future__ import annotations

import hashlib
import urllib.request

import pytest
from agentops_replay import AgentOpsClient
from agentops_verify import AUTHORITATIVE_EVIDENCE, PASS, TrustStore, parse_key_file, verify_bytes

from tests.support.http import ApiClient
from tests.support.local_stack import LocalStackHandle

pytestmark = pytest.mark.integration


def test_a_200_event_session_recorded_by_the_sdk_seals_as_authoritative_evidence(
    api: ApiClient, local_stack: LocalStackHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.access_key_id is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", api.access_key_id)  # the SDK signs as this test's principal
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", api.secret_access_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AGENTOPS_DISABLED", raising=False)
    client = AgentOpsClient(local_stack.base_url, batch_size=50, flush_interval=0.1)

    with client.session("integration-agent", environment="dev", tags=["integration"]) as session:
        for turn in range(50):
            session.model_request("gpt-test", messages=[{"role": "user", "content": f"turn {turn}"}])
            session.model_response("gpt-test", content=f"answer {turn}", finish_reason="stop")
            session.tool_call("lookup", args={"turn": turn}, tool_id=f"call-{turn}")
            session.tool_result("lookup", result={"ok": True}, tool_id=f"call-{turn}", status="success")
    assert client.flush(timeout=60)
    assert client.close(timeout=5)
    assert client.stats()["sent"] == 202

    assert session.session_id in local_stack.seal_now()
    chain = api.get(f"/v1/sessions/{session.session_id}/chain")
    assert chain.status == 200, chain.body
    with urllib.request.urlopen(chain.json()["url"], timeout=30) as response:  # presigned: no credentials
        archive = response.read()
    assert hashlib.sha256(archive).hexdigest() == chain.json()["sha256"]
    keys = api.get("/v1/keys")
    assert keys.status == 200

    report = verify_bytes(archive, trust=TrustStore(parse_key_file(keys.body)))

    assert (report.status, report.evidence_class) == (PASS, AUTHORITATIVE_EVIDENCE), report.violations
    assert report.event_count == 203
    assert report.session_id == session.session_id
    assert report.total_drops == 0
