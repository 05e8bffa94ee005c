"""Keyed content digests are accepted by the service's validation (redaction ``<key>_hash`` siblings included)."""

from __future__ import annotations

from agentops_replay import AgentOpsClient, content_digest

from tests.functional.sdk.evidence import assert_verifies, stored_chain
from tests.functional.sdk.fake_ingest import FakeIngest

Ingest = tuple[FakeIngest, str]
KEY = "owner-secret-0123456789abcdef0123456789abcdef"


def test_a_session_with_keyed_digests_and_keyed_redactions_is_accepted_and_verifies(ingest: Ingest) -> None:
    fake, endpoint = ingest
    client = AgentOpsClient(endpoint, flush_interval=0.05, content_digest_key=KEY)
    with client.session("agent") as session:
        session.model_request("m", messages=[{"role": "user", "content": "hi"}])
        session.tool_call("send_email", args={"to": "dana@example.com"}, tool_id="c1")
        session.record("TOOL_RESULT", session.redact({"tool_name": "send_email", "result": {"id": 7}}, "result"))
    assert client.flush(timeout=10)
    client.close(timeout=1)

    assert fake.refused == []
    assert_verifies(fake, session.session_id)
    result = stored_chain(fake, session.session_id)[3]["payload"]
    assert result == {"tool_name": "send_email", "result": "[REDACTED]", "result_hash": content_digest({"id": 7}, KEY)}
