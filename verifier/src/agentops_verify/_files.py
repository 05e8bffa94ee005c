"""Reading inputs from files: the only I/O of the library (the CLI adds argument parsing and printing).

JSON Lines are verified as they are read, one line at a time, so memory does not grow with the file. Binary-mode
line iteration splits on LF bytes only, so U+2028, U+2029 and NEL inside strings stay ordinary characters (ELS
section 2). A JSON array or an export document is one JSON value and is read whole.

With evidence-log checks (LOG.md sections 6 and 7), a JSON Lines file is hashed as it is verified (a log proof's
leaf names the SHA-256 of the archive's exact bytes) and, for receipts, read a second time, which must give the
same SHA-256: the events compared are the events verified. Memory stays constant in the file's length.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ._chain import ChainVerifier
from ._documents import detect_shape, verify_bytes
from ._errors import MalformedJSONError
from ._eventline import JSON_WHITESPACE
from ._json import loads
from ._keys import TrustStore
from ._logchecks import LogChecks, report_with_log_checks, seal_payload_of_line
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
    log: LogChecks | None = None,
) -> Report:
    """Verify one file; ``progress`` (if given) is called now and then with the number of bytes read so far. Then
    the evidence-log checks ``log`` asks for.

    With ``workers`` > 1 and no ``log``, a JSON Lines file of at least 8 MiB is verified by that many processes
    (``_parallel``); the report is the same as a serial run's. Raises ``OSError`` when the file cannot be read, or
    changed while it was read twice for receipts."""
    source = os.fspath(path)
    with open(path, "rb") as stream:

        def verify_serially() -> Report:
            stream.seek(0)
            return verify_stream(stream, trust=trust, policy=policy, source=source, progress=progress, log=log)

        size = os.fstat(stream.fileno()).st_size
        if log is None and workers > 1 and size >= PARALLEL_MIN_BYTES and _starts_json_lines(stream):
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
            except OSError:
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
    log: LogChecks | None = None,
) -> Report:
    """Verify the input read from a binary stream (JSON Lines streamed; other shapes read whole), then the
    evidence-log checks ``log`` asks for. Receipts for JSON Lines read the stream again: it must be seekable."""
    leading: list[bytes] = []
    first = stream.readline()
    while first and not first.strip(_WHITESPACE):
        leading.append(first)
        first = stream.readline()
    shape, _ = detect_shape(first, None)
    if shape != "jsonl":
        data = b"".join(leading) + first + stream.read()
        return verify_bytes(data, trust=trust, policy=policy, source=source, log=log)
    verifier = ChainVerifier(trust, policy)
    if log is not None:
        head = [*leading, first]
        return _verify_with_log_checks(stream, head, verifier, policy=policy, log=log, source=source, progress=progress)
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


def _verify_with_log_checks(
    stream: BinaryIO,
    head: list[bytes],
    verifier: ChainVerifier,
    *,
    policy: Policy,
    log: LogChecks,
    source: str | None,
    progress: Callable[[int], None] | None,
) -> Report:
    """JSON Lines verified and hashed in one pass, keeping the last event's line (the seal, for a sealed chain)."""
    digest = hashlib.sha256()
    last_event = b""
    done = 0
    for count, line in enumerate(itertools.chain(head, stream), start=1):
        verifier.add_line(line)
        digest.update(line)
        if line.strip(_WHITESPACE):
            last_event = line
        if progress is not None:
            done += len(line)
            if count % _PROGRESS_EVERY == 0:
                progress(done)
    if progress is not None:
        progress(done)
    archive_sha256 = digest.hexdigest()

    def events_read_again() -> Iterator[Any]:
        # The receipts are compared with the verified events only: a second read that hashes differently (the file
        # changed meanwhile) is an error, not a verdict.
        stream.seek(0)
        again = hashlib.sha256()
        for line in stream:
            again.update(line)
            if line.strip(_WHITESPACE):
                try:
                    yield loads(line)
                except MalformedJSONError:
                    raise _changed(source) from None
        if again.hexdigest() != archive_sha256:
            raise _changed(source)

    return report_with_log_checks(
        verifier.outcome(),
        policy,
        log,
        seal_payload=seal_payload_of_line(last_event),
        events=events_read_again,
        archive_sha256=archive_sha256,
        source=source,
    )


def _changed(source: str | None) -> OSError:
    return OSError(f"{source or 'the input'} changed while it was being verified")
