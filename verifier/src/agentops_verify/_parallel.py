"""Verifying one large JSON Lines file with several processes (the command line's fast path).

The file is cut into byte ranges at line boundaries. The main process verifies the first range as usual; each
worker process verifies one later range starting from that range's first event as if everything before it were
valid (``ChainVerifier.begin_segment``). The main process then verifies each range's first line itself, with the
real state, and takes the worker's result over. Whenever that is not plainly correct - a worker found a violation,
an event id repeats across ranges, a worker could not start - the whole file is verified again serially, so the
report is always exactly what a serial run gives. Only the fast, all-clean case runs in parallel.
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


def split_offsets(size: int, parts: int) -> list[int]:
    """Start offsets of ``parts`` byte ranges of a file of ``size`` bytes (the first is 0)."""
    return [size * part // parts for part in range(parts)]


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
    offsets = split_offsets(size, workers)
    ends = [*offsets[1:], size]
    with ProcessPoolExecutor(max_workers=workers - 1) as pool:
        futures: list[Future[SegmentResult]] = [
            pool.submit(verify_segment, path, start, end, trust, policy)
            for start, end in zip(offsets[1:], ends[1:], strict=True)
        ]
        verifier = ChainVerifier(trust, policy)
        position = 0
        for count, line in enumerate(stream, start=1):
            if position >= offsets[1]:
                break
            verifier.add_line(line)
            position += len(line)
            if progress is not None and count % _PROGRESS_EVERY == 0:
                # The workers read their ranges at about this process's pace: report the whole file's share.
                progress(min(size, position * workers))
        for future in futures:
            if not verifier.absorb_segment(future.result()):
                return verify_serially()
    if progress is not None:
        progress(size)
    return verifier.finish(source=source)


def default_workers() -> int:
    """One process per CPU this process may use, at most four."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(4, available))
