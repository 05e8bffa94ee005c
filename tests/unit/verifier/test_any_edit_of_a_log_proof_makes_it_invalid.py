"""Log leaves (LOG.md section 2) and the verifier's check of a log proof (sections 5 and 6): every way the proof, its
leaf or its checkpoint can be edited ends in ``LOG_PROOF_INVALID``, and an intact one gives the report's ``log``."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
from agentops_verify import (
    LOG_PROOF_INVALID,
    LeafError,
    LogLeaf,
    LogProof,
    SealedChainFacts,
    TileReader,
    TrustStore,
    encode_hashes,
    inclusion_proof,
    verify_lines,
    verify_log_proof,
)

from tests.support.chains import Event, build_chain, to_jsonl
from tests.support.evidence_log import ORIGIN, PublishedLog, chain_facts, leaf_for, public_key
from tests.support.keys import TestSigner

SEAL_KEY = TestSigner()
OTHER_KEY = TestSigner()


class World:
    """Three sealed sessions in a published log; the proofs are made from the stored tiles, as the API makes them."""

    def __init__(
        self, root: Path, log_signer: TestSigner = SEAL_KEY, seal_signers: tuple[TestSigner, ...] = ()
    ) -> None:
        self.log = PublishedLog(root, log_signer)
        signers = seal_signers or (SEAL_KEY,) * 3
        self.chains = [build_chain(4, signer=signer) for signer in signers]
        for chain in self.chains:
            self.log.add(chain)
        self.note = self.log.publish().decode()

    def proof(self, leaf_index: int) -> dict[str, Any]:
        size = self.log.builder.size
        reader = TileReader(size, lambda path: self.log.path_of(path).read_bytes())
        leaf = LogLeaf.from_bytes(reader.entry(leaf_index))
        return LogProof(self.note, leaf_index, leaf, tuple(inclusion_proof(leaf_index, size, reader))).to_dict()

    def facts(self, leaf_index: int) -> SealedChainFacts:
        chain = self.chains[leaf_index]
        report = verify_lines(to_jsonl(chain).splitlines(), trust=TrustStore([public_key(SEAL_KEY)]))
        return SealedChainFacts.from_report(report, chain[-1]["payload"])

    def archive_sha256(self, leaf_index: int) -> str:
        return hashlib.sha256(to_jsonl(self.chains[leaf_index])).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def check(world: World, proof: object, leaf_index: int = 1, *, archive: str | None = None, keys: Any = None) -> Any:
    log_keys = keys if keys is not None else [public_key(SEAL_KEY)]
    return verify_log_proof(proof, world.facts(leaf_index), archive_sha256=archive, log_keys=log_keys)


def assert_invalid(result: Any, step: str) -> None:
    assert not result.passed
    assert result.inclusion is None
    assert result.report_log() is None
    assert result.violation.type == LOG_PROOF_INVALID
    assert result.violation.context == {"check": step}


# --- Leaves ------------------------------------------------------------------------------------------------------

LEAF = LogLeaf(
    session_id="0b6f1c52-8f07-4a8e-9d3c-5a3f1e2d4c6b",
    seal_event_hash="a" * 64,
    event_count=5,
    seal_timestamp="2026-01-01T12:00:05.000Z",
    signer_key_id="sha256:" + "b" * 64,
    archive_sha256="c" * 64,
)


def test_leaf_bytes_are_the_jcs_of_exactly_the_seven_keys() -> None:
    assert LEAF.to_bytes() == (
        b'{"archive_sha256":"'
        + b"c" * 64
        + b'","event_count":5,"leaf_version":1,"seal_event_hash":"'
        + b"a" * 64
        + b'","seal_timestamp":"2026-01-01T12:00:05.000Z",'
        b'"session_id":"0b6f1c52-8f07-4a8e-9d3c-5a3f1e2d4c6b","signer_key_id":"sha256:' + b"b" * 64 + b'"}'
    )
    assert LogLeaf.from_bytes(LEAF.to_bytes()) == LEAF
    assert hashlib.sha256(b"\x00" + LEAF.to_bytes()).digest() == LEAF.hash()


def test_leaf_of_a_verified_chain_repeats_its_seal() -> None:
    chain = build_chain(6, signer=SEAL_KEY)
    report = verify_lines(to_jsonl(chain).splitlines(), trust=TrustStore([public_key(SEAL_KEY)]))
    facts = SealedChainFacts.from_report(report, chain[-1]["payload"])
    assert facts == chain_facts(chain)
    assert facts.event_count == 7  # six events and the seal
    assert facts.seal_event_hash == chain[-1]["event_hash"] == report.replay_fingerprint
    leaf = LogLeaf.for_archive(facts, hashlib.sha256(to_jsonl(chain)).hexdigest())
    assert leaf == leaf_for(chain)
    assert leaf.facts == facts
    assert leaf.differences(facts) == []


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        (build_chain(4, seal="unsigned"), "signed seal"),
        (build_chain(4, seal=None), "signed seal"),
        (build_chain(4, authority="sdk", seal="unsigned"), "signed seal"),
    ],
)
def test_only_a_passing_signed_server_seal_makes_a_leaf(chain: list[Event], message: str) -> None:
    report = verify_lines(to_jsonl(chain).splitlines())
    with pytest.raises(LeafError, match=message):
        SealedChainFacts.from_report(report, chain[-1]["payload"])


def test_leaf_facts_need_the_chains_own_seal_payload() -> None:
    chain = build_chain(4, signer=SEAL_KEY)
    report = verify_lines(to_jsonl(chain).splitlines())
    other_seal = build_chain(4, signer=OTHER_KEY)[-1]["payload"]
    with pytest.raises(LeafError, match="not the verified chain's seal"):
        SealedChainFacts.from_report(report, other_seal)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (LEAF.to_bytes().replace(b",", b", ", 1), "JCS form"),
        (b'{"leaf_version":1,' + LEAF.to_bytes()[1:].replace(b',"leaf_version":1', b""), "JCS form"),
        (LEAF.to_bytes().replace(b'"event_count":5', b'"event_count":5.0'), "event_count"),
        (LEAF.to_bytes().replace(b'"leaf_version":1', b'"leaf_version":2'), "leaf_version"),
        (LEAF.to_bytes().replace(b'"leaf_version":1', b'"leaf_version":true'), "leaf_version"),
        (LEAF.to_bytes().replace(b'"event_count":5', b'"event_count":"5"'), "event_count"),
        (LEAF.to_bytes().replace(b'"event_count":5', b'"event_count":1'), "event_count"),
        (LEAF.to_bytes().replace(b'"event_count":5', b'"event_count":true'), "event_count"),
        (LEAF.to_bytes().replace(b"a" * 64, b"A" * 64), "seal_event_hash"),
        (LEAF.to_bytes().replace(b"c" * 64, b"c" * 63), "archive_sha256"),
        (LEAF.to_bytes().replace(b"0b6f1c52", b"0B6F1C52"), "session_id"),
        (LEAF.to_bytes().replace(b"12:00:05.000Z", b"12:00:05.000+00:00"), "seal_timestamp"),
        (LEAF.to_bytes().replace(b"sha256:", b"sha512:"), "signer_key_id"),
        (LEAF.to_bytes()[:-1] + b',"note":"x"}', "unknown keys"),
        (LEAF.to_bytes().replace(b'"event_count":5,', b""), "lacks keys"),
        (LEAF.to_bytes().replace(b'"event_count":5', b'"event_count":5,"event_count":5'), "not valid JSON"),
        (b"[]", "not a JSON object"),
    ],
)
def test_leaf_read_from_the_log_is_parsed_strictly(data: bytes, message: str) -> None:
    with pytest.raises(LeafError, match=message):
        LogLeaf.from_bytes(data)


# --- Log proofs --------------------------------------------------------------------------------------------------


def test_log_proof_of_a_sealed_session_verifies_offline(world: World) -> None:
    for leaf_index in range(3):
        result = check(world, world.proof(leaf_index), leaf_index, archive=world.archive_sha256(leaf_index))
        assert result.passed
        assert result.violation is None
        assert result.report_log() == {"included": True, "origin": ORIGIN, "tree_size": 3, "leaf_index": leaf_index}


def test_log_proof_round_trips_through_its_json_form(world: World) -> None:
    proof = world.proof(2)
    assert LogProof.from_dict(proof).to_dict() == proof


def test_export_log_proof_is_checked_without_an_archive_hash(world: World) -> None:
    assert check(world, world.proof(1), archive=None).passed


def test_log_proof_with_an_edited_leaf_fact_is_invalid(world: World) -> None:
    proof = world.proof(1)
    proof["leaf"]["event_count"] += 1
    assert_invalid(check(world, proof), "leaf")


def test_log_proof_for_another_session_is_invalid(world: World) -> None:
    assert_invalid(check(world, world.proof(0), 1), "leaf")


def test_log_proof_naming_another_archive_is_invalid_for_a_chain_file(world: World) -> None:
    assert_invalid(check(world, world.proof(1), archive=world.archive_sha256(0)), "archive")


def test_log_proof_whose_leaf_archive_hash_was_edited_fails_inclusion(world: World) -> None:
    proof = world.proof(1)
    proof["leaf"]["archive_sha256"] = "0" * 64
    assert_invalid(check(world, proof, archive=None), "inclusion")


def test_log_proof_with_an_edited_proof_hash_is_invalid(world: World) -> None:
    proof = world.proof(1)
    proof["inclusion_proof"][0] = encode_hashes([hashlib.sha256(b"forged").digest()])[0]
    assert_invalid(check(world, proof), "inclusion")


def test_log_proof_at_another_leaf_index_is_invalid(world: World) -> None:
    proof = world.proof(1)
    proof["leaf_index"] = 0
    assert_invalid(check(world, proof), "inclusion")


def test_log_proof_with_an_edited_checkpoint_is_invalid(world: World) -> None:
    proof = world.proof(1)
    proof["checkpoint"] = proof["checkpoint"].replace("\n3\n", "\n4\n")
    assert_invalid(check(world, proof), "checkpoint")


def test_log_proof_whose_checkpoint_is_signed_by_an_unpinned_key_is_invalid(world: World) -> None:
    assert_invalid(check(world, world.proof(1), keys=[public_key(OTHER_KEY)]), "checkpoint")


def test_log_proof_without_pinned_log_keys_is_invalid(world: World) -> None:
    assert_invalid(check(world, world.proof(1), keys=[]), "checkpoint")


@pytest.mark.parametrize(
    "edit",
    [
        lambda proof: proof.pop("inclusion_proof"),
        lambda proof: proof.update(extra=1),
        lambda proof: proof.update(leaf_index=True),
        lambda proof: proof.update(leaf_index=-1),
        lambda proof: proof.update(checkpoint=None),
        lambda proof: proof.update(inclusion_proof="AAAA"),
        lambda proof: proof["inclusion_proof"].append("not base64!"),
        lambda proof: proof["inclusion_proof"].append("AAAA"),
        lambda proof: proof["leaf"].update(leaf_version=2),
    ],
)
def test_malformed_log_proof_is_invalid(world: World, edit: Any) -> None:
    proof = copy.deepcopy(world.proof(1))
    edit(proof)
    assert_invalid(check(world, proof), "format")


def test_log_proof_that_is_not_an_object_is_invalid(world: World) -> None:
    assert_invalid(check(world, [world.proof(1)]), "format")


def test_log_proof_whose_checkpoint_holds_a_lone_surrogate_is_invalid_not_a_crash(world: World) -> None:
    """``json.load`` (as the auditor's guide uses) reads the escape ``\\ud800`` as a lone surrogate, which no UTF-8
    note can hold: the proof is invalid, and the check must not raise ``UnicodeEncodeError``."""
    proof = world.proof(1)
    proof["checkpoint"] = proof["checkpoint"].replace("\n", "\ud800\n", 1)
    assert_invalid(check(world, proof), "checkpoint")


def test_session_sealed_under_a_rotated_key_is_still_provable(tmp_path: Path) -> None:
    """Sessions sealed under the old key, then the new one; the latest checkpoint is signed by the new key. With
    both published keys pinned (``GET /v1/keys`` keeps every key), the old session's proof verifies."""
    old_key, new_key = TestSigner(), TestSigner()
    world = World(tmp_path, log_signer=new_key, seal_signers=(old_key, old_key, new_key))
    both = [public_key(old_key), public_key(new_key)]
    trust = TrustStore(both)
    for leaf_index, chain in enumerate(world.chains):
        report = verify_lines(to_jsonl(chain).splitlines(), trust=trust)
        facts = SealedChainFacts.from_report(report, chain[-1]["payload"])
        result = verify_log_proof(
            world.proof(leaf_index), facts, archive_sha256=world.archive_sha256(leaf_index), log_keys=both
        )
        assert result.passed, result.violation
    old_session_facts = chain_facts(world.chains[0])
    only_old = verify_log_proof(world.proof(0), old_session_facts, archive_sha256=None, log_keys=[public_key(old_key)])
    assert_invalid(only_old, "checkpoint")
