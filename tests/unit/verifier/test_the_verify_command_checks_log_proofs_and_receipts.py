"""``agentops-verify`` with the evidence-log options (LOG.md sections 6 and 7): ``--log-key``, ``--log-proof``,
``--require-log-inclusion``, ``--receipts``; the report's ``log``, its text line, and the exit statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    LOG_PROOF_INVALID,
    NON_AUTHORITATIVE_EVIDENCE,
    POLICY_VIOLATION,
    RECEIPT_MISMATCH,
    LogChecks,
    LogLeaf,
    LogProof,
    TileReader,
    canonicalize,
    inclusion_proof,
    verify_stream,
)
from agentops_verify._cli import main

from tests.support.chains import Event, build_chain, rehash_from, reseal, to_jsonl
from tests.support.evidence_log import ORIGIN, PublishedLog
from tests.support.keys import TestSigner, default_signer, keys_json
from tests.tamper.matrix.evidence import export_document
from tests.tamper.matrix.log import checkpoint_with_root, flipped_hash, receipts
from tests.tamper.matrix.world import event_like
from tests.tamper.support import trust_for

SEAL_KEY = default_signer()
ATTACKER = TestSigner()


class Deployment:
    """Three sessions sealed and published in a log signed by the sealing key, as the bucket holds them; the files an
    auditor downloads: the archives, the key set, the log proofs (made from the stored tiles, as the API makes them)."""

    def __init__(self, root: Path, log_signer: TestSigner = SEAL_KEY) -> None:
        self.root = root
        self.log = PublishedLog(root / "bucket", log_signer)
        self.chains = [build_chain(4, signer=SEAL_KEY) for _ in range(3)]
        for chain in self.chains:
            self.log.add(chain)
        self.note = self.log.publish().decode()
        self.keys = root / "keys.json"
        self.keys.write_bytes(keys_json(SEAL_KEY))

    def archive(self, index: int = 1) -> Path:
        return self.log.archives / f"{self.chains[index][0]['session_id']}.jsonl"

    def proof(self, index: int = 1) -> dict[str, Any]:
        size = self.log.builder.size
        reader = TileReader(size, lambda path: self.log.path_of(path).read_bytes())
        leaf = LogLeaf.from_bytes(reader.entry(index))
        return LogProof(self.note, index, leaf, tuple(inclusion_proof(index, size, reader))).to_dict()

    def proof_file(self, proof: dict[str, Any], name: str = "log-proof.json") -> Path:
        path = self.root / name
        path.write_text(json.dumps(proof))
        return path

    def export(self, index: int = 1, *, log_proof: dict[str, Any] | None = None) -> Path:
        events = self.chains[index]
        report = verify_jsonl(to_jsonl(events))
        document = export_document(events, report, public_keys=[SEAL_KEY.key_entry()], log_proof=log_proof)
        path = self.root / f"export-{index}.json"
        path.write_bytes(canonicalize(document))
        return path


def verify_jsonl(data: bytes) -> Any:
    return verify_stream(io.BytesIO(data), trust=trust_for(SEAL_KEY))


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return Deployment(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *arguments: object) -> tuple[int, dict[str, Any]]:
    status = main(["--format", "json", *map(str, arguments)])
    out = capsys.readouterr().out
    return status, json.loads(out)


def first_violation(report: dict[str, Any]) -> tuple[str, str | None] | None:
    violations = report["violations"]
    if not violations:
        return None
    return violations[0]["type"], violations[0]["context"].get("check", violations[0]["context"].get("policy"))


# --- a chain file and its log proof --------------------------------------------------------------------------------


def test_archive_with_its_log_proof_is_included(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    proof = deployment.proof_file(deployment.proof())
    status, report = run(
        capsys, "--trusted-key", deployment.keys, "--log-key", deployment.keys, "--log-proof", proof,
        "--require-log-inclusion", deployment.archive(),
    )  # fmt: skip
    assert status == 0
    assert report["evidence_class"] == AUTHORITATIVE_EVIDENCE
    assert report["log"] == {"included": True, "origin": ORIGIN, "tree_size": 3, "leaf_index": 1}


def test_text_output_says_where_the_session_is_included(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = deployment.proof_file(deployment.proof())
    pem = deployment.root / "log-key.pem"
    pem.write_text(SEAL_KEY.public_key_pem)
    assert main(["--log-key", str(pem), "--log-proof", str(proof), str(deployment.archive())]) == 0
    out = capsys.readouterr().out
    assert f"  included in {ORIGIN} at index 1 of tree size 3\n" in out
    assert out.endswith("1/1 sessions valid\n")


def test_text_output_of_a_session_that_passes_its_receipts_is_the_usual_one(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = receipts_file(deployment.root, deployment.chains[1])
    assert main(["--trusted-key", str(deployment.keys), "--receipts", str(kept), str(deployment.archive())]) == 0
    details = capsys.readouterr().out.split("\n\n")[1].splitlines()
    assert details[2:] == [
        f"  seal signed by {SEAL_KEY.key_id} (trusted)",
        "  session end present, 0 events dropped",
        f"  replay fingerprint {deployment.chains[1][-1]['event_hash']}",
    ]


def test_without_log_options_the_log_is_null_and_no_line_is_printed(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, deployment.archive())[1]["log"] is None
    assert main([str(deployment.archive())]) == 0
    assert "included in" not in capsys.readouterr().out


def test_edited_leaf_in_log_proof_is_log_proof_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = deployment.proof()
    proof["leaf"]["seal_timestamp"] = "2026-01-01T13:00:00.000Z"
    status, report = run(
        capsys, "--log-key", deployment.keys, "--log-proof", deployment.proof_file(proof), deployment.archive()
    )
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "leaf")
    assert report["status"] == "FAIL"
    assert report["evidence_class"] == NON_AUTHORITATIVE_EVIDENCE
    assert report["replay_fingerprint"] is None
    assert report["log"] is None


def test_edited_inclusion_proof_is_log_proof_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = deployment.proof()
    proof["inclusion_proof"][-1] = flipped_hash(proof["inclusion_proof"][-1])
    status, report = run(
        capsys, "--log-key", deployment.keys, "--log-proof", deployment.proof_file(proof), deployment.archive()
    )
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "inclusion")
    assert report["log"] is None


def test_edited_checkpoint_is_log_proof_invalid(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    proof = deployment.proof()
    proof["checkpoint"] = checkpoint_with_root(proof["checkpoint"], b"\x01" * 32)
    status, report = run(
        capsys, "--log-key", deployment.keys, "--log-proof", deployment.proof_file(proof), deployment.archive()
    )
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "checkpoint")


def test_checkpoint_signed_by_unpinned_key_is_log_proof_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone who holds the archives builds the same log and signs it with a key of their own, under the
    deployment's origin: the tree and the leaf are right, the checkpoint is not the deployment's."""
    forged = Deployment(tmp_path, log_signer=ATTACKER)
    status, report = run(
        capsys, "--log-key", forged.keys, "--log-proof", forged.proof_file(forged.proof()), forged.archive()
    )
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "checkpoint")
    assert "no signature of" in report["violations"][0]["message"]


def test_archive_whose_bytes_differ_from_the_logged_ones_is_log_proof_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same events with CRLF line endings verify as a chain, but they are not the archive the leaf names.
    crlf = deployment.root / "crlf.jsonl"
    crlf.write_bytes(deployment.archive().read_bytes().replace(b"\n", b"\r\n"))
    status, report = run(
        capsys, "--log-key", deployment.keys, "--log-proof", deployment.proof_file(deployment.proof()), crlf
    )
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "archive")


def test_json_array_of_the_logged_events_is_not_the_logged_archive(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    array = deployment.root / "events.json"
    array.write_text(json.dumps(deployment.chains[1]))
    status, report = run(
        capsys, "--log-key", deployment.keys, "--log-proof", deployment.proof_file(deployment.proof()), array
    )
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "archive")


def test_log_proof_of_another_session_is_log_proof_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = deployment.proof_file(deployment.proof(0))
    status, report = run(capsys, "--log-key", deployment.keys, "--log-proof", proof, deployment.archive(1))
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "leaf")


def test_log_proof_for_an_unsealed_session_is_log_proof_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    unsealed = deployment.root / "unsealed.jsonl"
    unsealed.write_bytes(to_jsonl(deployment.chains[1][:-1]))
    proof = deployment.proof_file(deployment.proof())
    status, report = run(capsys, "--log-key", deployment.keys, "--log-proof", proof, unsealed)
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "session")


def test_a_chain_that_fails_reports_its_own_violation_and_no_log(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    events = deployment.chains[1]
    edited = deployment.root / "edited.jsonl"
    edited.write_bytes(to_jsonl([*events[:2], {**events[2], "payload": {"tool_name": "rm"}}, *events[3:]]))
    proof = deployment.proof_file(deployment.proof())
    status, report = run(capsys, "--log-key", deployment.keys, "--log-proof", proof, edited)
    assert status == 1
    assert first_violation(report) == ("PAYLOAD_HASH_MISMATCH", None)
    assert report["log"] is None


# --- export documents ---------------------------------------------------------------------------------------------


def test_export_log_proof_is_checked_when_a_log_key_is_given(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    export = deployment.export(log_proof=deployment.proof())
    status, report = run(
        capsys, "--trusted-key", SEAL_KEY.key_id, "--log-key", deployment.keys, "--require-log-inclusion", export
    )
    assert status == 0
    assert report["evidence_class"] == AUTHORITATIVE_EVIDENCE
    assert report["log"] == {"included": True, "origin": ORIGIN, "tree_size": 3, "leaf_index": 1}
    # Without a log key nothing can vouch for the checkpoint: the proof is not checked and the log stays null.
    status, report = run(capsys, "--trusted-key", SEAL_KEY.key_id, export)
    assert (status, report["log"]) == (0, None)


def test_export_with_an_edited_log_proof_is_log_proof_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = deployment.proof()
    proof["leaf"]["event_count"] += 1
    status, report = run(capsys, "--log-key", deployment.keys, deployment.export(log_proof=proof))
    assert status == 1
    assert first_violation(report) == (LOG_PROOF_INVALID, "leaf")
    assert report["unverified_metadata"] == {"generated_at": "2026-01-02T00:00:00Z", "generator": "tamper-matrix/1"}


def test_export_made_before_publication_is_checked_with_a_log_proof_fetched_later(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    export = deployment.export(log_proof=None)
    proof = deployment.proof_file(deployment.proof())
    status, report = run(capsys, "--log-key", deployment.keys, "--log-proof", proof, "--require-log-inclusion", export)
    assert status == 0
    assert report["log"] == {"included": True, "origin": ORIGIN, "tree_size": 3, "leaf_index": 1}


# --- --require-log-inclusion --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_key", "missing"),
    [
        (True, "no log proof was given"),
        (False, "no log proof and no log key were given"),
    ],
)
def test_require_log_inclusion_without_proof_is_policy_violation(
    deployment: Deployment, with_key: bool, missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ["--log-key", deployment.keys] if with_key else []
    status, report = run(
        capsys, "--trusted-key", deployment.keys, *key, "--require-log-inclusion", deployment.archive()
    )
    assert status == 1
    assert first_violation(report) == (POLICY_VIOLATION, "require_log_inclusion")
    assert missing in report["violations"][0]["message"]
    assert report["evidence_class"] == NON_AUTHORITATIVE_EVIDENCE


def test_require_log_inclusion_with_an_export_proof_but_no_log_key_says_the_key_is_missing(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    export = deployment.export(log_proof=deployment.proof())
    status, report = run(capsys, "--require-log-inclusion", export)
    assert status == 1
    assert first_violation(report) == (POLICY_VIOLATION, "require_log_inclusion")
    assert "no log key was given (--log-key)" in report["violations"][0]["message"]


# --- receipts -----------------------------------------------------------------------------------------------------


def receipts_file(folder: Path, *sessions: list[Event]) -> Path:
    path = folder / "receipts.jsonl"
    path.write_bytes(b"".join(line for events in sessions for line in receipts(events)))
    return path


def test_receipts_of_the_sealed_session_pass(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    kept = receipts_file(deployment.root, *deployment.chains)
    status, report = run(capsys, "--trusted-key", deployment.keys, "--receipts", kept, deployment.archive())
    assert status == 0
    assert report["evidence_class"] == AUTHORITATIVE_EVIDENCE


def test_receipts_detect_an_acknowledged_event_changed_before_sealing(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service acknowledged event 2, then its stored copy was edited, the chain redone and sealed with the
    genuine key: the seal is valid, the receipts are not."""
    genuine = deployment.chains[1]
    kept = receipts_file(deployment.root, genuine)
    changed = [dict(event) for event in genuine]
    changed[2] = {**changed[2], "payload": {**changed[2]["payload"], "model": "another-model"}}
    sealed = deployment.root / "sealed.jsonl"
    sealed.write_bytes(to_jsonl(reseal(rehash_from(changed, 2), SEAL_KEY)))
    status, report = run(capsys, "--trusted-key", deployment.keys, "--receipts", kept, sealed)
    assert status == 1
    [violation] = report["violations"]
    assert (violation["type"], violation["event_sequence"], violation["event_id"]) == (
        RECEIPT_MISMATCH,
        2,
        genuine[2]["event_id"],
    )
    assert violation["context"]["acknowledged"]["event_hash"] == genuine[2]["event_hash"]
    assert report["evidence_class"] == NON_AUTHORITATIVE_EVIDENCE


def test_receipts_detect_acknowledged_events_cut_off_before_sealing(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stored session lost its last acknowledged event (SESSION_END) and was sealed as it was."""
    genuine = deployment.chains[1]
    kept = receipts_file(deployment.root, genuine)
    seal_slot = event_like(genuine[-1], sequence_number=3, prev_event_hash=genuine[2]["event_hash"])
    cut = deployment.root / "cut.jsonl"
    cut.write_bytes(to_jsonl(reseal([*genuine[:3], seal_slot], SEAL_KEY)))
    status, report = run(capsys, "--trusted-key", deployment.keys, "--receipts", kept, cut)
    assert status == 1
    [violation] = report["violations"]
    assert (violation["type"], violation["event_sequence"]) == (RECEIPT_MISMATCH, 3)
    assert violation["context"]["acknowledged"]["event_id"] == genuine[3]["event_id"]


def test_one_receipts_file_checks_several_files_each_against_its_own_session(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = receipts_file(deployment.root, deployment.chains[0], deployment.chains[1])
    status, document = run(
        capsys, "--receipts", kept, deployment.archive(0), deployment.archive(1), deployment.archive(2)
    )
    assert status == 1
    assert [report["status"] for report in document["reports"]] == ["PASS", "PASS", "FAIL"]
    assert "acknowledges no event of session" in document["reports"][2]["violations"][0]["message"]


def test_receipts_are_checked_against_an_export_documents_events(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = receipts_file(deployment.root, deployment.chains[1])
    status, report = run(capsys, "--trusted-key", SEAL_KEY.key_id, "--receipts", kept, deployment.export())
    assert (status, report["evidence_class"]) == (0, AUTHORITATIVE_EVIDENCE)


class _ChangingFile(io.BytesIO):
    """A seekable file whose content is replaced when it is rewound: what a second read of a changed file gives."""

    def __init__(self, first: bytes, then: bytes) -> None:
        super().__init__(first)
        self.then: bytes | None = then

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.then is not None:
            content, self.then = self.then, None
            super().seek(0)
            super().truncate()
            super().write(content)
        return super().seek(offset, whence)


def test_receipts_refuse_a_file_that_changed_between_its_two_reads(deployment: Deployment) -> None:
    genuine = to_jsonl(deployment.chains[1])
    other = genuine.replace(b'"test-model-1"', b'"test-model-2"', 1)
    assert other != genuine
    checks = LogChecks(receipts=receipts(deployment.chains[1]))
    with pytest.raises(OSError, match="changed while it was being verified"):
        verify_stream(_ChangingFile(genuine, other), trust=trust_for(SEAL_KEY), log=checks, source="session.jsonl")


# --- could not run as asked: exit 2, nothing on stdout ------------------------------------------------------------


def _usage_error(capsys: pytest.CaptureFixture[str], *arguments: object) -> str:
    assert main(list(map(str, arguments))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    return line


def test_log_proof_with_several_files_exits_2(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    proof = deployment.proof_file(deployment.proof())
    line = _usage_error(
        capsys, "--log-key", deployment.keys, "--log-proof", proof, deployment.archive(0), deployment.archive(1)
    )
    assert "--log-proof is the proof of one session: name exactly one FILE" in line


def test_log_proof_without_a_log_key_exits_2(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    proof = deployment.proof_file(deployment.proof())
    assert "--log-proof needs --log-key" in _usage_error(capsys, "--log-proof", proof, deployment.archive())


@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        ("--log-proof", None, "cannot read log proof"),
        ("--log-proof", b"{not json", "is not JSON"),
        ("--log-key", None, "cannot read key file"),
        ("--log-key", b"not a key", "bad key file"),
        ("--receipts", None, "cannot read receipts file"),
        ("--receipts", b'{"session_id": "x"}\n', "bad receipts file"),
        ("--receipts", b"not json\n", "bad receipts file"),
    ],
)
def test_unusable_log_proof_key_or_receipts_file_exits_2(
    deployment: Deployment, option: str, content: bytes | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    given = deployment.root / "given"
    if content is not None:
        given.write_bytes(content)
    key = [] if option == "--log-key" else ["--log-key", deployment.keys]
    assert message in _usage_error(capsys, *key, option, given, deployment.archive())


def test_log_key_may_be_a_pem_file_or_a_key_set(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    pem = deployment.root / "log-key.pem"
    pem.write_text(SEAL_KEY.public_key_pem)
    proof = deployment.proof_file(deployment.proof())
    for key in (pem, deployment.keys):
        status, report = run(capsys, "--log-key", key, "--log-proof", proof, deployment.archive())
        assert (status, report["log"]["leaf_index"]) == (0, 1)
