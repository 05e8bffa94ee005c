"""Receipts (the evidence log's section 7, agent side): the service's acknowledgements, kept by the agent.

The 200 answer to an append lists each stored event's ``{"sequence_number", "event_id", "event_hash"}`` (API.md).
``ReceiptsFile`` appends one JSON line ``{"session_id", "sequence_number", "event_id", "event_hash"}`` per
acknowledged event, so the agent's owner can later check the sealed chain against what the service said it stored
(``agentops-verify --receipts``: ``RECEIPT_MISMATCH`` when the two differ).

Runs on the sender thread only, when a batch is stored. It never raises: a file that cannot be opened or written is
logged once (later failures at debug level) and the receipts of that batch are lost; delivery goes on. The file is
opened in append mode with the first acknowledgement, and each batch's lines are written through to it at once. A
receipt pairs the event the SDK sent (its session, sequence number and event id) with the hash the service
acknowledged for it. A position already receipted (an idempotent retry's answer) is not written again.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from typing import Any

from agentops_verify import HEX_DIGEST_PATTERN

from ._batch import Batch

logger = logging.getLogger("agentops_replay")

_EVENT_HASH = re.compile(HEX_DIGEST_PATTERN)


class ReceiptsFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: io.FileIO | None = None
        self._failed = False
        # Per open session: the first sequence number not yet receipted (dropped when the session's end is stored).
        self._receipted_up_to: dict[str, int] = {}

    def write(self, batch: Batch, answer: bytes) -> None:
        """Append the receipts of a stored ``batch`` from the service's 200 ``answer``. Never raises."""
        try:
            lines = self._lines(batch, answer)
            if lines:
                self._append("".join(lines).encode("ascii"))
        except Exception as exc:
            self._note_failure(exc)
        if batch.has_end:
            self._receipted_up_to.pop(batch.session_id, None)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception as exc:
                self._note_failure(exc)
            self._file = None

    def _lines(self, batch: Batch, answer: bytes) -> list[str]:
        acknowledged = _acknowledged_events(answer)
        if acknowledged is None:
            # A 409 whose head lies past the batch also means "stored", but lists no hashes: nothing to keep.
            logger.debug(
                "agentops: the service's answer for session %s at sequence %d lists no events; no receipts",
                batch.session_id,
                batch.first_sequence,
            )
            return []
        start = self._receipted_up_to.get(batch.session_id, 0)
        prefix = f'{{"session_id":{json.dumps(batch.session_id)},"sequence_number":'
        lines: list[str] = []
        for acknowledgement in acknowledged:
            sequence_number = acknowledgement.get("sequence_number")
            if not isinstance(sequence_number, int) or isinstance(sequence_number, bool):
                continue
            if sequence_number < max(start, batch.first_sequence):
                continue  # already receipted, or before this batch
            index = sequence_number - batch.first_sequence
            if index >= len(batch.events):
                continue  # not an event of this batch
            event_hash = acknowledgement.get("event_hash")
            if not isinstance(event_hash, str) or not _EVENT_HASH.fullmatch(event_hash):
                logger.warning(
                    "agentops: the service acknowledged sequence %d of session %s without a valid event_hash; "
                    "no receipt for it",
                    sequence_number,
                    batch.session_id,
                )
                continue
            event_id = batch.events[index]["event_id"]
            if acknowledgement.get("event_id") != event_id:
                logger.warning(
                    "agentops: the service acknowledged sequence %d of session %s under another event_id; the "
                    "receipt keeps the event_id the SDK sent",
                    sequence_number,
                    batch.session_id,
                )
            # The line of json.dumps({"session_id", "sequence_number", "event_id", "event_hash"}) in LOG.md's order,
            # built from parts: a dict per event cost most of the time this takes on the sender thread.
            lines.append(f'{prefix}{sequence_number},"event_id":{json.dumps(event_id)},"event_hash":"{event_hash}"}}\n')
            start = sequence_number + 1
        self._receipted_up_to[batch.session_id] = start
        return lines

    def _append(self, data: bytes) -> None:
        # Unbuffered: each batch's lines reach the file in one write (a forked child appending to the same file
        # interleaves whole batches), and nothing is left in a buffer to be written later.
        if self._file is None:
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open, closed with the sender
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(f"wrote nothing of {len(view)} bytes")
            view = view[written:]

    def _note_failure(self, exc: Exception) -> None:
        if self._failed:
            logger.debug("agentops: cannot write receipts to %s: %s", self.path, exc)
            return
        self._failed = True
        logger.error(
            "agentops: cannot write receipts to %s (%s: %s); delivery goes on without them (said once)",
            self.path,
            type(exc).__name__,
            exc,
        )


def _acknowledged_events(answer: bytes) -> list[dict[str, Any]] | None:
    """The ``events`` of a 200 answer (API.md), each an object; None when the answer has none."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    events = parsed.get("events") if isinstance(parsed, dict) else None
    if not isinstance(events, list):
        return None
    return [event for event in events if isinstance(event, dict)]
