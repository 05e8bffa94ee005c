"""Crash at every step of publishing the evidence log; the next run (a new process) finishes it.

Steps of one run (agentops_server.sealing and evidence_log): per session, mark it "archived, not yet logged" and mark
it SEALED; then advance the log state (one conditional write), write the tiles, sign the checkpoint, replace
``log/checkpoint``. Whatever step the process dies at, after the next runs: every sealed session is exactly one leaf,
no tile got a second version (the rerun wrote the same bytes or found them), the checkpoint's history only grows
(never two checkpoints of one size with different roots), no run signed more than one checkpoint, and the audit of
the downloaded bucket passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agentops_server.evidence_log_publisher import EvidenceLogPublisher

from tests.functional.log.conftest import ORIGIN, CountingSigner, LogWorld
from tests.functional.log.test_sealed_sessions_are_logged_under_signed_checkpoints import (
    leaves_of,
    only_the_checkpoint_has_versions,
)
from tests.functional.seal.test_a_crash_at_any_seal_step_is_finished_once_by_the_next_run import CrashAt, CrashError


class DiesSigningTheCheckpoint(CountingSigner):
    """The process dies when asked to sign a checkpoint: every tile is written, nothing is signed."""

    def sign(self, message: bytes) -> bytes:
        if message.startswith(ORIGIN.encode() + b"\n"):
            raise CrashError("died before signing the checkpoint")
        return super().sign(message)


# (what dies, the method, before or after it did its work), in the order a run reaches them.
STEPS = [
    ("log_state", "enqueue_for_log", "before"),  # archived, not marked, not SEALED
    ("log_state", "enqueue_for_log", "after"),  # marked, not SEALED
    ("store", "mark_sealed", "before"),
    ("log_state", "advance_log", "before"),  # every session SEALED and marked, nothing logged
    ("log_state", "advance_log", "after"),  # leaves decided, no tile written
    ("objects", "write_once", "after"),  # one tile written
    ("signer", "sign", "before"),  # every tile written, nothing signed
    ("objects", "replace_checkpoint", "before"),  # signed, not published
    ("objects", "replace_checkpoint", "after"),  # published, the run did not finish
]


def crashing_run(world: LogWorld, target: str, method: str, when: str) -> None:
    publisher = EvidenceLogPublisher(
        CrashAt(world.log_state, method, when) if target == "log_state" else world.log_state,
        CrashAt(world.objects, method, when) if target == "objects" else world.objects,
        DiesSigningTheCheckpoint(world.signer) if target == "signer" else world.signer,
        ORIGIN,
    )
    store: Any = CrashAt(world.store, method, when) if target == "store" else world.store
    with pytest.raises(CrashError):
        world.run(world.sealer(publisher, store=store))


def tile_versions(world: LogWorld) -> dict[str, str]:
    return {version["Key"]: version["VersionId"] for version in world.versions("log/tile/")}


@pytest.mark.parametrize("new_sessions_before_rerun", [0, 2])
@pytest.mark.parametrize(("target", "method", "when"), STEPS)
def test_crash_at_any_publication_step_then_rerun_logs_each_session_once_with_identical_bytes(
    world: LogWorld, tmp_path: Path, *, target: str, method: str, when: str, new_sessions_before_rerun: int
) -> None:
    published = world.ingest(2)
    world.run()
    crashed = world.ingest(3)
    crashing_run(world, target, method, when)
    tiles_before_rerun = tile_versions(world)
    later = world.ingest(new_sessions_before_rerun)

    for _ in range(2):
        signatures = world.signer.checkpoint_signatures
        world.run()  # a new process each time: nothing in hand from the crashed run
        assert world.signer.checkpoint_signatures - signatures <= 1

    logged = [leaf.session_id for leaf in leaves_of(world)]
    assert sorted(logged) == sorted(published + crashed + later)
    assert logged[:2] == [leaf.session_id for leaf in leaves_of_first_checkpoint(world)]
    assert all(world.log_state.leaf_index(session_id) == index for index, session_id in enumerate(logged))
    sizes = [checkpoint.size for checkpoint in world.checkpoint_history()]
    assert sizes == sorted(set(sizes))  # strictly growing: never two checkpoints of one size
    assert sizes[-1] == len(logged)
    assert only_the_checkpoint_has_versions(world)
    after = tile_versions(world)
    assert {key: after[key] for key in tiles_before_rerun} == tiles_before_rerun
    status, output = world.audit(tmp_path)
    assert status == 0, output


def leaves_of_first_checkpoint(world: LogWorld) -> list[Any]:
    first = world.checkpoint_history()[0]
    return leaves_of(world)[: first.size]


def test_a_crash_after_signing_is_finished_without_a_second_signature_of_another_root(world: LogWorld) -> None:
    """The rerun signs the same size and root again (KMS signatures differ), and publishes exactly one of them."""
    world.ingest(3)
    crashing_run(world, "objects", "replace_checkpoint", "before")
    assert world.checkpoint_history() == []

    world.run()

    (checkpoint,) = world.checkpoint_history()
    assert checkpoint.size == 3
    assert world.log_state.log_state() is not None
