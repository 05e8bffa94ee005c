"""The hand-over between segments of one JSON Lines file verified in parallel (``_parallel``).

A worker starts its segment from the segment's first event as if every event before it had verified
(``start_segment``), checks the rest, and hands back a ``SegmentResult``. The main process checks that first event
itself with the real state, then takes the worker's result over (``take_over``) when that is plainly what a serial run
would have found (``can_take_over``); otherwise the caller verifies the whole file serially.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._checks import check_drop_counts
from ._report import Finding, Violation
from ._seal import UNSEALED, SealState
from ._state import MAX_WARNINGS_PER_TYPE, ChainState, DeferredDrop

_uuid = rules.UUID.fullmatch
_timestamp = rules.TIMESTAMP.fullmatch


@dataclass(frozen=True)
class SegmentResult:
    """What a worker verifying one segment of a JSON Lines file hands back."""

    lines: int
    events: int
    first_line: bytes | None
    first_line_number: int
    usable: bool
    violation: Violation | None
    warnings: tuple[Finding, ...]
    warning_counts: dict[str, int]
    drops: tuple[DeferredDrop, ...]
    ids: tuple[int, ...]
    last_hash: str | None
    last_time: str | None
    has_end: bool
    seal: SealState
    has_log_drop: bool


def start_segment(state: ChainState, event: Any) -> bool:
    """Worker side: set ``state`` to what verifying every event up to and including ``event`` would leave behind.
    False when the event cannot be a starting point (the main process then reports what is wrong with it)."""
    if type(event) is not dict:
        return False
    sequence_number = event.get("sequence_number")
    event_id = event.get("event_id")
    session_id = event.get("session_id")
    claimed_hash = event.get("event_hash")
    timestamp_wall = event.get("timestamp_wall")
    event_type = event.get("event_type")
    authority = event.get("chain_authority")
    if not (
        type(sequence_number) is int
        and type(event_id) is str
        and _uuid(event_id)
        and type(session_id) is str
        and type(claimed_hash) is str
        and type(timestamp_wall) is str
        and _timestamp(timestamp_wall)
        and type(event_type) is str
        and authority in rules.AUTHORITIES
    ):
        return False
    id_number = int(event_id.replace("-", ""), 16)
    state.count = sequence_number + 1
    state.session_id = session_id
    state.authority = authority
    state.last_hash = claimed_hash
    state.last_time = timestamp_wall
    state.seen_ids.add(id_number)
    state.segment_ids = [id_number]
    state.deferred_drops = []
    state.has_end = event_type == rules.SESSION_END
    state.seal = SealState(index=sequence_number) if event_type == rules.CHAIN_SEAL else UNSEALED
    return True


def segment_result(
    state: ChainState, *, lines: int, events: int, first_line: bytes | None, first_line_number: int, usable: bool
) -> SegmentResult:
    """Worker side: what the main process needs to continue from the end of this segment."""
    return SegmentResult(
        lines=lines,
        events=events,
        first_line=first_line,
        first_line_number=first_line_number,
        usable=usable,
        violation=state.violation,
        warnings=tuple(state.warnings),
        warning_counts=dict(state.warning_counts),
        drops=tuple(state.deferred_drops or ()),
        ids=tuple(state.segment_ids or ()),
        last_hash=state.last_hash,
        last_time=state.last_time,
        has_end=state.has_end,
        seal=state.seal,
        has_log_drop=state.has_log_drop,
    )


def can_take_over(state: ChainState, segment: SegmentResult) -> bool:
    """Main side, after checking the segment's first event: whether the worker's findings are what a serial run
    would report. Not when the worker found a violation or listed too many warnings, nor when one of its event ids
    repeats an earlier segment's."""
    return (
        segment.usable
        and segment.violation is None
        and not any(id_number in state.seen_ids for id_number in segment.ids[1:])
        and not any(count > MAX_WARNINGS_PER_TYPE for count in segment.warning_counts.values())
    )


def take_over(state: ChainState, segment: SegmentResult, first_index: int) -> None:
    """Main side: continue ``state`` from the end of a segment whose first event (at ``first_index``) it checked."""
    # The worker's warnings and the drop counts it deferred, in the order a serial run meets them.
    listed = 0
    for index, event_id, dropped, cumulative, listed_before in segment.drops:
        _repeat_warnings(state, segment.warnings[listed:listed_before])
        listed = listed_before
        check_drop_counts(state, dropped, cumulative, index, event_id)
    _repeat_warnings(state, segment.warnings[listed:])
    state.seen_ids.update(segment.ids)
    state.count = first_index + segment.events
    state.last_hash = segment.last_hash
    state.last_time = segment.last_time
    state.has_end = state.has_end or segment.has_end
    state.has_log_drop = state.has_log_drop or segment.has_log_drop
    if segment.seal.index is not None and segment.seal.index != first_index:
        state.seal = segment.seal


def _repeat_warnings(state: ChainState, warnings: tuple[Finding, ...]) -> None:
    for warning in warnings:
        if warning.type == codes.LEGACY_SCHEMA_VERSION and state.legacy_schema_reported:
            continue
        state.legacy_schema_reported |= warning.type == codes.LEGACY_SCHEMA_VERSION
        state.warn(warning.type, warning.message, warning.event_sequence, warning.event_id, **warning.context)
