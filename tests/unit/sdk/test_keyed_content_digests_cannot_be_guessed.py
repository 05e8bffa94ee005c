"""Keyed content digests: with a content digest key, content recorded as a digest cannot be recovered by guessing.

Without a key a digest is plain SHA-256 of the value's canonical form, and a short or predictable value (an id
number, a yes/no answer) is found by hashing candidates. With ``content_digest_key`` every content digest, redaction
``<key>_hash`` values included, is ``"hmac-sha256:" + HMAC-SHA256(key, JCS(value))``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentops_replay import AgentOpsClient, Session, content_digest
from agentops_replay.integrations.langchain import AgentOpsCallbackHandler
from agentops_verify import NON_AUTHORITATIVE_EVIDENCE, PASS, canonicalize, payload_hash, verify_bytes
from langchain_core.agents import AgentAction, AgentFinish

from tests.support.local_chains import local_chain

KEY = b"owner-secret-0123456789abcdef0123456789abcdef"

MESSAGES = [{"role": "user", "content": "my id number is 4711"}]
COMPLETION = "Your order is on its way."
ARGS = {"id_number": 4711}
RESULT = {"status": "found"}
JUSTIFICATION = "the customer is known"
EMAIL_ARGS = {"to": "dana@example.com"}
TOOL_INPUT = {"order_id": "A1"}
RETURN_VALUES = {"output": "done"}
ORIGINALS: list[Any] = [MESSAGES, COMPLETION, ARGS, RESULT, JUSTIFICATION, EMAIL_ARGS, TOOL_INPUT, RETURN_VALUES]


def _digests(value: Any) -> list[str]:
    """Every value under a ``*_hash`` key, at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_hash") and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_digests(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_digests(item))
    return found


def _record_everything(session: Session) -> None:
    session.model_request("m", messages=MESSAGES)
    session.model_response("m", content=COMPLETION)
    session.tool_call("lookup", args=ARGS, tool_id="c1")
    session.tool_result("lookup", result=RESULT, tool_id="c1")
    session.decision("d1", inputs={}, outputs={}, justification=JUSTIFICATION)
    session.record("TOOL_CALL", session.redact({"tool_name": "send_email", "args": EMAIL_ARGS}, "args"))
    handler = AgentOpsCallbackHandler(session)
    handler.on_agent_action(AgentAction(tool="lookup", tool_input=TOOL_INPUT, log="look"), run_id=uuid.uuid4())
    handler.on_agent_finish(AgentFinish(return_values=RETURN_VALUES, log="done"), run_id=uuid.uuid4())
    session.end()


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[AgentOpsClient]:
    client = AgentOpsClient(local_path=tmp_path, flush_interval=0.05, content_digest_key=KEY)
    yield client
    client.close(timeout=2)


def test_with_a_key_no_content_digest_in_the_evidence_is_the_plain_sha256_of_its_content(
    keyed_client: AgentOpsClient,
) -> None:
    session = keyed_client.start_session("agent")
    _record_everything(session)
    assert keyed_client.flush(timeout=5)

    chain = local_chain(keyed_client, session)
    digests = [
        digest for event in chain for digest in _digests(event["payload"]) if event["event_type"] != "CHAIN_SEAL"
    ]
    # prompt, completion, args, result, e-mail, tool input, return values, three justifications
    assert len(digests) == 10
    assert all(digest.startswith("hmac-sha256:") for digest in digests)
    chain_text = b"".join(line for line in (canonicalize(event) for event in chain))
    for original in ORIGINALS:
        assert payload_hash(original).encode() not in chain_text
    assert {content_digest(original, KEY) for original in ORIGINALS} <= set(digests)
    report = verify_bytes(chain_text.replace(b"}{", b"}\n{"))
    assert (report.status, report.evidence_class) == (PASS, NON_AUTHORITATIVE_EVIDENCE), report.violations


def test_a_short_withheld_value_is_found_by_guessing_a_plain_digest_but_not_a_keyed_one(tmp_path: Path) -> None:
    recorded = {}
    for name, key in (("plain", None), ("keyed", KEY)):
        client = AgentOpsClient(local_path=tmp_path / name, flush_interval=0.05, content_digest_key=key)
        session = client.start_session("agent")
        session.tool_call("lookup_citizen", args={"id_number": 4711})
        session.end()
        assert client.flush(timeout=5)
        recorded[name] = local_chain(client, session)[1]["payload"]["args_hash"]
        client.close(timeout=1)

    guesses = {payload_hash({"id_number": candidate}): candidate for candidate in range(10_000)}
    assert guesses.get(recorded["plain"]) == 4711
    assert recorded["keyed"] not in guesses
    assert recorded["keyed"].removeprefix("hmac-sha256:") not in guesses


def test_an_owner_proves_a_value_by_disclosing_it_with_the_key(keyed_client: AgentOpsClient) -> None:
    session = keyed_client.start_session("agent")
    session.tool_call("lookup_citizen", args=ARGS)
    session.end()
    assert keyed_client.flush(timeout=5)
    recorded = local_chain(keyed_client, session)[1]["payload"]["args_hash"]

    # What the README tells an auditor to run with the disclosed value and key:
    algorithm, _, digest = recorded.partition(":")
    assert algorithm == "hmac-sha256"
    assert hmac.compare_digest(digest, hmac.new(KEY, canonicalize(ARGS), hashlib.sha256).hexdigest())
    assert not hmac.compare_digest(digest, hmac.new(KEY, canonicalize({"id_number": 4712}), hashlib.sha256).hexdigest())


def test_the_key_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPS_CONTENT_DIGEST_KEY", KEY.decode())
    client = AgentOpsClient(local_path=tmp_path, flush_interval=0.05)
    session = client.start_session("agent")
    session.tool_call("lookup", args=ARGS)
    session.end()
    assert client.flush(timeout=5)
    client.close(timeout=1)

    assert local_chain(client, session)[1]["payload"]["args_hash"] == content_digest(ARGS, KEY)
    assert session.digest(ARGS) == content_digest(ARGS, KEY)


def test_an_empty_key_disables_recording_rather_than_record_guessable_digests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="agentops_replay"):
        client = AgentOpsClient(local_path=tmp_path, content_digest_key=b"")

    assert client.disabled
    assert "cannot set up delivery; recording is disabled" in caplog.text
    assert client.start_session("agent").tool_call("lookup", args=ARGS) is None
    assert list(tmp_path.iterdir()) == []
