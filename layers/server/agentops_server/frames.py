"""Replay frames (API.md, GET /v1/sessions/{id}/replay): what an investigator steps through, one event at a time.

Pure and deterministic: frames are derived from each verified event alone, in sequence order. Nothing is inferred,
smoothed, merged or reordered; a gap is shown only where a LOG_DROP event declares it.

Every event gives one primary frame, ``EVENT`` (the envelope) or, for a ``LOG_DROP`` event, ``LOG_DROP`` (the
envelope plus its drop figures). It is followed by a ``GAP`` frame when the LOG_DROP declares the missing range
(``sequence_range``, passed on exactly as declared), and by a ``REDACTION`` frame when the payload holds
``"[REDACTED]"`` values (their JSON Pointers). A page covers a range of sequence numbers and never splits the frames
of one event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentops_verify import find_redactions, loads

EVENT = "EVENT"
LOG_DROP = "LOG_DROP"
GAP = "GAP"
REDACTION = "REDACTION"

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
# Lambda answers at most 6 MB; the events of a page may take 5 MiB, leaving room for the report and the frame keys.
MAX_PAGE_BYTES = 5 * 1024 * 1024


def frames_for(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The frames of one event, in the order the module docstring gives."""
    sequence_number = event["sequence_number"]
    payload = event.get("payload")
    frames: list[dict[str, Any]]
    if event["event_type"] == LOG_DROP and isinstance(payload, dict):
        frames = [
            {
                "type": LOG_DROP,
                "sequence_number": sequence_number,
                "dropped_count": payload.get("dropped_count"),
                "drop_reason": payload.get("drop_reason"),
                "cumulative_drops": payload.get("cumulative_drops"),
                "event": dict(event),
            }
        ]
        if "sequence_range" in payload:
            frames.append(
                {
                    "type": GAP,
                    "sequence_number": sequence_number,
                    "declared_by_event_id": event["event_id"],
                    "sequence_range": payload["sequence_range"],
                    "dropped_count": payload.get("dropped_count"),
                }
            )
    else:
        frames = [{"type": EVENT, "sequence_number": sequence_number, "event": dict(event)}]
    redactions = list(find_redactions(payload, "/payload")) if payload is not None else []
    if redactions:
        frames.append(
            {
                "type": REDACTION,
                "sequence_number": sequence_number,
                "event_id": event["event_id"],
                "pointers": [redaction.pointer for redaction in redactions],
            }
        )
    return frames


@dataclass(frozen=True)
class Page:
    frames: list[dict[str, Any]]
    next_from_sequence: int | None


def build_page(
    lines: Iterable[bytes], from_sequence: int, limit: int, event_count: int, max_bytes: int = MAX_PAGE_BYTES
) -> Page:
    """Frames for the events with ``from_sequence <= sequence_number < from_sequence + limit``.

    ``lines`` yields the verified chain's canonical lines in order, starting at or before ``from_sequence`` (a
    reader that seeks may start a little early); ``event_count`` is the number of events in the verified chain:
    nothing past it is served (an open session may have grown since it was verified), and the last page says so
    (``next_from_sequence`` null). A page also stops before its events would pass ``max_bytes`` (it always holds at
    least one), so a response stays under Lambda's 6 MB cap whatever the payload sizes; ``next_from_sequence`` then
    names the first event left out.
    """
    end = min(from_sequence + limit, event_count)
    frames: list[dict[str, Any]] = []
    used = 0
    for line in lines:
        event = loads(line)
        sequence_number = event["sequence_number"]
        if sequence_number >= end:
            break
        if sequence_number < from_sequence:
            continue
        if frames and used + len(line) > max_bytes:
            return Page(frames, sequence_number)
        used += len(line)
        frames.extend(frames_for(event))
    return Page(frames, end if end < event_count else None)
