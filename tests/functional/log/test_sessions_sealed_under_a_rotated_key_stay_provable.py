"""A session sealed under a key that was later rotated out stays provable: its leaf names the old key, the newer
checkpoints are signed by the new one, and an auditor holding every published key verifies both."""

from __future__ import annotations

import hashlib
from pathlib import Path

from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.evidence_log_reader import LogReader
from agentops_verify import (
    SealedChainFacts,
    TrustStore,
    load_pem_public_key,
    loads,
    parse_key_file,
    verify_checkpoint,
    verify_lines,
    verify_log_proof,
)

from infra.resources import create_seal_key
from tests.functional.conftest import BUCKET
from tests.functional.log.conftest import CountingSigner, LogWorld
from tests.functional.log.test_a_crash_at_any_publication_step_is_finished_by_the_next_run import crashing_run


def rotate(world: LogWorld) -> CountingSigner:
    return CountingSigner(KmsSigner(world.kms, create_seal_key(world.kms)))


def archived_facts(world: LogWorld, session_id: str) -> tuple[SealedChainFacts, str]:
    """What an auditor establishes from the downloaded archive with the published keys: the chain's facts and the
    file's SHA-256."""
    body = world.object(f"sessions/{session_id}.jsonl")
    keys = parse_key_file(world.object("keys/index.json"))
    report = verify_lines(body.splitlines(), trust=TrustStore(keys))
    facts = SealedChainFacts.from_report(report, loads(body.splitlines()[-1])["payload"])
    return facts, hashlib.sha256(body).hexdigest()


def test_session_sealed_under_a_rotated_key_is_still_provable_against_the_new_key_s_checkpoint(
    world: LogWorld, tmp_path: Path
) -> None:
    (old_session,) = world.ingest(1)
    world.run()
    new_signer = rotate(world)
    (new_session,) = world.ingest(1)
    world.run(world.sealer(world.publisher(signer=new_signer), signer=new_signer))

    published_keys = parse_key_file(world.object("keys/index.json"))
    assert {key.key_id for key in published_keys} == {world.signer.key_id, new_signer.key_id}
    checkpoint_note = world.object("log/checkpoint")
    verify_checkpoint(checkpoint_note, [load_pem_public_key(new_signer.public_key_pem)])  # signed by the new key
    reader = LogReader(world.objects, world.log_state, world.store)
    for session_id, sealed_by in ((old_session, world.signer), (new_session, new_signer)):
        proof = reader.log_proof(session_id)
        assert proof.leaf.signer_key_id == sealed_by.key_id
        assert proof.checkpoint.encode() == checkpoint_note
        facts, archive_sha256 = archived_facts(world, session_id)
        check = verify_log_proof(proof.to_dict(), facts, archive_sha256=archive_sha256, log_keys=published_keys)
        assert check.passed, check.violation
    assert world.audit(tmp_path)[0] == 0


def test_session_sealed_before_a_rotation_and_logged_after_it_is_rebuilt_from_its_archive(
    world: LogWorld, tmp_path: Path
) -> None:
    """The run that sealed it died before logging; the next run, under the new key, rebuilds its leaf from the
    archive, checking the old key's seal."""
    (session_id,) = world.ingest(1)
    crashing_run(world, "log_state", "advance_log", "before")
    new_signer = rotate(world)

    world.run(world.sealer(world.publisher(signer=new_signer), signer=new_signer))

    proof = LogReader(world.objects, world.log_state, world.store).log_proof(session_id)
    assert proof.leaf.signer_key_id == world.signer.key_id
    facts, archive_sha256 = archived_facts(world, session_id)
    keys = parse_key_file(world.object("keys/index.json"))
    assert verify_log_proof(proof.to_dict(), facts, archive_sha256=archive_sha256, log_keys=keys).passed
    assert world.s3.head_object(Bucket=BUCKET, Key="log/checkpoint")["ContentType"].startswith("text/plain")
    assert world.audit(tmp_path)[0] == 0
