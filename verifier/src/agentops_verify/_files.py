"""Reading inputs from files: the only I/O of the library (the CLI adds argument parsing and printing).

JSON Lines are verified as they are read, one line at a time, so memory does not grow with the file. Binary-mode
line iteration splits on LF bytes only, so U+2028, U+2029 and NEL inside strings stay ordinary characters (ELS
section 2). A JSON array or an export document is one JSON value and is read whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import BinaryIO

from ._chain import ChainVerifier
from ._documents import detect_shape, verify_bytes
from ._eventline import JSON_WHITESPACE
from ._keys import TrustStore
from ._parallel import verify_file_in_parallel
from ._policy import Policy
from ._report import Report

_WHITESPACE = JSON_WHITESPACE.encode("ascii")
# Files smaller than this are not worth starting processes for.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
# How many lines pass between two progress callbacks.
_PROGRESS_EVERY = 4096


def verify_file(
    path: str | os.PathLike[str],
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Report:
    """Verify one file; ``progress`` (if given) is called now and then with the number of bytes read so far.

    With ``workers`` > 1, a JSON Lines file of at least 8 MiB is verified by that many processes (``_parallel``);
    the report is the same as a serial run's. Raises ``OSError`` when the file cannot be read."""
    source = os.fspath(path)
    with open(path, "rb") as stream:

        def verify_serially() -> Report:
            stream.seek(0)
            return verify_stream(stream, trust=trust, policy=policy, source=source, progress=progress)

        size = os.fstat(stream.fileno()).st_size
        if workers > 1 and size >= PARALLEL_MIN_BYTES and _starts_json_lines(stream):
            stream.seek(0)
            try:
                return verify_file_in_parallel(
                    source,
                    stream,
                    size,
                    workers=workers,
                    trust=trust,
                    policy=policy,
                    source=source,
                    progress=progress,
                    verify_serially=verify_serially,
                )
            except (OSError, NotImplementedError, BrokenProcessPool):
                # No worker processes here (some sandboxes forbid them): the same check, in this process.
                return verify_serially()
        return verify_serially()


def _starts_json_lines(stream: BinaryIO) -> bool:
    first = stream.readline()
    while first and not first.strip(_WHITESPACE):
        first = stream.readline()
    return detect_shape(first, None)[0] == "jsonl"


def verify_stream(
    stream: BinaryIO,
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify the input read from a binary stream (JSON Lines streamed; other shapes read whole)."""
    leading: list[bytes] = []
    first = stream.readline()
    while first and not first.strip(_WHITESPACE):
        leading.append(first)
        first = stream.readline()
    shape, _ = detect_shape(first, None)
    if shape != "jsonl":
        return verify_bytes(b"".join(leading) + first + stream.read(), trust=trust, policy=policy, source=source)
    verifier = ChainVerifier(trust, policy)
    for line in leading:
        verifier.add_line(line)
    verifier.add_line(first)
    if progress is None:
        for line in stream:
            verifier.add_line(line)
    else:
        done = sum(map(len, leading)) + len(first)
        for count, line in enumerate(stream, start=1):
            verifier.add_line(line)
            done += len(line)
            if count % _PROGRESS_EVERY == 0:
                progress(done)
        progress(done)
    return verifier.finish(source=source)
