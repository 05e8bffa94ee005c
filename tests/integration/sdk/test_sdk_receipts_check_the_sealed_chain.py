"""Receipts over the local stack: the file the SDK keeps checks the sealed chain with ``agentops-verify --receipts``.

An agent's owner downloads the sealed chain (``GET /v1/sessions/{id}/chain``) and the keys (``GET /v1/keys``) and runs
``agentops-verify --receipts receipts.jsonl --trusted-key keys.json chain.jsonl``. It passes when the service sealed
what it acknowledged, and fails with RECEIPT_MISMATCH when someone who could write the table changed an acknowledged
event before sealing, even when they re-hashed the chain from the edit on so that it verifies on its own.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from agentops_replay import AgentOpsClient
from agentops_server.aws.dynamodb_batches import decode_lines, encode_lines
from agentops_verify import PRODUCER_FIELDS, canonicalize, chain_event, loads

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle

pytestmark = pytest.mark.integration

AGENTOPS_VERIFY = str(Path(sys.executable).with_name("agentops-verify"))


@pytest.fixture
def receipts_path(tmp_path: Path) -> Path:
    return tmp_path / "receipts.jsonl"


@pytest.fixture
def client(
    api: ApiClient, local_stack: LocalStackHandle, receipts_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AgentOpsClient]:
    assert api.access_key_id is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", api.access_key_id)  # the SDK signs as this test's principal
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", api.secret_access_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AGENTOPS_DISABLED", raising=False)
    recorder = AgentOpsClient(local_stack.base_url, batch_size=5, flush_interval=0.05, receipts_path=receipts_path)
    yield recorder
    recorder.close(timeout=5)


def _record_session(client: AgentOpsClient) -> str:
    with client.session("receipts-agent", environment="dev") as session:
        for turn in range(12):
            session.tool_call("lookup", args={"turn": turn}, tool_id=f"call-{turn}")
            session.tool_result("lookup", result={"ok": True}, tool_id=f"call-{turn}", status="success")
    assert client.flush(timeout=60)
    return session.session_id


def _verify_with_receipts(
    api: ApiClient, session_id: str, receipts_path: Path, tmp_path: Path
) -> tuple[int, dict[str, Any]]:
    """What the agent's owner runs: download the sealed chain and the keys, then agentops-verify --receipts."""
    chain = api.get(f"/v1/sessions/{session_id}/chain")
    assert chain.status == 200, chain.body
    with urllib.request.urlopen(chain.json()["url"], timeout=30) as response:  # presigned: no credentials
        archive = response.read()
    assert hashlib.sha256(archive).hexdigest() == chain.json()["sha256"]
    keys = api.get("/v1/keys")
    assert keys.status == 200
    (tmp_path / "chain.jsonl").write_bytes(archive)
    (tmp_path / "keys.json").write_bytes(keys.body)
    command = [AGENTOPS_VERIFY, "--format", "json", "--trusted-key", str(tmp_path / "keys.json")]
    with_receipts = [*command, "--receipts", str(receipts_path), str(tmp_path / "chain.jsonl")]
    completed = subprocess.run(with_receipts, capture_output=True, check=False, timeout=60)
    report: dict[str, Any] = json.loads(completed.stdout)
    # Without the receipts, the same chain is a good one: only what the agent was told shows the difference.
    alone = subprocess.run([*command, str(tmp_path / "chain.jsonl")], capture_output=True, check=False, timeout=60)
    assert alone.returncode == 0, alone.stdout
    assert json.loads(alone.stdout)["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
    return completed.returncode, report


def _rewrite_stored_session_from(local_stack: LocalStackHandle, session_id: str, sequence_number: int) -> None:
    """An insider with write access to the table: edit the payload of one stored event, then re-hash it and every
    later event, batch by batch, so that the stored chain still verifies (and the sealer seals it)."""
    info = local_stack.info
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=info["aws_endpoint"],
        region_name=info["region"],
        aws_access_key_id="local-stack",
        aws_secret_access_key="local-stack",
    )
    items = dynamodb.query(
        TableName=info["table"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
        ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}, ":batch": {"S": "B#"}},
        ConsistentRead=True,
    )["Items"]
    previous_hash: str | None = None
    for item in items:  # in sequence order (the sort key is the zero-padded first sequence number)
        events = [loads(line) for line in decode_lines(item["events"]["B"])]
        if events[-1]["sequence_number"] < sequence_number:
            previous_hash = events[-1]["event_hash"]
            continue
        rewritten = []
        for event in events:
            if event["sequence_number"] == sequence_number:
                event["payload"] = {**event["payload"], "tool_name": "transfer_funds"}
            stored = event
            if event["sequence_number"] >= sequence_number:
                stored = chain_event(
                    **{key: event[key] for key in PRODUCER_FIELDS},
                    prev_event_hash=previous_hash,
                    chain_authority=event["chain_authority"],
                    authority_id=event["authority_id"],
                )
            rewritten.append(stored)
            previous_hash = stored["event_hash"]
        dynamodb.update_item(
            TableName=info["table"],
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET events = :events, last_hash = :last",
            ExpressionAttributeValues={
                ":events": {"B": encode_lines(tuple(canonicalize(event) for event in rewritten))},
                ":last": {"S": rewritten[-1]["event_hash"]},
            },
        )


def test_the_sdks_receipts_pass_against_the_sealed_chain(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient, receipts_path: Path, tmp_path: Path
) -> None:
    session_id = _record_session(client)
    assert session_id in local_stack.seal_now()

    status, report = _verify_with_receipts(api, session_id, receipts_path, tmp_path)

    assert status == 0, report
    assert (report["status"], report["evidence_class"]) == ("PASS", "AUTHORITATIVE_EVIDENCE")
    receipts = [json.loads(line) for line in receipts_path.read_bytes().splitlines()]
    assert [r["sequence_number"] for r in receipts] == list(range(26))  # every event, once; the seal is not the SDK's
    assert {r["session_id"] for r in receipts} == {session_id}


def test_receipts_fail_the_chain_after_the_stored_session_was_changed_before_sealing(
    api: ApiClient, local_stack: LocalStackHandle, client: AgentOpsClient, receipts_path: Path, tmp_path: Path
) -> None:
    session_id = _record_session(client)
    _rewrite_stored_session_from(local_stack, session_id, sequence_number=7)
    assert session_id in local_stack.seal_now()  # the rewritten chain verifies, so the sealer seals it

    status, report = _verify_with_receipts(api, session_id, receipts_path, tmp_path)

    assert status == 1, report
    assert report["status"] == "FAIL"
    [violation] = report["violations"]
    assert (violation["type"], violation["event_sequence"]) == ("RECEIPT_MISMATCH", 7)
    acknowledged = json.loads(receipts_path.read_bytes().splitlines()[7])
    assert violation["context"]["acknowledged"] == {
        "event_id": acknowledged["event_id"],
        "event_hash": acknowledged["event_hash"],
    }
