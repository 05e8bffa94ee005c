"""Batch formation: where events get their sequence numbers (ELS section 1) and their final checks.

Runs on the sender thread only. The batch body is built once and kept, so every retry re-sends the identical bytes
(API.md: a re-sent stored batch is an idempotent 200).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from agentops_verify import SPEC_VERSION, CanonicalizationError, canonicalize, payload_hash

from ._buffer import Buffer, DropRun, PendingEvent, SessionState
from ._version import SOURCE_SDK_VER
from .events import LOG_DROP, MAX_SAFE_INTEGER, SESSION_END

# API.md: at most 500 events and 1 MiB per request, 256 KiB per canonical event. The service measures an event
# after adding payload_hash, prev_event_hash, event_hash, chain_authority and authority_id (about 300 bytes), so the
# SDK keeps 1 KiB of room: an event it sends is never refused for its size.
MAX_BATCH_EVENTS = 500
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENT_BYTES = 256 * 1024 - 1024
_EVENTS_BETWEEN_YIELDS = 8
_BODY_PREFIX = b'{"events":['
_BODY_SUFFIX = b"]}"


@dataclass
class Batch:
    session_id: str
    first_sequence: int
    events: list[dict[str, Any]]
    body: bytes
    recorded_events: int  # events the agent recorded (LOG_DROP events are the SDK's own)
    has_end: bool
    last_ordinal: int  # every record of the session up to this ordinal is settled once this batch is stored
    attempts: int = 0
    next_attempt_at: float = 0.0
    failing_since: float | None = None

    @property
    def next_sequence(self) -> int:
        return self.first_sequence + len(self.events)


def rfc3339(wall_ns: int) -> str:
    seconds, nanos = divmod(wall_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1000:06d}Z"


def _envelope(
    state: SessionState,
    sequence: int,
    *,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    wall: int,
    mono: int,
) -> dict[str, Any]:
    # timestamp_monotonic counts from the session's start so it stays a safe integer (ELS section 2) however long
    # the host has been up.
    return {
        "event_id": event_id,
        "session_id": state.session_id,
        "sequence_number": sequence,
        "timestamp_wall": rfc3339(wall),
        "timestamp_monotonic": min(max(mono - state.mono_origin_ns, 0), MAX_SAFE_INTEGER),
        "event_type": event_type,
        "source_sdk_ver": SOURCE_SDK_VER,
        "schema_ver": SPEC_VERSION,
        "payload": payload,
    }


def _recorded_event(state: SessionState, sequence: int, item: PendingEvent) -> dict[str, Any]:
    _, event_id, event_type, payload, wall_ns, mono_ns, hash_key, hash_value = item
    if hash_key is not None:
        payload[hash_key] = payload_hash(hash_value)
    return _envelope(
        state, sequence, event_id=event_id, event_type=event_type, payload=payload, wall=wall_ns, mono=mono_ns
    )


def _log_drop_event(state: SessionState, sequence: int, run: DropRun, cumulative: int) -> dict[str, Any]:
    payload = {
        "dropped_count": run.count,
        "cumulative_drops": cumulative,
        "drop_reason": run.reason,
        "sequence_range": [run.first_ordinal, run.last_ordinal],
    }
    return _envelope(
        state,
        sequence,
        event_id=str(uuid.uuid4()),
        event_type=LOG_DROP,
        payload=payload,
        wall=time.time_ns(),
        mono=time.monotonic_ns(),
    )


def form_batch(buffer: Buffer, state: SessionState, batch_size: int) -> Batch | None:
    """Take the session's next events off its queue and number them, or return None when nothing is queued."""
    limit = min(batch_size, MAX_BATCH_EVENTS)
    first_sequence = state.next_sequence
    events: list[dict[str, Any]] = []
    lines: list[bytes] = []
    body_size = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
    recorded = 0
    last_ordinal: int | None = None  # of the records taken off the queue (sent in this batch, or found invalid)
    while len(events) < limit:
        if state.carry is not None:
            item, event, line = state.carry
            state.carry = None
        else:
            item = buffer.pop(state)
            if item is None:
                break
            sequence = first_sequence + len(events)
            if not isinstance(item, DropRun):
                try:
                    event = _recorded_event(state, sequence, item)
                    line = canonicalize(event)
                except (CanonicalizationError, TypeError, ValueError, RecursionError):
                    line = b""
                if not line or len(line) > MAX_EVENT_BYTES:
                    buffer.discard_invalid()
                    last_ordinal = item[0]
                    continue
            else:
                event = _log_drop_event(state, sequence, item, state.cumulative_drops + item.count)
                line = canonicalize(event)
        if events and body_size + len(line) + 1 > MAX_BODY_BYTES:
            state.carry = (item, event, line)
            break
        if not isinstance(item, DropRun):
            recorded += 1
            last_ordinal = item[0]
        else:
            state.cumulative_drops += item.count
            last_ordinal = item.last_ordinal
        events.append(event)
        lines.append(line)
        body_size += len(line) + 1
        # Canonicalizing is CPU work under the GIL: give the agent's threads a turn every few events (a few hundred
        # microseconds of work), so a record() call never waits for a whole batch to be formed.
        if len(events) % _EVENTS_BETWEEN_YIELDS == 0:
            time.sleep(0)
    if not events:
        if last_ordinal is not None:  # only invalid records were queued: they are settled now
            buffer.settle(state, last_ordinal)
        return None
    assert last_ordinal is not None
    state.next_sequence = first_sequence + len(events)
    body = _BODY_PREFIX + b",".join(lines) + _BODY_SUFFIX
    has_end = events[-1]["event_type"] == SESSION_END
    return Batch(state.session_id, first_sequence, events, body, recorded, has_end, last_ordinal)
