"""The sealer publishes the evidence log (LOG.md sections 2 to 4): one leaf per sealed session in archive order, tiles
first, then one signed checkpoint per run; an auditor's download of the bucket audits clean."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from agentops_server.evidence_log import LogUnavailableError
from agentops_verify import LogLeaf, TileReader, consistency_proof, verify_consistency

from tests.functional.conftest import BUCKET
from tests.functional.log.conftest import ORIGIN, LogWorld


def leaves_of(world: LogWorld) -> list[LogLeaf]:
    checkpoint = world.checkpoint()
    reader = TileReader(checkpoint.size, lambda path: world.object("log/" + path))
    return [LogLeaf.from_bytes(reader.entry(index)) for index in range(checkpoint.size)]


def only_the_checkpoint_has_versions(world: LogWorld) -> bool:
    versions = world.versions("log/")
    tiles = [version["Key"] for version in versions if version["Key"] != "log/checkpoint"]
    return len(tiles) == len(set(tiles)) and not any("IsLatest" not in version for version in versions)


def test_sealed_sessions_are_logged_in_archive_order_under_one_signed_checkpoint(
    world: LogWorld, tmp_path: Path
) -> None:
    sessions = world.ingest(3)

    sealed = world.run()

    checkpoint = world.checkpoint()
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 3)
    assert [leaf.session_id for leaf in leaves_of(world)] == sealed
    assert sorted(sealed) == sorted(sessions)
    assert [world.log_state.leaf_index(session_id) for session_id in sealed] == [0, 1, 2]
    assert world.signer.checkpoint_signatures == 1
    assert only_the_checkpoint_has_versions(world)
    status, output = world.audit(tmp_path)
    assert status == 0, output
    assert output.splitlines()[-1] == "3/3 logged sessions present and intact"


def test_leaf_states_what_the_archive_holds(world: LogWorld) -> None:
    (session_id,) = world.ingest(1)
    world.run()

    (leaf,) = leaves_of(world)
    head = world.store.get_head(session_id)
    assert head is not None
    assert head.archive is not None
    assert leaf.session_id == session_id
    assert leaf.archive_sha256 == head.archive.sha256
    assert leaf.signer_key_id == world.signer.key_id
    tail = world.store.tail(session_id)
    assert tail is not None
    assert (leaf.seal_event_hash, leaf.event_count) == (tail.last_event_hash, tail.last_sequence + 1)


def test_a_run_with_nothing_new_signs_and_writes_nothing(world: LogWorld) -> None:
    world.ingest(2)
    world.run()
    objects_before = world.versions("log/")

    assert world.run() == []

    assert world.signer.checkpoint_signatures == 1
    assert len(world.versions("log/")) == len(objects_before)


def test_later_runs_extend_the_log_and_the_checkpoints_are_consistent(world: LogWorld, tmp_path: Path) -> None:
    world.ingest(3)
    world.run()
    world.ingest(2)
    world.run()

    first, second = world.checkpoint_history()
    assert (first.size, second.size) == (3, 5)
    reader = TileReader(second.size, lambda path: world.object("log/" + path))
    verify_consistency(3, 5, first.root_hash, second.root_hash, consistency_proof(3, 5, reader))
    assert world.signer.checkpoint_signatures == 2
    assert world.audit(tmp_path)[0] == 0


def test_more_pending_sessions_than_one_publication_takes_wait_for_the_next_runs(world: LogWorld) -> None:
    """Each run signs one checkpoint; what does not fit stays marked and is rebuilt from its archive later."""
    sessions = world.ingest(7)
    first_run = world.sealer(world.publisher(max_leaves=3))
    sealed = world.run(first_run)
    assert sorted(sealed) == sorted(sessions)
    assert world.checkpoint().size == 3

    world.run(world.sealer(world.publisher(max_leaves=3)))  # a new process: nothing in hand, all from the archives
    assert world.checkpoint().size == 6
    world.run(world.sealer(world.publisher(max_leaves=3)))

    assert world.checkpoint().size == 7
    assert [leaf.session_id for leaf in leaves_of(world)] == sealed
    assert world.signer.checkpoint_signatures == 3


def test_a_log_past_one_full_tile_stores_the_full_tiles_and_bundle(world: LogWorld, tmp_path: Path) -> None:
    world.ingest(258)
    publisher = world.publisher()
    world.run(world.sealer(publisher, limit=300))  # seals all 258; one publication takes 99 of them
    world.run(world.sealer(publisher))
    world.run(world.sealer(publisher))

    assert world.checkpoint().size == 258
    assert len(world.object("log/tile/0/000")) == 256 * 32
    assert len(world.object("log/tile/0/001.p/2")) == 2 * 32
    assert len(world.object("log/tile/1/000.p/1")) == 32
    assert world.object("log/tile/entries/000").count(b'"leaf_version":1') == 256
    assert world.audit(tmp_path, archives=False)[0] == 0  # the tiles rebuild the root (archives: the tests above)


class S3Down:
    """Log objects whose writes fail the way an S3 outage does."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def write_once(self, path: str, data: bytes) -> None:
        raise LogUnavailableError(f"PutObject log/{path} failed: ServiceUnavailable")


def test_a_storage_outage_defers_publication_to_the_next_run_without_an_alarm(
    world: LogWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agentops_server")
    sessions = world.ingest(2)

    sealed = world.run(world.sealer(world.publisher(objects=S3Down(world.objects))))

    assert sorted(sealed) == sorted(sessions)  # sealing is not held up by the log
    assert world.versions("log/checkpoint") == []
    assert not [record for record in caplog.records if getattr(record, "alarm", None)]
    assert [record.message for record in caplog.records if record.levelno == logging.WARNING] == [
        "evidence log publication deferred to the next run"
    ]
    world.run()
    assert world.checkpoint().size == 2


def test_log_objects_are_locked_by_the_bucket_s_default_compliance_retention(world: LogWorld) -> None:
    world.ingest(1)
    world.run()
    for key in ("log/checkpoint", "log/tile/0/000.p/1", "log/tile/entries/000.p/1"):
        head = world.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE", key
