"""The bounded buffer shared by the agent's threads (which append) and the sender thread (which drains).

Sequence numbers are NOT assigned here. An event gets its sequence number only when the sender puts it into a batch
(``_batch.py``), after the last checks that can reject it. That is what keeps every chain contiguous:

- an event dropped because the buffer is full never gets a number; consecutive drops in a session are coalesced into
  one drop run queued in their place, which the sender turns into ONE ``LOG_DROP`` event at that position;
- an event found invalid off-thread (a nested value that is not I-JSON), or refused by the service, is replaced by
  a ``LOG_DROP`` of its own that takes its place, so the evidence states the loss (``_batch``, ``_sender``);
- events that wait longer than ``network_loss_after`` while the server is unreachable are turned into a
  ``NETWORK_LOSS`` run the same way (``expire_waiting``), so an outage cannot pin memory.

What every record does get at record time is an ordinal: its position in the session's recording order (0 is
SESSION_START), dropped or not. A LOG_DROP's ``sequence_range`` is the ``[first, last]`` ordinals of the events it
stands for, so an auditor can tell which of the recorded events were lost even though they never had sequence numbers.

All fields are protected by ``Buffer.lock``; the sender owns ``SessionState`` fields marked "sender only".
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agentops_verify import SESSION_END, SESSION_START

from .events import BUFFER_FULL, NETWORK_LOSS
from .privacy import ContentDigest

logger = logging.getLogger("agentops_replay")

# Event ids are random (version 4) UUIDs. uuid.uuid4() costs a system call and an object per id, a third of a
# record() call; a private generator seeded from os.urandom formats one in about a microsecond. Private so that an
# agent seeding the global `random` cannot make ids repeat; reseeded in a forked child so parent and child differ.
_ID_SOURCE = random.Random()
os.register_at_fork(after_in_child=_ID_SOURCE.seed)
# RFC 9562 version 4: the version digit is 4; the variant digit keeps the two low bits of a random digit, 10xx.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_event_id() -> str:
    digits = _ID_SOURCE.randbytes(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT_DIGIT[digits[16]]}{digits[17:20]}-{digits[20:]}"


# The event id of an event queued by ``append_later``: the sender draws its id when it makes the event.
LATER_ID = ""


# ELS section 3 / issue 6: a session's start and end are never dropped, whatever the buffer's state.
_NEVER_DROPPED = frozenset({SESSION_START, SESSION_END})

# A recorded event as the sender sees it: (ordinal, event_id, event_type, payload, wall_ns, mono_ns, hash_key,
# hash_value). When ``hash_key`` is set the sender stores ``payload_hash(hash_value)`` under it, so hashing content
# never runs on the agent's thread. An event queued by ``append_later`` has ``LATER_ID``, the function that makes its
# payload in place of the payload, and the values captured for it in place of ``hash_value``.
PendingEvent = tuple[int, str, str, Any, int, int, str | None, Any]


class DropRun:
    """Consecutive dropped events of one session, for one reason; becomes exactly one LOG_DROP. A refused event is a
    run of one with ``refusal`` set: who refused it and why, in words that quote no value. ``wall_ns`` and
    ``mono_ns`` are the recording times of the run's last event, which its LOG_DROP takes: it stands in that place,
    so the chain's timestamps keep the recording order."""

    __slots__ = ("first_ordinal", "last_ordinal", "mono_ns", "reason", "refusal", "wall_ns")

    def __init__(
        self,
        reason: str,
        first_ordinal: int,
        last_ordinal: int,
        refusal: tuple[str, str] | None = None,
        *,
        wall_ns: int,
        mono_ns: int,
    ) -> None:
        self.reason = reason
        self.first_ordinal = first_ordinal
        self.last_ordinal = last_ordinal
        self.refusal = refusal
        self.wall_ns = wall_ns
        self.mono_ns = mono_ns

    @property
    def count(self) -> int:
        return self.last_ordinal - self.first_ordinal + 1


QueueItem = PendingEvent | DropRun

_SLOTS = 8
# Slots of a drop run in the flat queue: (first_ordinal, None, reason, refusal, last_ordinal, mono_ns, wall_ns, None).
_LAST_ORDINAL = 4
_DROP_MONO = 5
_DROP_WALL = 6


class SessionQueue:
    """A session's queued records, FIFO, stored flat: eight slots per record in one deque.

    Why flat: a per-record tuple or object holding a dict is tracked by the cyclic garbage collector for as long as
    it is buffered, so a full buffer (10,000 records) would make every young-generation collection walk it, and those
    pauses (about a millisecond) would land on record() calls. Ints, strings and flat dicts in a deque are not
    collector objects of their own, so a buffered event costs the collector nothing.
    """

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: deque[Any] = deque()

    def __len__(self) -> int:
        return len(self._slots) // _SLOTS

    def push_event(self, event: PendingEvent) -> int:
        """Queue a recorded event; returns how many records are queued."""
        slots = self._slots
        slots.extend(event)
        return len(slots) // _SLOTS

    def push_drop(self, reason: str, ordinal: int, wall_ns: int, mono_ns: int) -> bool:
        """Record one dropped event; returns True when it started a new run (False: coalesced into the last)."""
        slots = self._slots
        if (
            slots
            and slots[-7] is None
            and slots[-6] == reason
            and slots[-5] is None
            and slots[-_SLOTS + _LAST_ORDINAL] == ordinal - 1
        ):
            slots[-_SLOTS + _LAST_ORDINAL] = ordinal
            slots[-_SLOTS + _DROP_MONO] = mono_ns
            slots[-_SLOTS + _DROP_WALL] = wall_ns
            return False
        slots.extend((ordinal, None, reason, None, ordinal, mono_ns, wall_ns, None))
        return True

    def pop(self) -> QueueItem | None:
        slots = self._slots
        if not slots:
            return None
        record = tuple(slots.popleft() for _ in range(_SLOTS))
        if record[1] is None:
            return DropRun(
                record[2],
                record[0],
                record[_LAST_ORDINAL],
                record[3],
                wall_ns=record[_DROP_WALL],
                mono_ns=record[_DROP_MONO],
            )
        return record

    def push_front(self, items: list[QueueItem]) -> None:
        for item in reversed(items):
            if isinstance(item, DropRun):
                flat: tuple[Any, ...] = (
                    item.first_ordinal,
                    None,
                    item.reason,
                    item.refusal,
                    item.last_ordinal,
                    item.mono_ns,
                    item.wall_ns,
                    None,
                )
            else:
                flat = item
            self._slots.extendleft(reversed(flat))

    def clear(self) -> None:
        self._slots.clear()


@dataclass(eq=False)
class SessionState:
    session_id: str
    mono_origin_ns: int
    capture_content: bool = False  # how the payloads of events queued by ``Buffer.append_later`` place content
    queue: SessionQueue = field(default_factory=SessionQueue)
    next_ordinal: int = 0
    # Every record with an ordinal up to this one is settled: stored by the service (itself or as part of a
    # LOG_DROP), found invalid, or refused. The queue is FIFO, so this only grows; flush() waits on it.
    settled_ordinal: int = -1
    # Why records on this session are refused: "ended", "forked" (inherited by a child process), "rejected" (the
    # server refused the session), or None while it is open.
    closed_reason: str | None = None
    # Sender only:
    next_sequence: int = 0
    cumulative_drops: int = 0
    inflight: Any = None  # the Batch being delivered
    # Batches already formed and numbered, to deliver after the inflight one: the parts of a batch the service
    # refused without naming the event, split to find it (_sender.Sender._split).
    formed: list[Any] = field(default_factory=list)
    carry: Any = None  # an event formed for the next batch (the previous one was full)
    end_sent: bool = False


@dataclass
class Counters:
    recorded: int = 0
    dropped: int = 0
    invalid: int = 0
    sent: int = 0
    rejected: int = 0
    retries: int = 0
    internal_errors: int = 0


class RefusalLog:
    """Says why an event was refused once per kind of problem (a warning), then only at debug level, so an agent
    that records the same bad value in a loop does not flood its logs. Remembers at most ``_MAX_KINDS`` kinds."""

    _MAX_KINDS = 256

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def note(self, problem: str) -> None:
        with self._lock:
            first = problem not in self._seen and len(self._seen) < self._MAX_KINDS
            if first:
                self._seen.add(problem)
        if first:
            logger.warning(
                "agentops: event not recorded: %s (said once; further events refused for this are counted in "
                "stats()['invalid'] and logged at debug level)",
                problem,
            )
        else:
            logger.debug("agentops: event not recorded: %s", problem)


class Buffer:
    def __init__(self, max_buffer: int, batch_size: int, digest: ContentDigest | None = None) -> None:
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        # How the sender digests content recorded as a hash (keyed when the client has a content digest key).
        self.digest = digest if digest is not None else ContentDigest(None)
        self.refusals = RefusalLog()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.wake = threading.Event()
        self.sessions: dict[str, SessionState] = {}
        self.counters = Counters()
        # Recorded events held in memory (queued or in flight): the quantity max_buffer bounds.
        self.pending = 0
        # Queue items (events and drop runs) not yet acknowledged or discarded: 0 means nothing is left to deliver
        # (the sender stops early at close, and close() reports it).
        self.outstanding = 0

    def open_session(self, session_id: str, *, capture_content: bool = False) -> SessionState:
        state = SessionState(session_id=session_id, mono_origin_ns=time.monotonic_ns(), capture_content=capture_content)
        with self.lock:
            self.sessions[session_id] = state
        return state

    def append(
        self,
        state: SessionState,
        event_type: str,
        payload: dict[str, Any],
        hash_key: str | None = None,
        hash_value: Any = None,
    ) -> str | None:
        """Queue one event (the caller has validated it). Returns its event id, or None when it was not queued."""
        event_id = new_event_id()
        queued = self._push(state, event_id, event_type, payload, hash_key=hash_key, hash_value=hash_value)
        return event_id if queued else None

    def append_later(self, state: SessionState, event_type: str, build: Any, captured: tuple[Any, ...]) -> None:
        """Queue one event whose payload the sender makes (``build(*captured)``, ``_content.made_payload``) and
        checks, and whose event id it draws (``LATER_ID``): the agent's thread pays only for its place and time."""
        self._push(state, LATER_ID, event_type, build, hash_value=captured)

    def _push(
        self,
        state: SessionState,
        event_id: str,
        event_type: str,
        payload: Any,
        *,
        hash_key: str | None = None,
        hash_value: Any = None,
    ) -> bool:
        wall_ns = time.time_ns()
        mono_ns = time.monotonic_ns()
        essential = event_type in _NEVER_DROPPED
        with self.lock:
            if state.closed_reason is not None:
                if state.closed_reason == "rejected":
                    self.counters.rejected += 1
                else:
                    self.counters.invalid += 1
                return False
            ordinal = state.next_ordinal
            state.next_ordinal = ordinal + 1
            queue = state.queue
            if self.pending >= self.max_buffer and not essential:
                self.counters.dropped += 1
                if queue.push_drop(BUFFER_FULL, ordinal, wall_ns, mono_ns):
                    self.outstanding += 1
                return False
            queued = queue.push_event((ordinal, event_id, event_type, payload, wall_ns, mono_ns, hash_key, hash_value))
            self.pending += 1
            self.outstanding += 1
            self.counters.recorded += 1
            if event_type == SESSION_END:
                state.closed_reason = "ended"
            # Wake the sender once, when the queue reaches a full batch (not on every record past it).
            wake = queued == self.batch_size or essential
        if wake:
            self.wake.set()
        return True

    def refuse(self, problem: str) -> None:
        """An event refused before it was queued: counted as invalid, and said once per kind of problem."""
        with self.lock:
            self.counters.invalid += 1
        self.refusals.note(problem)

    def count_internal_error(self) -> None:
        with self.lock:
            self.counters.internal_errors += 1

    def pop(self, state: SessionState) -> QueueItem | None:
        with self.lock:
            return state.queue.pop()

    def release_refused(self, *, by_service: bool) -> None:
        """A queued event was refused (by the sender's checks, or by the service): it no longer counts against
        ``max_buffer``, and it is counted as invalid or rejected. Its queue item lives on as the LOG_DROP that takes
        its place, and is acknowledged with it."""
        with self.lock:
            if by_service:
                self.counters.rejected += 1
            else:
                self.counters.invalid += 1
            self.pending -= 1

    def acknowledge(self, state: SessionState, events: int, recorded_events: int, last_ordinal: int) -> None:
        with self.lock:
            self.counters.sent += events
            self.pending -= recorded_events
            self.outstanding -= events
            state.inflight = None
            state.settled_ordinal = max(state.settled_ordinal, last_ordinal)
            self.changed.notify_all()

    def settle(self, state: SessionState, last_ordinal: int) -> None:
        with self.lock:
            state.settled_ordinal = max(state.settled_ordinal, last_ordinal)
            self.changed.notify_all()

    def watermarks(self) -> list[tuple[SessionState, int]]:
        """Each session with the ordinal of its latest record: what flush() waits to see settled."""
        with self.lock:
            return [(state, state.next_ordinal - 1) for state in self.sessions.values()]

    def reject_session(self, state: SessionState) -> None:
        """The server refused the session for good: count and release everything it still holds."""
        with self.lock:
            state.closed_reason = "rejected"
            self.sessions.pop(state.session_id, None)  # the Session object still refuses (and counts) records
            items: list[QueueItem] = []
            while (item := state.queue.pop()) is not None:
                items.append(item)
            if state.carry is not None:
                items.append(state.carry[0])
                state.carry = None
            released_items = len(items)
            recorded = sum(1 for item in items if not isinstance(item, DropRun))
            batches = ([state.inflight] if state.inflight is not None else []) + state.formed
            for batch in batches:
                recorded += batch.recorded_events
                released_items += len(batch.events)
            state.inflight = None
            state.formed.clear()
            self.counters.rejected += recorded
            self.pending -= recorded
            self.outstanding -= released_items
            state.settled_ordinal = state.next_ordinal - 1
            self.changed.notify_all()

    def expire_waiting(self, state: SessionState, older_than_ns: int) -> int:
        """Turn queued events recorded before ``older_than_ns`` into NETWORK_LOSS runs (never SESSION_START or
        SESSION_END). Returns how many events were dropped."""
        with self.lock:
            queue = state.queue
            kept: list[QueueItem] = []
            expired = 0
            while (item := queue.pop()) is not None:
                if not isinstance(item, DropRun):
                    ordinal, _, event_type, _, wall_ns, mono_ns, _, _ = item
                    if event_type == SESSION_START:
                        kept.append(item)
                        continue
                    if mono_ns >= older_than_ns or event_type == SESSION_END:
                        kept.append(item)
                        break
                    expired += 1
                    last = kept[-1] if kept else None
                    if isinstance(last, DropRun) and last.reason == NETWORK_LOSS and last.last_ordinal == ordinal - 1:
                        last.last_ordinal = ordinal
                        last.wall_ns, last.mono_ns = wall_ns, mono_ns
                        self.outstanding -= 1
                    else:
                        kept.append(DropRun(NETWORK_LOSS, ordinal, ordinal, wall_ns=wall_ns, mono_ns=mono_ns))
                else:
                    kept.append(item)
            queue.push_front(kept)
            self.pending -= expired
            self.counters.dropped += expired
            return expired

    def forget_finished(self, state: SessionState) -> None:
        with self.lock:
            idle = state.carry is None and state.inflight is None and not state.formed
            if state.end_sent and not len(state.queue) and idle:
                self.sessions.pop(state.session_id, None)

    def active_sessions(self) -> list[SessionState]:
        with self.lock:
            return list(self.sessions.values())

    def is_idle(self) -> bool:
        return self.outstanding == 0
