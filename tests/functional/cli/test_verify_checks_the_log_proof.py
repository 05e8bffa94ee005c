"""``agentops-replay verify`` checks the session's inclusion in the evidence log from the log proof it fetched, under
the keys the auditor trusts: a genuine proof is reported, a forged one fails the session, and an unchecked one is said
plainly (``--require-log-inclusion`` then fails it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from agentops_replay.cli import main
from agentops_verify import LogLeaf, LogProof, TileReader, inclusion_proof

from tests.functional.cli.conftest import FakeService
from tests.support.chains import build_chain, to_jsonl
from tests.support.evidence_log import ORIGIN, PublishedLog
from tests.support.keys import default_signer, keys_json
from tests.tamper.matrix.log import flipped_hash

SEAL_KEY = default_signer()


class Published:
    """Three sealed sessions in a log signed by the sealing key; the service serves the second one."""

    def __init__(self, root: Path) -> None:
        self.log = PublishedLog(root / "bucket", SEAL_KEY)
        chains = [build_chain(4, signer=SEAL_KEY) for _ in range(3)]
        for chain in chains:
            self.log.add(chain)
        self.note = self.log.publish().decode()
        self.session_id: str = chains[1][0]["session_id"]
        self.chain = to_jsonl(chains[1])

    def proof(self) -> dict[str, Any]:
        size = self.log.builder.size
        reader = TileReader(size, lambda path: self.log.path_of(path).read_bytes())
        leaf = LogLeaf.from_bytes(reader.entry(1))
        return LogProof(self.note, 1, leaf, tuple(inclusion_proof(1, size, reader))).to_dict()

    def serve(self, service: FakeService, log_proof: tuple[int, Any]) -> None:
        digest = hashlib.sha256(self.chain).hexdigest()
        archive = f"/archive/sessions/{self.session_id}.jsonl"
        chain = {
            "bucket": "archive",
            "key": f"sessions/{self.session_id}.jsonl",
            "version_id": "v1",
            "sha256": digest,
            "url": f"{service.base_url}{archive}?versionId=v1&X-Amz-Signature=x",
            "expires_in": 900,
        }
        service.on("GET", f"/v1/sessions/{self.session_id}/chain", (200, chain))
        service.on("GET", archive, (200, self.chain))
        service.on("GET", "/v1/keys", (200, json.loads(keys_json(SEAL_KEY))))
        service.on("GET", f"/v1/sessions/{self.session_id}/log-proof", log_proof)


@pytest.fixture
def published(tmp_path: Path) -> Published:
    return Published(tmp_path)


def test_a_genuine_log_proof_is_checked_and_reported(
    service: FakeService, published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    published.serve(service, (200, published.proof()))
    arguments = ["verify", published.session_id, "--trusted-key", SEAL_KEY.key_id, "--require-log-inclusion"]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split("\t")[1:3] == ["PASS", "AUTHORITATIVE_EVIDENCE"]
    assert f"  included in {ORIGIN} at index 1 of tree size 3" in out.splitlines()

    assert main([*arguments, "--format", "json"]) == 0
    log = json.loads(capsys.readouterr().out)["log"]
    assert (log["included"], log["leaf_index"], log["tree_size"]) == (True, 1, 3)


def test_a_forged_log_proof_fails_verify(
    service: FakeService, published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before this check, verify saved the proof and passed the session whatever the proof said.
    forged = published.proof()
    forged["inclusion_proof"][0] = flipped_hash(forged["inclusion_proof"][0])
    published.serve(service, (200, forged))
    assert main(["verify", published.session_id, "--trusted-key", SEAL_KEY.key_id]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].split("\t")[1] == "FAIL"
    assert "violation LOG_PROOF_INVALID" in out
    assert "included in" not in out


def test_a_log_proof_is_not_checked_without_a_trusted_key_and_that_is_said(
    service: FakeService, published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    published.serve(service, (200, published.proof()))
    assert main(["verify", published.session_id]) == 0
    printed = capsys.readouterr()
    assert "included in" not in printed.out
    assert "the log proof was not checked: it counts only under a key you trust (--trusted-key)" in printed.err

    assert main(["verify", published.session_id, "--require-log-inclusion"]) == 1
    assert "POLICY_VIOLATION" in capsys.readouterr().out


def test_a_session_not_yet_in_the_log_fails_only_when_inclusion_is_required(
    service: FakeService, published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = {"error": {"code": "LOG_PENDING", "message": "Not yet under a published checkpoint."}}
    published.serve(service, (409, pending))
    assert main(["verify", published.session_id, "--trusted-key", SEAL_KEY.key_id]) == 0
    assert "included in" not in capsys.readouterr().out
    required = ["verify", published.session_id, "--trusted-key", SEAL_KEY.key_id, "--require-log-inclusion"]
    assert main(required) == 1
    assert "POLICY_VIOLATION" in capsys.readouterr().out
