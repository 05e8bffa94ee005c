"""A sample of the tamper matrix run through ``python -m agentops_verify`` as an auditor would: the evidence file, the
trusted key as a PEM file (or a pinned key id for export documents), the policy flags, the log keys, log proof and
receipts as files; same verdict, and the exit status says PASS (0) or FAIL (1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tamper.matrix.evidence import Evidence, Verdict
from tests.tamper.matrix.test_every_attack_gets_its_exact_verdict import ATTACKS, Attack
from tests.tamper.matrix.world import world

SAMPLE = {
    "genuine_sealed_session",
    "payload_edited",
    "payload_edited_rehashed_and_resealed_with_attacker_key",
    "attacker_signature_claiming_the_trusted_key_id",
    "events_swapped",
    "seal_over_another_sessions_digest",
    "resigned_with_a_rotated_out_key_trusting_only_the_current_key",
    "genuine_seal_by_rotated_out_key_with_both_keys_trusted",
    "sdk_chain_under_reject_local_authority",
    "truncated_chain_under_require_authoritative",
    "export_report_edited",
    "selective_export_withheld_event_timestamp_altered",
    "genuine_selective_export",
    "genuine_session_with_its_log_proof",
    "log_proof_inclusion_hash_edited",
    "sealed_session_without_a_log_proof_under_require_log_inclusion",
    "export_with_its_log_proof",
    "acknowledged_event_changed_rechained_and_sealed_by_the_service",
}
SAMPLED = [attack for attack in ATTACKS if attack.name in SAMPLE]


def cli_arguments(evidence: Evidence, folder: Path) -> list[str]:
    arguments = ["--format", "json"]
    for number, signer in enumerate(evidence.trusted):
        key_file = folder / f"trusted-{number}.pem"
        key_file.write_text(signer.public_key_pem)
        arguments += ["--trusted-key", str(key_file)]
    for key_id in evidence.pinned_ids:
        arguments += ["--trusted-key", key_id]
    if evidence.reject_local_authority:
        arguments.append("--reject-local-authority")
    if evidence.require_authoritative:
        arguments.append("--require-authoritative")
    if evidence.accept_unsigned_seals:
        arguments.append("--accept-unsigned-seals")
    for number, signer in enumerate(evidence.log_keys):
        key_file = folder / f"log-key-{number}.pem"
        key_file.write_text(signer.public_key_pem)
        arguments += ["--log-key", str(key_file)]
    if evidence.log_proof is not None:
        proof_file = folder / "log-proof.json"
        proof_file.write_text(json.dumps(evidence.log_proof))
        arguments += ["--log-proof", str(proof_file)]
    if evidence.receipts is not None:
        receipts_file = folder / "receipts.jsonl"
        receipts_file.write_bytes(b"".join(evidence.receipts))
        arguments += ["--receipts", str(receipts_file)]
    if evidence.require_log_inclusion:
        arguments.append("--require-log-inclusion")
    evidence_file = folder / "evidence.jsonl"
    evidence_file.write_bytes(evidence.data)
    return [*arguments, str(evidence_file)]


def test_the_sample_is_all_there() -> None:
    assert {attack.name for attack in SAMPLED} == SAMPLE


@pytest.mark.parametrize("attack", SAMPLED, ids=lambda attack: attack.name)
def test_cli_gives_the_matrix_verdict_and_exit_status(attack: Attack, tmp_path: Path) -> None:
    evidence = attack.build(world())
    completed = subprocess.run(
        [sys.executable, "-m", "agentops_verify", *cli_arguments(evidence, tmp_path)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == (0 if attack.verdict.status == "PASS" else 1), completed.stderr
    report = json.loads(completed.stdout)
    violations = report["violations"]
    verdict = Verdict(
        report["status"],
        violations[0]["type"] if violations else None,
        violations[0]["event_sequence"] if violations else None,
        report["evidence_class"],
        tuple(report["partial_reasons"]),
    )
    assert verdict == attack.verdict
