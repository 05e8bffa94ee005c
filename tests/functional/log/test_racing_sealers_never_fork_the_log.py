"""Two sealers publishing the evidence log at once (a retried schedule, a manual invocation): the one conditional
state write lets one decide the leaves, the other reads again; the checkpoint's ``If-Match`` keeps a slow sealer
from putting an older checkpoint over a newer one. The log never forks and no session is logged twice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from agentops_server.evidence_log import LogState, StoredCheckpoint
from agentops_server.evidence_log_publisher import EvidenceLogPublisher

from tests.functional.log.conftest import ORIGIN, LogWorld
from tests.functional.log.test_a_crash_at_any_publication_step_is_finished_by_the_next_run import crashing_run
from tests.functional.log.test_sealed_sessions_are_logged_under_signed_checkpoints import leaves_of

WAIT_SECONDS = 30


class PausesBeforeAdvancing:
    """A log state whose ``advance_log`` waits until both racers have read the state (a barrier)."""

    def __init__(self, target: Any, barrier: threading.Barrier) -> None:
        self._target = target
        self._barrier = barrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def advance_log(self, previous: LogState | None, new: LogState, logged: Any) -> None:
        self._barrier.wait(WAIT_SECONDS)
        self._target.advance_log(previous, new, logged)


class PausesBeforePublishing:
    """Log objects whose first ``replace_checkpoint`` waits for ``go`` (a sealer slowed down after signing)."""

    def __init__(self, target: Any, reached: threading.Event, go: threading.Event) -> None:
        self._target = target
        self._reached = reached
        self._go = go

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def replace_checkpoint(self, note: bytes, replaces: StoredCheckpoint | None) -> bool:
        if not self._reached.is_set():
            self._reached.set()
            assert self._go.wait(WAIT_SECONDS)
        result: bool = self._target.replace_checkpoint(note, replaces)
        return result


def publish_in_thread(
    world: LogWorld, publisher: EvidenceLogPublisher, errors: list[BaseException]
) -> threading.Thread:
    def publish() -> None:
        try:
            publisher.publish(world.keys, lambda: None)
        except BaseException as error:  # reported to the test thread
            errors.append(error)

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


def marked_but_unlogged(world: LogWorld, count: int) -> list[str]:
    """``count`` sessions sealed and marked by a run that died before its state write."""
    sessions = world.ingest(count)
    crashing_run(world, "log_state", "advance_log", "before")
    return sessions


@pytest.mark.parametrize("published_before", [False, True])
def test_two_sealers_racing_log_each_session_once_under_one_root_per_size(
    world: LogWorld, tmp_path: Path, *, published_before: bool
) -> None:
    if published_before:
        world.ingest(2)
        world.run()
    sessions = marked_but_unlogged(world, 3)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    threads = [
        publish_in_thread(world, world.publisher(state=PausesBeforeAdvancing(world.log_state, barrier)), errors)
        for _ in range(2)
    ]
    for thread in threads:
        thread.join(WAIT_SECONDS)

    assert errors == []
    logged = [leaf.session_id for leaf in leaves_of(world)]
    assert sorted(logged[-3:]) == sorted(sessions)
    assert len(logged) == len(set(logged)) == 3 + 2 * published_before
    history = world.checkpoint_history()
    assert [checkpoint.size for checkpoint in history] == ([2, 5] if published_before else [3])
    assert world.audit(tmp_path)[0] == 0


def test_a_slow_sealer_never_puts_its_older_checkpoint_over_a_newer_one(world: LogWorld, tmp_path: Path) -> None:
    marked_but_unlogged(world, 3)
    reached, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    slow = publish_in_thread(world, world.publisher(objects=PausesBeforePublishing(world.objects, reached, go)), errors)
    assert reached.wait(WAIT_SECONDS)  # the slow sealer decided size 3 and signed it

    world.ingest(2)
    world.run()  # a second sealer finishes size 3 from the state and extends it to 5
    go.set()
    slow.join(WAIT_SECONDS)

    assert errors == []
    assert [checkpoint.size for checkpoint in world.checkpoint_history()] == [5]
    assert world.checkpoint().size == 5
    assert world.audit(tmp_path)[0] == 0


def test_an_older_checkpoint_published_meanwhile_is_replaced_by_the_newer_one_that_extends_it(
    world: LogWorld, tmp_path: Path
) -> None:
    """The other order: the slow sealer's size-3 checkpoint lands after the fast sealer read ``log/checkpoint``; the
    fast one's ``If-Match`` fails, it checks that its size 5 extends 3 and replaces it."""
    marked_but_unlogged(world, 3)
    slow_reached, slow_go, fast_reached, fast_go = (threading.Event() for _ in range(4))
    errors: list[BaseException] = []
    slow_objects = PausesBeforePublishing(world.objects, slow_reached, slow_go)
    slow = publish_in_thread(world, world.publisher(objects=slow_objects), errors)
    assert slow_reached.wait(WAIT_SECONDS)  # size 3 decided and signed
    world.ingest(2)
    fast_objects = PausesBeforePublishing(world.objects, fast_reached, fast_go)
    fast = threading.Thread(target=lambda: world.run(world.sealer(world.publisher(objects=fast_objects))))
    fast.start()
    assert fast_reached.wait(WAIT_SECONDS)  # size 5 decided and signed, having read no checkpoint

    slow_go.set()
    slow.join(WAIT_SECONDS)
    fast_go.set()
    fast.join(WAIT_SECONDS)

    assert errors == []
    assert [checkpoint.size for checkpoint in world.checkpoint_history()] == [3, 5]
    assert world.checkpoint().origin == ORIGIN
    assert world.audit(tmp_path)[0] == 0
