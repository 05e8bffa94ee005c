"""The evidence log end to end through the local stack (``make dev``), checked the way an auditor checks it: over
HTTP with SigV4, then offline with the verifier library and ``agentops-log-audit`` on a download of the bucket.

Its own stack, so the bucket holds exactly the sessions these tests seal (in the order below, a module's worth).
"""

from __future__ import annotations

import copy
import hashlib
import re
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from agentops_verify import (
    Checkpoint,
    PublicKey,
    SealedChainFacts,
    TileBuilder,
    TrustStore,
    canonicalize,
    decode_hashes,
    loads,
    parse_key_file,
    split_entry_bundle,
    verify_checkpoint,
    verify_consistency,
    verify_lines,
    verify_log_proof,
)

from infra.api_client import ApiClient
from infra.launcher import REPO_ROOT, LocalStackHandle, running_local_stack
from tests.integration.ingest.builders import batch_body, event, new_session_id, opening_batch

pytestmark = pytest.mark.integration

AUDIT = Path(sys.executable).parent / "agentops-log-audit"  # installed with the verifier package


@pytest.fixture(scope="module")
def log_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    with running_local_stack(tmp_path_factory.mktemp("log-stack") / "local_stack.log") as stack:
        yield stack


@pytest.fixture(scope="module")
def api(log_stack: LocalStackHandle) -> ApiClient:
    return ApiClient(log_stack.base_url, access_key_id="AKIDLOGINTEGRATION01")


@dataclass(frozen=True)
class Sealed:
    first: list[str]
    first_checkpoint: bytes
    second: list[str]
    second_checkpoint: bytes


@pytest.fixture(scope="module")
def sealed(api: ApiClient, log_stack: LocalStackHandle) -> Sealed:
    """Three sessions sealed and published in one run, then two more in a second run."""
    first = [ended_session(api) for _ in range(3)]
    assert sorted(log_stack.seal_now()) == sorted(first)
    first_checkpoint = api.get("/v1/log/checkpoint").body
    second = [ended_session(api) for _ in range(2)]
    assert sorted(log_stack.seal_now()) == sorted(second)
    return Sealed(first, first_checkpoint, second, api.get("/v1/log/checkpoint").body)


def ended_session(api: ApiClient) -> str:
    session_id = new_session_id()
    path = f"/v1/sessions/{session_id}/events"
    assert api.post(path, batch_body([*opening_batch(extra_events=2), event(3, "SESSION_END")])).status == 200
    return session_id


def published_keys(api: ApiClient) -> tuple[bytes, list[PublicKey]]:
    response = api.get("/v1/keys")
    assert response.status == 200
    return response.body, parse_key_file(response.body)


def downloaded_chain(api: ApiClient, session_id: str) -> bytes:
    chain = api.get(f"/v1/sessions/{session_id}/chain").json()
    with urllib.request.urlopen(chain["url"], timeout=30) as response:  # presigned: no credentials
        body: bytes = response.read()
    return body


def facts_of(chain: bytes, keys: list[PublicKey]) -> SealedChainFacts:
    report = verify_lines(chain.splitlines(), trust=TrustStore(keys))
    assert report.evidence_class == "AUTHORITATIVE_EVIDENCE"
    return SealedChainFacts.from_report(report, loads(chain.splitlines()[-1])["payload"])


def s3_client(stack: LocalStackHandle) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.info["aws_endpoint"],
        region_name=stack.info["region"],
        aws_access_key_id="local-stack",
        aws_secret_access_key="local-stack",
    )


def download_bucket(stack: LocalStackHandle, destination: Path, *, leave_out: str | None = None) -> Path:
    """``aws s3 sync`` of the archive bucket: ``log/``, ``sessions/`` and ``keys/``."""
    s3 = s3_client(stack)
    bucket = stack.info["archive_bucket"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            if entry["Key"] == leave_out:
                continue
            target = destination / entry["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
    return destination


def run_audit(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUDIT), "--log-key", str(root / "keys.json"), "--archives", str(root / "sessions"), str(root / "log")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_each_session_s_log_proof_verifies_offline_with_the_key_from_get_keys(api: ApiClient, sealed: Sealed) -> None:
    _, keys = published_keys(api)
    checkpoint = verify_checkpoint(api.get("/v1/log/checkpoint").body, keys)
    assert checkpoint.size == 5
    for session_id in sealed.first + sealed.second:
        response = api.get(f"/v1/sessions/{session_id}/log-proof")
        assert response.status == 200, response.body
        chain = downloaded_chain(api, session_id)
        check = verify_log_proof(
            response.json(), facts_of(chain, keys), archive_sha256=hashlib.sha256(chain).hexdigest(), log_keys=keys
        )
        assert check.passed, check.violation
        assert check.report_log() == {
            "included": True,
            "origin": "agentops-replay/evidence-log",  # the template's default: <ServiceId>/evidence-log
            "tree_size": 5,
            "leaf_index": response.json()["leaf_index"],
        }


def test_the_second_checkpoint_is_consistent_with_the_first(api: ApiClient, sealed: Sealed) -> None:
    _, keys = published_keys(api)
    first = verify_checkpoint(sealed.first_checkpoint, keys)
    second = verify_checkpoint(sealed.second_checkpoint, keys)
    assert (first.size, second.size) == (3, 5)

    response = api.get(f"/v1/log/consistency?from={first.size}&to={second.size}")

    assert response.status == 200
    verify_consistency(3, 5, first.root_hash, second.root_hash, decode_hashes(response.json()["proof"]))
    refused = api.get("/v1/log/consistency?from=0&to=5")
    assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR")


def test_downloaded_tiles_rebuild_the_checkpoint_s_root_and_the_audit_passes(
    api: ApiClient, log_stack: LocalStackHandle, sealed: Sealed, tmp_path: Path
) -> None:
    root = download_bucket(log_stack, tmp_path / "bucket")
    keys_body, keys = published_keys(api)
    (root / "keys.json").write_bytes(keys_body)
    checkpoint: Checkpoint = verify_checkpoint((root / "log/checkpoint").read_bytes(), keys)
    builder = TileBuilder()
    for entry in split_entry_bundle((root / f"log/tile/entries/000.p/{checkpoint.size}").read_bytes()):
        builder.append(entry)
    assert builder.root() == checkpoint.root_hash

    audit = run_audit(root)

    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert audit.stdout.splitlines()[-1] == "5/5 logged sessions present and intact"


def test_the_audit_fails_naming_the_session_whose_archive_is_missing(
    api: ApiClient, log_stack: LocalStackHandle, sealed: Sealed, tmp_path: Path
) -> None:
    missing = sealed.first[1]
    root = download_bucket(log_stack, tmp_path / "bucket", leave_out=f"sessions/{missing}.jsonl")
    (root / "keys.json").write_bytes(published_keys(api)[0])

    audit = run_audit(root)

    assert audit.returncode == 1
    assert f"{missing}\tMISSING" in audit.stdout
    assert audit.stdout.splitlines()[-1] == "4/5 logged sessions present and intact"


def test_log_proof_of_an_open_session_is_409_and_of_an_unknown_one_404(api: ApiClient) -> None:
    session_id = new_session_id()
    assert api.post(f"/v1/sessions/{session_id}/events", batch_body(opening_batch())).status == 200
    assert api.get(f"/v1/sessions/{session_id}/log-proof").error_code == "NOT_SEALED"
    assert api.get(f"/v1/sessions/{new_session_id()}/log-proof").error_code == "SESSION_NOT_FOUND"


def test_the_auditor_guide_s_snippet_confirms_a_session_s_inclusion(
    api: ApiClient, sealed: Sealed, tmp_path: Path
) -> None:
    """docs/evidence-log.md step 4, run as written on the files it names."""
    session_id = sealed.second[0]
    (tmp_path / "keys.json").write_bytes(published_keys(api)[0])
    (tmp_path / "chain.jsonl").write_bytes(downloaded_chain(api, session_id))
    (tmp_path / "log-proof.json").write_bytes(api.get(f"/v1/sessions/{session_id}/log-proof").body)
    guide = (REPO_ROOT / "docs/evidence-log.md").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python\n(.*?)```", guide, re.DOTALL)
    snippet = textwrap.dedent(snippet)

    completed = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
    )

    assert (completed.returncode, completed.stdout) == (0, "included\n"), completed.stderr


VERIFY = Path(sys.executable).parent / "agentops-verify"


def run_verify(*arguments: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [str(VERIFY), "--format", "json", *arguments], capture_output=True, text=True, check=False, timeout=120
    )
    return completed.returncode, loads(completed.stdout.encode())


def test_an_export_carries_its_log_proof_which_the_verifier_checks_and_refuses_edited(
    api: ApiClient, sealed: Sealed, tmp_path: Path
) -> None:
    keys_body, keys = published_keys(api)
    session_id = sealed.first[1]
    created = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})
    assert created.status == 201, created.body
    with urllib.request.urlopen(created.json()["url"], timeout=30) as response:  # presigned: no credentials
        document = loads(response.read())
    assert document["log_proof"] == api.get(f"/v1/sessions/{session_id}/log-proof").json()
    (tmp_path / "keys.json").write_bytes(keys_body)
    key_id = keys[0].key_id
    intact = tmp_path / "export.json"
    intact.write_bytes(canonicalize(document))

    status, report = run_verify(
        "--trusted-key", key_id, "--log-key", str(tmp_path / "keys.json"), "--require-log-inclusion", str(intact)
    )

    assert (status, report["evidence_class"]) == (0, "AUTHORITATIVE_EVIDENCE")
    assert report["log"]["included"] is True
    edited = copy.deepcopy(document)
    edited["log_proof"]["leaf"]["event_count"] += 1
    tampered = tmp_path / "edited.json"
    tampered.write_bytes(canonicalize(edited))
    status, report = run_verify(
        "--trusted-key", key_id, "--log-key", str(tmp_path / "keys.json"), "--require-log-inclusion", str(tampered)
    )
    assert status == 1
    assert report["violations"][0]["type"] == "LOG_PROOF_INVALID"
