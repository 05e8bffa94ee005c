"""Verifying one large JSON Lines file with several processes (the command line's fast path).

The file is cut into chunks of about 2 MiB at line boundaries. Worker processes take chunks from the end of the file
backwards and verify each one starting from its first event as if everything before it were valid
(``ChainVerifier.begin_segment``). The main process verifies from the start, line by line. Each time it reaches a
chunk, it takes it back if no worker has started it yet (and verifies it itself), or else takes over the worker's
results for that chunk and every later one, in order, verifying each chunk's first line itself with the real state.
So the two sides meet wherever their speeds put them: a process slowed by other work on its CPU does less, and the
main process never waits for a chunk it could verify itself, which keeps several processes from ever being slower
than one. Whenever a worker's result cannot plainly be taken over - it found a violation, an event id repeats across
chunks, a worker could not start - the whole file is verified again serially, so the report is always exactly what a
serial run gives. Only the fast, all-clean case runs in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import BinaryIO

from ._chain import ChainVerifier, KeyLookup, SegmentResult
from ._eventline import JSON_WHITESPACE
from ._policy import Policy
from ._report import Report

_WHITESPACE = JSON_WHITESPACE.encode("ascii")
_PROGRESS_EVERY = 4096
# Small enough that the main process, meeting the workers, waits for at most a few of them (a fraction of a second);
# large enough that handing a chunk over costs little next to verifying it.
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
    with ProcessPoolExecutor(max_workers=workers - 1) as pool:
        # Submitted last chunk first: the pool hands chunks out in this order, so workers work backwards.
        futures: dict[int, Future[SegmentResult]] = {
            chunk: pool.submit(verify_segment, path, starts[chunk], ends[chunk], trust, policy)
            for chunk in reversed(range(1, len(starts)))
        }
        verifier = ChainVerifier(trust, policy)
        chunk = 1  # the first chunk the main process has not yet reached
        position = 0
        for count, line in enumerate(stream, start=1):
            while chunk < len(starts) and position >= starts[chunk] and futures[chunk].cancel():
                chunk += 1  # no worker had started it: this process verifies it
            if chunk < len(starts) and position >= starts[chunk]:
                break  # a worker has this chunk, and (working backwards) every later one
            verifier.add_line(line)
            position += len(line)
            if progress is not None and count % _PROGRESS_EVERY == 0:
                workers_done = (ends[done] - starts[done] for done in range(chunk, len(starts)) if futures[done].done())
                progress(position + sum(workers_done))
        for taken_over in range(chunk, len(starts)):
            if not verifier.absorb_segment(futures.pop(taken_over).result()):
                pool.shutdown(cancel_futures=True)  # nothing more of the pool's work is needed
                break
        else:
            if progress is not None:
                progress(size)
            return verifier.finish(source=source)
    return verify_serially()


def default_workers() -> int:
    """One process per CPU this process may use, at most four."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(4, available))
