"""Verifying one large JSON Lines file with several processes (the command line's fast path).

The file is cut into chunks of about 2 MiB at line boundaries. Worker processes take chunks from the end of the file
backwards and verify each one starting from its first event as if everything before it were valid
(``ChainVerifier.begin_segment``). The main process verifies from the start, line by line, and never waits for a
worker: each time it reaches a chunk, it takes over a worker's finished result for it (verifying the chunk's first
line itself with the real state, then skipping the rest), or else verifies the chunk itself. The two sides meet
wherever their speeds put them. Workers run at the lowest scheduling priority, so they use only CPU time nothing else
wants: on a busy machine the main process does nearly everything alone, as one process would, instead of sharing
its CPU with them; on an idle CPU a worker runs at full speed. So several processes are never slower than one by
more than starting them. Whenever a worker's result cannot plainly be taken over - it found a violation, an event id
repeats across chunks - the whole file is verified again serially, so the report is always exactly what a serial run
gives. Only the fast, all-clean case runs in parallel.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.pool import AsyncResult
from typing import BinaryIO

from ._chain import ChainVerifier, KeyLookup, SegmentResult
from ._eventline import JSON_WHITESPACE
from ._policy import Policy
from ._report import Report

_WHITESPACE = JSON_WHITESPACE.encode("ascii")
_PROGRESS_EVERY = 4096
# Small enough that the main process, meeting a worker still busy with a chunk, loses little by verifying that chunk
# itself (a fraction of a second); large enough that handing a chunk over costs little next to verifying it.
CHUNK_BYTES = 2 * 1024 * 1024
# Even a small file is cut into this many chunks per process, so the two sides can meet anywhere.
_MIN_CHUNKS_PER_PROCESS = 4


def chunk_offsets(size: int, workers: int) -> list[int]:
    """Start offsets of the byte ranges a file of ``size`` bytes is cut into (the first is 0)."""
    chunks = max(workers * _MIN_CHUNKS_PER_PROCESS, size // CHUNK_BYTES)
    return sorted({size * chunk // chunks for chunk in range(chunks)})


def verify_segment(path: str, start: int, end: int, trust: KeyLookup | None, policy: Policy) -> SegmentResult:
    """Worker: verify the lines that start in ``[start, end)`` of the file (``start`` > 0)."""
    verifier = ChainVerifier(trust, policy)
    first_line: bytes | None = None
    first_line_number = 0
    lines = 0
    usable = False
    uncheckable_events = 0
    start_index = 0
    with open(path, "rb") as stream:
        stream.seek(start - 1)
        position = start - 1 + len(stream.readline())  # the line holding byte start-1 belongs to the range before
        while position < end:
            line = stream.readline()
            if not line:
                break
            position += len(line)
            lines += 1
            if first_line is None:
                if line.strip(_WHITESPACE):
                    first_line, first_line_number = line, lines
                    usable = verifier.begin_segment(line)
                    start_index = verifier.events_counted - 1
            elif usable:
                verifier.add_line(line)
            elif line.strip(_WHITESPACE):
                uncheckable_events += 1
    if first_line is None:
        events = 0
    elif usable:
        events = verifier.events_counted - start_index
    else:
        events = 1 + uncheckable_events
    return verifier.segment_result(
        lines=lines, events=events, first_line=first_line, first_line_number=first_line_number, usable=usable
    )


def verify_file_in_parallel(
    path: str,
    stream: BinaryIO,
    size: int,
    *,
    workers: int,
    trust: KeyLookup | None,
    policy: Policy,
    source: str | None,
    progress: Callable[[int], None] | None,
    verify_serially: Callable[[], Report],
) -> Report:
    """Verify a JSON Lines file of ``size`` bytes; ``stream`` is open on it at offset 0."""
    starts = chunk_offsets(size, workers)
    ends = [*starts[1:], size]
    try:
        pool = multiprocessing.Pool(workers - 1, initializer=_yield_to_other_work)
    except ImportError as exc:  # no working semaphores on this platform: to the caller, like a sandbox's refusal
        raise OSError(f"no worker processes on this platform: {exc}") from exc
    with pool:  # leaving terminates the workers: whatever they are still doing is not needed
        # Submitted last chunk first: the pool hands chunks out in this order, so workers work backwards.
        results = {
            chunk: pool.apply_async(verify_segment, (path, starts[chunk], ends[chunk], trust, policy))
            for chunk in reversed(range(1, len(starts)))
        }
        verifier = ChainVerifier(trust, policy)
        taken_over = _verify_in_order(verifier, stream, starts, ends, results, progress=progress)
    if not taken_over:
        return verify_serially()
    if progress is not None:
        progress(size)
    return verifier.finish(source=source)


def _verify_in_order(
    verifier: ChainVerifier,
    stream: BinaryIO,
    starts: list[int],
    ends: list[int],
    results: dict[int, AsyncResult[SegmentResult]],
    *,
    progress: Callable[[int], None] | None,
) -> bool:
    """The main process's side: every line of the file, in order, verified here or taken over from a worker's
    result. False when a result cannot simply be taken over (see ``ChainVerifier.absorb_segment``)."""
    chunk = 1  # the first chunk not yet reached
    position = 0  # where the next line starts
    lines = 0
    while True:
        while chunk < len(starts) and position >= starts[chunk]:
            finished = _finished(results.pop(chunk))
            chunk += 1
            if finished is None:
                continue  # no worker has finished this chunk: it is verified here
            if not verifier.absorb_segment(finished):
                return False
            position = _next_line_start(stream, ends[chunk - 1])
        line = stream.readline()
        if not line:
            return True
        verifier.add_line(line)
        position += len(line)
        lines += 1
        if progress is not None and lines % _PROGRESS_EVERY == 0:
            finished_bytes = (ends[done] - starts[done] for done, result in results.items() if result.ready())
            progress(position + sum(finished_bytes))


def _yield_to_other_work() -> None:
    """Worker initializer: the lowest priority, so a worker runs only on CPU time nothing else wants."""
    nice = getattr(os, "nice", None)  # not on Windows: there workers keep the normal priority
    if nice is not None:
        nice(19)


def _finished(result: AsyncResult[SegmentResult]) -> SegmentResult | None:
    """A worker's result for a chunk if it has one now (a worker that failed has none: the main process then
    verifies the chunk itself)."""
    if not result.ready() or not result.successful():
        return None
    return result.get()


def _next_line_start(stream: BinaryIO, end: int) -> int:
    """Move ``stream`` to the first line that starts at or after ``end`` (the start of the next chunk) and return
    that offset."""
    stream.seek(end - 1)
    return end - 1 + len(stream.readline())


def default_workers() -> int:
    """One process per CPU this process may use and other work leaves idle, at most four: on a machine whose CPUs
    other work keeps busy, a worker at the lowest priority would get no CPU time and starting it would only cost, so
    the file is verified in one process."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(4, available, round(available - busy_cpus())))


def busy_cpus() -> float:
    """How many CPUs other work keeps busy: the tasks runnable right now besides this one, where the system says
    (Linux ``/proc/loadavg``), else the one-minute load average (as ``make --load-average``), else none. The count of
    runnable tasks follows a machine that has just become idle, which the load average still shows busy for about a
    minute (after a previous verification, for one)."""
    runnable = _runnable_tasks()
    if runnable is not None:
        return float(max(0, runnable - 1))
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


_LOADAVG = "/proc/loadavg"


def _runnable_tasks() -> int | None:
    """The fourth field of ``/proc/loadavg`` (``runnable/total``): tasks running or ready to run, this one included."""
    try:
        with open(_LOADAVG, "rb") as loadavg:
            return int(loadavg.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None
