"""Verifying one large file with several processes gives exactly the serial report, for clean and tampered chains
alike (the CLI's fast path, ``agentops_verify._parallel``)."""

from __future__ import annotations

import copy
import functools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from agentops_verify import _files, _parallel, canonicalize, verify_file
from agentops_verify._chain import SegmentResult
from agentops_verify._parallel import CHUNK_BYTES, _finished, chunk_offsets

from tests.support.chains import Event, build_chain, rehash_from, to_jsonl
from tests.support.keys import default_signer
from tests.tamper.support import trust_for


def _drops(sequence_number: int) -> tuple[str, dict[str, object]]:
    if sequence_number % 17 == 0:
        return "LOG_DROP", {"dropped_count": 2, "cumulative_drops": 2 * (sequence_number // 17), "drop_reason": "X"}
    return "ANNOTATION", {"annotator_id": "r", "annotation_type": "flag", "content": f"note {sequence_number}"}


def _clean() -> list[Event]:
    return build_chain(60)


def _payload_edited_late() -> list[Event]:
    events = _clean()
    events[50]["payload"]["content"] = "edited"
    return events


def _payload_edited_early() -> list[Event]:
    events = _clean()
    events[3]["payload"]["content"] = "edited"
    return events


def _duplicate_id_across_halves() -> list[Event]:
    events = _clean()
    events[45]["event_id"] = events[5]["event_id"]
    return rehash_from(events, 45)


def _link_broken_in_the_middle() -> list[Event]:
    events = _clean()
    events[30]["prev_event_hash"] = "0" * 64
    return events


def _clock_backwards_and_drops() -> list[Event]:
    events = build_chain(60, seal=None, payload_factory=_drops)
    events[40]["timestamp_wall"] = "2026-01-01T11:00:00Z"
    return rehash_from(events, 40)


def _drop_miscounted_on_a_clock_going_backwards() -> list[Event]:
    # Each such LOG_DROP gets two warnings, INVALID_DROP_COUNT then TIMESTAMP_ANOMALY (the checks' order), also where
    # a worker's segment holds it and the main process adds the drop warnings it deferred.
    def drops_with_bad_counts(sequence_number: int) -> tuple[str, dict[str, object]]:
        if sequence_number % 7 == 3:
            return "LOG_DROP", {"dropped_count": 0, "cumulative_drops": 0, "drop_reason": "X"}
        return "ANNOTATION", {"annotator_id": "r", "annotation_type": "flag", "content": f"note {sequence_number}"}

    events = build_chain(60, seal=None, payload_factory=drops_with_bad_counts)
    for event in events:
        if event["event_type"] == "LOG_DROP":
            event["timestamp_wall"] = "2026-01-01T11:00:00Z"
    return rehash_from(events, 1)


def _legacy_schema_everywhere() -> list[Event]:
    events = copy.deepcopy(_clean())
    for event in events:
        event["schema_ver"] = "v0.5"
    return events


CHAINS: dict[str, Callable[[], list[Event]]] = {
    "clean": _clean,
    "payload-edited-late": _payload_edited_late,
    "payload-edited-early": _payload_edited_early,
    "duplicate-id-across-halves": _duplicate_id_across_halves,
    "link-broken-in-the-middle": _link_broken_in_the_middle,
    "clock-backwards-and-drops": _clock_backwards_and_drops,
    "drop-miscounted-on-a-clock-going-backwards": _drop_miscounted_on_a_clock_going_backwards,
    "legacy-schema": _legacy_schema_everywhere,
}


@pytest.fixture(autouse=True)
def _small_files_go_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "PARALLEL_MIN_BYTES", 1)


def _wait_for_the_worker(inbox: _parallel._Inbox, chunk: int) -> SegmentResult | None:
    while chunk not in inbox.finished:
        inbox.collect()
        time.sleep(0.001)
    return _finished(inbox, chunk)


def _new_children(before: set[multiprocessing.process.BaseProcess]) -> set[multiprocessing.process.BaseProcess]:
    """Child processes alive now that were not before (the test process may have others of its own)."""
    return set(multiprocessing.active_children()) - before


@pytest.mark.parametrize("name", sorted(CHAINS))
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("later_chunks", ["whoever-gets-there-first", "workers"])
def test_parallel_report_equals_serial_report(
    tmp_path: Path, name: str, workers: int, later_chunks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if later_chunks == "workers":  # the main process waits for each worker's result and takes it over
        monkeypatch.setattr(_parallel, "_finished", _wait_for_the_worker)
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(to_jsonl(CHAINS[name]()))
    trust = trust_for(default_signer())
    assert verify_file(path, trust=trust, workers=workers).to_dict() == verify_file(path, trust=trust).to_dict()


def _failing_segment(*_arguments: object) -> SegmentResult:
    raise OSError("the worker cannot read the file")


@pytest.mark.parametrize("name", ["clean", "payload-edited-late"])
def test_a_worker_that_raises_gives_the_serial_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    handed_over: list[SegmentResult | None] = []

    def wait_and_record(inbox: _parallel._Inbox, chunk: int) -> SegmentResult | None:
        handed_over.append(_wait_for_the_worker(inbox, chunk))
        return handed_over[-1]

    monkeypatch.setattr(_parallel, "verify_segment", _failing_segment)
    monkeypatch.setattr(_parallel, "_finished", wait_and_record)
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(to_jsonl(CHAINS[name]()))
    trust = trust_for(default_signer())
    children_before = set(multiprocessing.active_children())
    assert verify_file(path, trust=trust, workers=3).to_dict() == verify_file(path, trust=trust).to_dict()
    assert handed_over  # every chunk's failure came back, and the main process verified the chunk itself
    assert handed_over == [None] * len(handed_over)
    assert not _new_children(children_before)


_STUCK_SECONDS = 600.0  # far longer than the test may run: as far as the test can tell, stuck for good


def _stuck_worker(pids: Path, how: str, *_arguments: object) -> SegmentResult:
    if how == "deaf-to-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with pids.open("a") as file:
        file.write(f"{os.getpid()}\n")
    time.sleep(_STUCK_SECONDS)
    raise AssertionError("a stuck worker never finishes")


def _stuck_mid_send(pids: Path) -> Callable[[Connection, bytes], None]:
    """A worker's ``send_bytes`` that sends one piece of its first result and is then stuck."""
    send_bytes = Connection.send_bytes

    def send_one_piece_then_stall(connection: Connection, piece: bytes) -> None:
        send_bytes(connection, piece)
        with pids.open("a") as file:
            file.write(f"{os.getpid()}\n")
        time.sleep(_STUCK_SECONDS)

    return send_one_piece_then_stall


def _stuck_pids(pids: Path) -> list[int]:
    return [int(pid) for pid in pids.read_text().split()] if pids.exists() else []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["sleeping", "deaf-to-sigterm", "stalled-mid-send"])
def test_verification_never_waits_for_a_stuck_worker_and_leaves_none_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pids = tmp_path / "stuck-worker-pids"
    if how == "stalled-mid-send":
        monkeypatch.setattr(_parallel, "_PIECE_BYTES", 16)  # every result takes many pieces
        monkeypatch.setattr(Connection, "send_bytes", _stuck_mid_send(pids))
    else:
        monkeypatch.setattr(_parallel, "verify_segment", functools.partial(_stuck_worker, pids, how))

    def once_both_workers_are_stuck(inbox: _parallel._Inbox, chunk: int) -> SegmentResult | None:
        while len(_stuck_pids(pids)) < 2:
            time.sleep(0.01)
        return _finished(inbox, chunk)

    monkeypatch.setattr(_parallel, "_finished", once_both_workers_are_stuck)
    path = tmp_path / "edited.jsonl"
    path.write_bytes(to_jsonl(_payload_edited_late()))
    trust = trust_for(default_signer())
    children_before = set(multiprocessing.active_children())
    parallel = verify_file(path, trust=trust, workers=3)
    monkeypatch.undo()
    assert parallel.to_dict() == verify_file(path, trust=trust).to_dict()
    assert not _new_children(children_before)
    assert all(_gone(pid) for pid in _stuck_pids(pids))


def test_malformed_line_at_a_range_boundary_is_reported_with_its_line_number(tmp_path: Path) -> None:
    lines = [canonicalize(event) for event in _clean()]
    lines[31] = b'{"broken": '
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n\n")
    parallel = verify_file(path, workers=2)
    assert parallel.to_dict() == verify_file(path).to_dict()
    assert parallel.violations[0].context == {"line": 32}


def test_blank_lines_and_crlf_do_not_shift_counts(tmp_path: Path) -> None:
    path = tmp_path / "spaced.jsonl"
    path.write_bytes(b"\r\n\r\n".join(canonicalize(event) for event in _clean()) + b"\r\n")
    parallel = verify_file(path, workers=3)
    assert parallel.passed
    assert parallel.to_dict() == verify_file(path).to_dict()


def test_files_are_cut_into_chunks_small_enough_to_share_out() -> None:
    for size, workers in ((1, 2), (5_000, 2), (5_000, 4), (121 * 1024 * 1024, 2)):
        starts = chunk_offsets(size, workers)
        assert starts[0] == 0
        assert starts == sorted(set(starts))
        assert len(starts) >= min(size, 4 * workers)
        assert all(
            end - start <= max(CHUNK_BYTES, size // (4 * workers) + 1)
            for start, end in zip(starts, [*starts[1:], size], strict=True)
        )


def test_where_a_worker_process_cannot_start_the_file_is_verified_here_and_no_worker_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = multiprocessing.Process.start
    started: list[object] = []

    def start_one_then_refuse(process: multiprocessing.Process) -> None:
        if started:
            raise PermissionError("this sandbox allows one new process")
        start(process)
        started.append(process)

    monkeypatch.setattr(multiprocessing.Process, "start", start_one_then_refuse)
    path = tmp_path / "edited.jsonl"
    path.write_bytes(to_jsonl(_payload_edited_late()))
    trust = trust_for(default_signer())
    children_before = set(multiprocessing.active_children())
    assert verify_file(path, trust=trust, workers=3).to_dict() == verify_file(path, trust=trust).to_dict()
    assert len(started) == 1
    assert not _new_children(children_before)


def test_where_the_platform_has_no_semaphores_the_file_is_verified_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_semaphores(*_arguments: object, **_options: object) -> object:
        raise ImportError("This platform lacks a functioning sem_open implementation")

    monkeypatch.setattr(multiprocessing, "Value", no_semaphores)
    path = tmp_path / "edited.jsonl"
    path.write_bytes(to_jsonl(_payload_edited_late()))
    trust = trust_for(default_signer())
    assert verify_file(path, trust=trust, workers=2).to_dict() == verify_file(path, trust=trust).to_dict()


@pytest.mark.parametrize(
    ("cpus", "runnable", "workers"),
    [(2, 1, 2), (2, 2, 1), (2, 3, 1), (2, 9, 1), (8, 1, 4), (8, 6, 3), (8, 9, 1), (1, 1, 1)],
)
def test_the_command_line_starts_a_process_only_for_each_cpu_other_work_keeps_idle(
    monkeypatch: pytest.MonkeyPatch, cpus: int, runnable: int, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.setattr(_parallel, "_runnable_tasks", lambda: runnable)
    monkeypatch.setattr(os, "getloadavg", lambda: (7.9, 7.9, 7.9))  # a lagging load average is not what counts
    assert _parallel.default_workers() == workers


@pytest.mark.parametrize(
    ("cpus", "load", "workers"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 6.5, 1), (8, 0.2, 4), (8, 5.0, 3), (8, 7.6, 1), (1, 0.0, 1)],
)
def test_where_the_system_does_not_say_what_is_runnable_the_load_average_decides(
    monkeypatch: pytest.MonkeyPatch, cpus: int, load: float, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.setattr(_parallel, "_runnable_tasks", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert _parallel.default_workers() == workers


def test_without_a_load_average_every_cpu_counts_as_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_load_average() -> tuple[float, float, float]:
        raise OSError("load average unobtainable")

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(_parallel, "_runnable_tasks", lambda: None)
    monkeypatch.setattr(os, "getloadavg", no_load_average)
    assert _parallel.default_workers() == 2


@pytest.mark.parametrize(
    ("content", "runnable"),
    [(b"0.69 1.11 1.74 3/109 15048\n", 3), (b"0.69 1.11 1.74\n", None), (b"a b c x/y z\n", None), (None, None)],
)
def test_the_runnable_count_is_the_fourth_field_of_the_systems_load_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, runnable: int | None
) -> None:
    loadavg = tmp_path / "loadavg"
    if content is not None:
        loadavg.write_bytes(content)
    monkeypatch.setattr(_parallel, "_LOADAVG", str(loadavg))
    assert _parallel._runnable_tasks() == runnable
