"""Batch formation: where events get their sequence numbers (ELS section 1) and their final checks.

Runs on the sender thread only. The batch body is built once and kept, so every retry re-sends the identical bytes
(API.md: a re-sent stored batch is an idempotent 200).

One bad event never costs more than itself. An event the service would refuse (``event_problem``: no canonical form
even after the conversions of ``_values``, a canonical form the service's I-JSON reader refuses, or over 256 KiB) is
replaced, at its position, by a LOG_DROP of its own saying ``refused_by: "sdk"`` and the kind of problem. If the
service still refuses a batch for single events, ``refuse_event`` does the same with ``refused_by: "service"``, in a
batch not yet stored: the event's sequence number goes to its LOG_DROP, so the events after it keep theirs, and
``recount_drops`` brings every later LOG_DROP's ``cumulative_drops`` up to date.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentops_verify import (
    LOG_DROP,
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    SESSION_END,
    SESSION_START,
    SPEC_VERSION,
    CanonicalizationError,
    MalformedJSONError,
    canonicalize,
    loads,
)

from ._buffer import LATER_ID, Buffer, DropRun, PendingEvent, QueueItem, SessionState, new_event_id
from ._content import made_payload
from ._values import plain_json
from ._version import SOURCE_SDK_VER, VERSION
from .events import REFUSED, describe_problem, payload_problem

logger = logging.getLogger("agentops_replay")

# API.md: at most 500 events and 1 MiB per request, 256 KiB per canonical event. The service measures an event
# after adding payload_hash, prev_event_hash, event_hash, chain_authority and authority_id (about 300 bytes), so the
# SDK keeps 1 KiB of room: an event it sends is never refused for its size.
MAX_BATCH_EVENTS = 500
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENT_BYTES = 256 * 1024 - 1024
_TOO_LARGE = f"the event is over {MAX_EVENT_BYTES} bytes in canonical form (API.md: 256 KiB per event)"
_EVENTS_BETWEEN_YIELDS = 8
_BODY_PREFIX = b'{"events":['
_BODY_SUFFIX = b"]}"

# Who refused an event, in its LOG_DROP's ``refused_by``.
BY_SDK = "sdk"
BY_SERVICE = "service"


@dataclass
class Batch:
    session_id: str
    first_sequence: int
    items: list[QueueItem]  # the queue item behind each event: a recorded event, or a drop run (its LOG_DROP)
    events: list[dict[str, Any]]
    lines: list[bytes]  # each event's canonical form
    cumulative_before: int  # the session's cumulative_drops before this batch's first event
    attempts: int = 0
    next_attempt_at: float = 0.0
    failing_since: float | None = None
    body: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.rebuild_body()

    def rebuild_body(self) -> None:
        self.body = _BODY_PREFIX + b",".join(self.lines) + _BODY_SUFFIX

    @property
    def next_sequence(self) -> int:
        return self.first_sequence + len(self.events)

    @property
    def recorded_events(self) -> int:
        """Events the agent recorded (LOG_DROP events are the SDK's own)."""
        return sum(1 for item in self.items if not isinstance(item, DropRun))

    @property
    def last_ordinal(self) -> int:
        """Every record of the session up to this ordinal is settled once this batch is stored."""
        last = self.items[-1]
        return last.last_ordinal if isinstance(last, DropRun) else last[0]

    @property
    def has_end(self) -> bool:
        return bool(self.events[-1]["event_type"] == SESSION_END)


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


def _recorded_event(
    buffer: Buffer, state: SessionState, sequence: int, item: PendingEvent
) -> tuple[dict[str, Any], bytes] | str:
    """The event and its canonical form, or why the service would refuse it."""
    _, event_id, event_type, payload, wall_ns, mono_ns, hash_key, hash_value = item
    if event_id == LATER_ID:
        event_id = new_event_id()
        made = _made_payload(buffer, state, event_type, payload, hash_value)
        if isinstance(made, str):
            return made
        payload = made
    try:
        if holds_text_over(payload, MAX_EVENT_BYTES):
            return _TOO_LARGE
        if hash_key is not None:
            payload[hash_key] = buffer.digest(hash_value)
        event = _envelope(
            state, sequence, event_id=event_id, event_type=event_type, payload=payload, wall=wall_ns, mono=mono_ns
        )
        try:
            line = canonicalize(event)
        except CanonicalizationError:
            # Datetimes, bytes, sets, dataclasses, ... have one obvious JSON form (_values); converted only here,
            # so ordinary events pay nothing for it.
            event["payload"] = plain_json(payload)
            line = canonicalize(event)
    except (CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        return f"not I-JSON (ELS section 2): {describe_problem(str(exc))}"
    except Exception as exc:
        # The value's own code raised while it was read (a mapping whose items() fails, a dict another thread
        # changes meanwhile): its words may be content, so only its kind is said.
        return f"a value raised {type(exc).__name__} while it was read"
    problem = event_problem(line)
    if problem is not None:
        return problem
    return event, line


def holds_text_over(payload: dict[str, Any], limit: int) -> bool:
    """Whether a string or bytes value in ``payload`` (dicts, lists and tuples) is longer than ``limit``: its event is
    then over ``limit`` bytes in canonical form whatever else it holds. Checked before the event is written out, since
    writing a string of tens of megabytes holds the interpreter lock for a third of a second: the agent's threads
    would wait on the sender for an event it refuses anyway."""
    stack: list[tuple[Any, int]] = [(payload, 0)]
    while stack:
        value, depth = stack.pop()
        members = value.values() if type(value) is dict else value
        for member in members:
            kind = type(member)
            if kind is str or kind is bytes or kind is bytearray:
                if len(member) > limit:
                    return True
            elif (kind is dict or kind is list or kind is tuple) and depth < MAX_DEPTH:  # depth: a list may hold itself
                stack.append((member, depth + 1))
    return False


def _made_payload(
    buffer: Buffer, state: SessionState, event_type: str, build: Any, captured: tuple[Any, ...]
) -> dict[str, Any] | str:
    """The payload an integration's event is made of (``Session._record_later``), or why it cannot be recorded: the
    checks ``record()`` makes on the agent's thread, made here. An integration that fails to make its payload
    (a bug) is counted as an internal error and costs that event only."""
    try:
        payload = made_payload(build, captured, state.capture_content, buffer.digest)
    except (CanonicalizationError, RecursionError) as exc:
        return f"not I-JSON (ELS section 2): {describe_problem(str(exc))}"
    except Exception as exc:
        buffer.count_internal_error()
        logger.exception("agentops: internal error while making an event (recorded as a LOG_DROP)")
        return f"the SDK failed to make the event ({type(exc).__name__})"
    problem = payload_problem(event_type, payload)
    return payload if problem is None else problem


# An integer literal outside +-(2**53 - 1) has at least 16 digits (2**53 = 9007199254740992), and canonical JSON
# writes every number without an exponent below 1e21.
_LONG_NUMBER = re.compile(rb"[0-9]{16}")
# A batch body holds an event two levels down ({"events": [event]}): the body nests deeper than MAX_DEPTH only when
# the event has at least MAX_DEPTH - 1 brackets.
_DEEP_ENOUGH = MAX_DEPTH - 2


def event_problem(line: bytes) -> str | None:
    """Why the service would refuse an event whose canonical form is ``line``, or None.

    The service reads the batch body with the verifier's strict I-JSON reader (ELS section 2). A canonical form can
    still fail there in two ways: an integral double from 2**53 up to 1e21 (say 1e20) is written as an integer
    literal beyond +-(2**53 - 1), and the body nests the event two levels deeper than ``canonicalize`` measured. An
    event that could meet either is read back exactly as the service reads it."""
    if len(line) > MAX_EVENT_BYTES:
        return _TOO_LARGE
    if _LONG_NUMBER.search(line) is None and line.count(b"{") + line.count(b"[") < _DEEP_ENOUGH:
        return None
    try:
        loads(_BODY_PREFIX + line + _BODY_SUFFIX)
    except MalformedJSONError as exc:
        return f"not I-JSON (ELS section 2): {describe_problem(str(exc))}"
    return None


def _log_drop_event(state: SessionState, sequence: int, run: DropRun, cumulative: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "dropped_count": run.count,
        "cumulative_drops": cumulative,
        "drop_reason": run.reason,
        "sequence_range": [run.first_ordinal, run.last_ordinal],
    }
    if run.refusal is not None:
        payload["refused_by"], payload["problem"] = run.refusal
    return _envelope(
        state,
        sequence,
        event_id=str(uuid.uuid4()),
        event_type=LOG_DROP,
        payload=payload,
        wall=run.wall_ns,
        mono=run.mono_ns,
    )


def form_batch(buffer: Buffer, state: SessionState, batch_size: int) -> Batch | None:
    """Take the session's next events off its queue and number them, or return None when nothing is queued."""
    limit = min(batch_size, MAX_BATCH_EVENTS)
    first_sequence = state.next_sequence
    cumulative_before = state.cumulative_drops
    items: list[QueueItem] = []
    events: list[dict[str, Any]] = []
    lines: list[bytes] = []
    body_size = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
    while len(events) < limit:
        if state.carry is not None:
            item, event, line = state.carry
            state.carry = None
        else:
            popped = buffer.pop(state)
            if popped is None:
                break
            item = popped
            sequence = first_sequence + len(events)
            if not isinstance(item, DropRun):
                formed = _recorded_event(buffer, state, sequence, item)
                if isinstance(formed, str):
                    buffer.release_refused(by_service=False)
                    buffer.refusals.note(formed)
                    item = DropRun(REFUSED, item[0], item[0], (BY_SDK, formed), wall_ns=item[4], mono_ns=item[5])
                else:
                    event, line = formed
            if isinstance(item, DropRun):
                event = _log_drop_event(state, sequence, item, state.cumulative_drops + item.count)
                line = canonicalize(event)
        if events and body_size + len(line) + 1 > MAX_BODY_BYTES:
            state.carry = (item, event, line)
            break
        if isinstance(item, DropRun):
            state.cumulative_drops += item.count
        items.append(item)
        events.append(event)
        lines.append(line)
        body_size += len(line) + 1
        # Canonicalizing is CPU work under the GIL: give the agent's threads a turn every few events (a few hundred
        # microseconds of work), so a record() call never waits for a whole batch to be formed.
        if len(events) % _EVENTS_BETWEEN_YIELDS == 0:
            time.sleep(0)
    if not events:
        return None
    state.next_sequence = first_sequence + len(events)
    return Batch(state.session_id, first_sequence, items, events, lines, cumulative_before)


def refuse_event(buffer: Buffer, state: SessionState, batch: Batch, index: int, problem: str) -> bool:
    """The service refused event ``index`` of ``batch`` (not yet stored). A recorded event is replaced by a LOG_DROP
    at its sequence number; SESSION_START and SESSION_END, which a session cannot do without, keep only their
    required keys. Returns False when there is nothing left to take out (the event is already a LOG_DROP, or
    already trimmed): the refusal is then not about this event's content. Call ``recount_drops`` afterwards."""
    item = batch.items[index]
    if isinstance(item, DropRun):
        return False
    event = batch.events[index]
    sequence = batch.first_sequence + index
    if event["event_type"] in (SESSION_START, SESSION_END):
        payload = event["payload"]
        trimmed = (
            {"agent_id": payload["agent_id"], "sdk_version": VERSION}
            if event["event_type"] == SESSION_START
            else {"status": payload["status"]}
        )
        if payload == trimmed:
            return False
        event["payload"] = trimmed
        batch.lines[index] = canonicalize(event)
        return True
    buffer.release_refused(by_service=True)
    run = DropRun(REFUSED, item[0], item[0], (BY_SERVICE, problem), wall_ns=item[4], mono_ns=item[5])
    batch.items[index] = run
    batch.events[index] = _log_drop_event(state, sequence, run, 0)  # its cumulative count comes from recount_drops
    batch.lines[index] = canonicalize(batch.events[index])
    return True


def recount_drops(state: SessionState) -> None:
    """Make the ``cumulative_drops`` of every LOG_DROP formed but not yet stored (the inflight batch, the batches
    formed after it, the carried event) count the drops before it, after ``refuse_event`` added one."""
    batches: list[Batch] = [state.inflight, *state.formed]
    cumulative = batches[0].cumulative_before
    for batch in batches:
        batch.cumulative_before = cumulative
        for index, item in enumerate(batch.items):
            if isinstance(item, DropRun):
                cumulative += item.count
                payload = batch.events[index]["payload"]
                if payload["cumulative_drops"] != cumulative:
                    payload["cumulative_drops"] = cumulative
                    batch.lines[index] = canonicalize(batch.events[index])
        batch.rebuild_body()
    state.cumulative_drops = cumulative
    if state.carry is not None and isinstance(state.carry[0], DropRun):
        item, event, _ = state.carry
        event["payload"]["cumulative_drops"] = cumulative + item.count
        state.carry = (item, event, canonicalize(event))


def split_batch(batch: Batch) -> tuple[Batch, Batch]:
    """The two halves of a batch, numbered as they were: to find an event the service refused without naming it."""
    half = len(batch.events) // 2
    first = Batch(
        batch.session_id,
        batch.first_sequence,
        batch.items[:half],
        batch.events[:half],
        batch.lines[:half],
        batch.cumulative_before,
    )
    drops_in_first = sum(item.count for item in first.items if isinstance(item, DropRun))
    second = Batch(
        batch.session_id,
        batch.first_sequence + half,
        batch.items[half:],
        batch.events[half:],
        batch.lines[half:],
        batch.cumulative_before + drops_in_first,
    )
    return first, second
