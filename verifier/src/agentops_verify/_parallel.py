"""Verifying one large JSON Lines file with several processes (the command line's fast path).

The file is cut into chunks of about 2 MiB at line boundaries. Worker processes claim chunks from the end of the file
backwards (through a counter only they share), verify each one starting from its first event as if everything before
it were valid (``ChainVerifier.begin_segment``), and send each result through a pipe of their own. The main process
verifies from the start, line by line, and never waits for a worker: it reads only what has already arrived, and each
time it reaches a chunk it takes over a worker's result for it (verifying the chunk's first line itself with the real
state, then skipping the rest), or else verifies the chunk itself. The two sides meet wherever their speeds put them.
Workers run at the lowest scheduling priority, so they use only CPU time nothing else wants: on a busy machine the
main process does nearly everything alone, as one process would; on an idle CPU a worker runs at full speed. So
several processes are never slower than one by more than starting them. At the end the main process kills every
worker with a signal none can ignore, and reaps it: it shares no lock with them, so no stuck or starved worker can
hold it up. Whenever a worker's result cannot plainly be taken over - it found a violation, an event id repeats
across chunks - the whole file is verified again serially, so the report is always exactly what a serial run gives.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import select
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from typing import BinaryIO

from ._chain import ChainVerifier, KeyLookup, SegmentResult
from ._eventline import JSON_WHITESPACE
from ._policy import Policy
from ._report import Report

_WHITESPACE = JSON_WHITESPACE.encode("ascii")
_PROGRESS_EVERY = 4096
# How often (in lines) the main process empties the pipes, so a worker with a result larger than a pipe holds is not
# kept waiting long to send the rest.
_COLLECT_EVERY = 512
# A result travels in pieces small enough that each, with the 4-byte length header a Connection puts before it, is
# written in one write of at most PIPE_BUF bytes, which POSIX makes atomic: the pipe holds only whole pieces, so the
# main process, reading while poll() says there is data, never waits for a worker (even one stopped mid-send).
_PIECE_BYTES = getattr(select, "PIPE_BUF", 512) - 4
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
    """Verify a JSON Lines file of ``size`` bytes; ``stream`` is open on it at offset 0. Raises ``OSError`` when
    no worker process can be started here (the caller then verifies the file in this process)."""
    starts = chunk_offsets(size, workers)
    ends = [*starts[1:], size]
    processes: list[BaseProcess] = []
    inbox = _Inbox()
    try:
        try:
            unclaimed = multiprocessing.Value(ctypes.c_int, len(starts))  # for the workers only, lock included
            for _ in range(workers - 1):
                receiver, sender = multiprocessing.Pipe(duplex=False)
                inbox.pipes.append((receiver, []))
                process = multiprocessing.Process(
                    target=_work,
                    args=(path, starts, ends),
                    kwargs={"trust": trust, "policy": policy, "unclaimed": unclaimed, "sender": sender},
                    daemon=True,
                )
                process.start()
                sender.close()  # the worker's end: this process only reads
                processes.append(process)
        except ImportError as exc:  # no working semaphores on this platform: to the caller, like a sandbox's refusal
            raise OSError(f"no worker processes on this platform: {exc}") from exc
        verifier = ChainVerifier(trust, policy)
        taken_over = _verify_in_order(verifier, stream, starts, ends, inbox, progress=progress)
    finally:
        _stop(processes, inbox)  # whatever the workers are still doing is not needed
    if not taken_over:
        return verify_serially()
    if progress is not None:
        progress(size)
    return verifier.finish(source=source)


def _work(
    path: str,
    starts: list[int],
    ends: list[int],
    *,
    trust: KeyLookup | None,
    policy: Policy,
    unclaimed: Synchronized[int],
    sender: Connection,
) -> None:
    """Worker process: claim chunks from the last one backwards and send ``(chunk, result)`` for each, ``None`` as
    the result when verifying the chunk failed (the main process then verifies it itself)."""
    _yield_to_other_work()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the main process, which then kills the workers
    while True:
        with unclaimed.get_lock():
            unclaimed.value -= 1
            chunk = unclaimed.value
        if chunk < 1:  # chunk 0 is the main process's from the start
            return
        try:
            result: SegmentResult | None = verify_segment(path, starts[chunk], ends[chunk], trust, policy)
        except Exception:  # any failure leaves the chunk to the main process
            result = None
        message = pickle.dumps((chunk, result), pickle.HIGHEST_PROTOCOL)
        for offset in range(0, len(message), _PIECE_BYTES):
            sender.send_bytes(message[offset : offset + _PIECE_BYTES])
        sender.send_bytes(b"")  # the end of the message


class _Inbox:
    """The main process's ends of the workers' pipes, and the chunks whose results have come through them."""

    def __init__(self) -> None:
        self.finished: dict[int, SegmentResult | None] = {}
        self.pipes: list[tuple[Connection, list[bytes]]] = []  # each with the pieces of a message not yet whole

    def collect(self) -> None:
        """Take in every whole message the workers have sent so far, without waiting for more."""
        for pipe in list(self.pipes):
            receiver, pieces = pipe
            try:
                while receiver.poll():
                    piece = receiver.recv_bytes()
                    if piece:
                        pieces.append(piece)
                        continue
                    chunk, result = pickle.loads(b"".join(pieces))  # noqa: S301 - sent by this process's own worker
                    pieces.clear()
                    self.finished[chunk] = result
            except (EOFError, OSError):  # the worker has gone: what it did not send, the main process verifies
                self.pipes.remove(pipe)
                receiver.close()


def _stop(processes: list[BaseProcess], inbox: _Inbox) -> None:
    """Kill every worker (SIGKILL: no process can ignore it or be too starved to act on it) and reap it."""
    for process in processes:
        process.kill()
    for process in processes:
        process.join()
        process.close()
    for receiver, _pieces in inbox.pipes:
        receiver.close()


def _verify_in_order(
    verifier: ChainVerifier,
    stream: BinaryIO,
    starts: list[int],
    ends: list[int],
    inbox: _Inbox,
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
            finished = _finished(inbox, chunk)
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
        if lines % _COLLECT_EVERY == 0:
            inbox.collect()
        if progress is not None and lines % _PROGRESS_EVERY == 0:
            arrived = (ends[c] - starts[c] for c, result in inbox.finished.items() if c >= chunk and result is not None)
            progress(position + sum(arrived))


def _yield_to_other_work() -> None:
    """The lowest priority for a worker, so it runs only on CPU time nothing else wants."""
    nice = getattr(os, "nice", None)  # not on Windows: there workers keep the normal priority
    if nice is not None:
        nice(19)


def _finished(inbox: _Inbox, chunk: int) -> SegmentResult | None:
    """A worker's result for ``chunk`` if it has arrived by now (a worker that failed sends none: the main process
    then verifies the chunk itself)."""
    inbox.collect()
    return inbox.finished.pop(chunk, None)


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
