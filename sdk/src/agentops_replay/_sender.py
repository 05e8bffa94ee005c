"""The background sender: one daemon thread per client that forms batches and delivers them.

Per session there is at most one batch in flight, because the server only accepts a batch that starts at the
session's next sequence number (API.md). A failed attempt is retried with exponential backoff and full jitter,
re-sending the batch's identical bytes; meanwhile the session's later events wait in the buffer, and those that wait
longer than ``network_loss_after`` become a NETWORK_LOSS run (``Buffer.expire_waiting``).

A refusal that concerns single events (400 INVALID_JSON or VALIDATION_ERROR, 413 PAYLOAD_TOO_LARGE) costs only those
events: each becomes a LOG_DROP in its place and the rest of the batch is sent again (``_batch.refuse_event``); when
the service does not say which event it refused, the batch is sent in halves until the event is alone. Any other
refusal is final for the session.

With a receipts file (``_receipts``), each stored batch's acknowledgements are appended to it here, on this thread.

The loop catches every exception, logs it, counts it and carries on: the thread never dies silently. ``close`` sets a
deadline; the loop keeps delivering until everything is acknowledged or the deadline passes, then exits, and no
request it makes outlives the deadline by more than the connect/read timeout it was given.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from ._batch import Batch, event_problem, form_batch, recount_drops, refuse_event, split_batch
from ._buffer import Buffer, SessionState
from ._receipts import ReceiptsFile
from .events import describe_problem
from .transport import Outcome, SendResult, Transport

logger = logging.getLogger("agentops_replay")

_MIN_REQUEST_TIMEOUT = 0.05
# Jitter from a private generator: an agent that seeds the global `random` must not synchronise its retries with
# every other process that did the same.
_JITTER = random.Random()


@dataclass(frozen=True)
class SenderSettings:
    batch_size: int
    flush_interval: float
    request_timeout: float
    backoff_base: float
    backoff_max: float
    network_loss_after: float


class Sender:
    def __init__(
        self, buffer: Buffer, transport: Transport, settings: SenderSettings, receipts: ReceiptsFile | None = None
    ) -> None:
        self._buffer = buffer
        self._transport = transport
        self._receipts = receipts
        self._batch_size = settings.batch_size
        self._flush_interval = settings.flush_interval
        self._request_timeout = settings.request_timeout
        self._backoff_base = settings.backoff_base
        self._backoff_max = settings.backoff_max
        self._network_loss_after = settings.network_loss_after
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start the thread if it is not running (first session, or it was lost to a fork)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._start_lock:
            if self._deadline is None and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="agentops-replay-sender", daemon=True)
                self._thread.start()

    def stop(self, timeout: float) -> None:
        """Deliver what it can until ``timeout`` seconds from now, then stop. Returns within about ``timeout``."""
        self._deadline = time.monotonic() + max(timeout, 0.0)
        self._buffer.wake.set()
        thread = self._thread
        if thread is None:
            self._transport.close()
        elif thread is not threading.current_thread():
            thread.join(max(timeout, 0.0))  # the thread closes the transport as it exits

    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    self._transport.close()
                    if self._receipts is not None:
                        self._receipts.close()
                    return
            except Exception:
                # The sender must outlive its own bugs: log, count, pause briefly, and keep going.
                logger.exception("agentops: sender error (continuing)")
                with self._buffer.lock:
                    self._buffer.counters.internal_errors += 1
                self._buffer.wake.wait(0.1)

    def _step(self) -> bool:
        """One pass over the sessions. Returns True when the thread should exit."""
        buffer = self._buffer
        buffer.wake.clear()
        now = time.monotonic()
        deadline = self._deadline
        if deadline is not None and (now >= deadline or buffer.is_idle()):
            return True
        wake_at = now + self._flush_interval
        for state in buffer.active_sessions():
            if state.inflight is None:
                state.inflight = state.formed.pop(0) if state.formed else form_batch(buffer, state, self._batch_size)
                if state.inflight is None:
                    buffer.forget_finished(state)
                    continue
            batch = state.inflight
            if batch.next_attempt_at > now:
                wake_at = min(wake_at, batch.next_attempt_at)
                continue
            result = self._transport.send(batch, self._timeout_for_request())
            self._settle(state, result)
            # After a delivery, more may be queued behind it: go round again at once.
            wake_at = now if state.inflight is None else min(wake_at, state.inflight.next_attempt_at)
        if deadline is not None:
            wake_at = min(wake_at, deadline)
        delay = wake_at - time.monotonic()
        if delay > 0:
            buffer.wake.wait(delay)
        return False

    def _timeout_for_request(self) -> float:
        if self._deadline is None:
            return self._request_timeout
        return max(_MIN_REQUEST_TIMEOUT, min(self._request_timeout, self._deadline - time.monotonic()))

    def _settle(self, state: SessionState, result: SendResult) -> None:
        batch = state.inflight
        buffer = self._buffer
        if result.outcome is Outcome.STORED:
            if batch.has_end:
                state.end_sent = True
            if self._receipts is not None:
                # Before the acknowledgement wakes flush(): once it returns, the receipts are in the file.
                self._receipts.write(batch, result.answer)
            buffer.acknowledge(state, len(batch.events), batch.recorded_events, batch.last_ordinal)
            return
        if result.outcome is Outcome.REJECTED:
            if self._refused_events_taken_out(state, result):
                return
            logger.error(
                "agentops: the service refused session %s at sequence %d (%s); its remaining events are counted as "
                "rejected and no longer sent",
                state.session_id,
                batch.first_sequence,
                result.detail,
            )
            buffer.reject_session(state)
            return
        now = time.monotonic()
        batch.attempts += 1
        if batch.failing_since is None:
            batch.failing_since = now
        delay = min(self._backoff_max, self._backoff_base * 2 ** (batch.attempts - 1))
        batch.next_attempt_at = now + _JITTER.uniform(delay / 2, delay)
        with buffer.lock:
            buffer.counters.retries += 1
        if batch.attempts == 1 or batch.attempts % 10 == 0:
            logger.warning(
                "agentops: delivery of session %s failed (%s); retrying (attempt %d)",
                state.session_id,
                result.detail,
                batch.attempts,
            )
        if now - batch.failing_since >= self._network_loss_after:
            cutoff = time.monotonic_ns() - int(self._network_loss_after * 1e9)
            expired = buffer.expire_waiting(state, cutoff)
            if expired:
                logger.warning(
                    "agentops: %d events of session %s lost to the outage (NETWORK_LOSS)", expired, state.session_id
                )

    def _refused_events_taken_out(self, state: SessionState, result: SendResult) -> bool:
        """The service refused the batch for single events: take them out (each becomes a LOG_DROP in its place, or
        the batch is split to find one the service did not name) and send again at once. False when the refusal is
        not about single events, or nothing more can be taken out: then the session is refused for good."""
        batch = state.inflight
        refused = refused_event_indexes(batch, result)
        if refused is None:
            return False
        if not refused:
            first, second = split_batch(batch)
            state.inflight = first
            state.formed.insert(0, second)
            logger.debug(
                "agentops: the service refused a batch of session %s (%s) without naming the event; sending it in "
                "halves to find it",
                state.session_id,
                result.detail,
            )
            return True
        for index, problem in sorted(refused.items()):
            if not refuse_event(self._buffer, state, batch, index, problem):
                return False
            self._buffer.refusals.note(f"refused by the service: {problem}")
        recount_drops(state)
        batch.attempts = 0
        batch.next_attempt_at = 0.0
        batch.failing_since = None
        # Said once per kind of problem by the note above; the details of every refusal at debug level.
        logger.debug(
            "agentops: the service refused %d event(s) of session %s (%s); each is replaced by a LOG_DROP in its "
            "place and the rest is sent again",
            len(refused),
            state.session_id,
            result.detail,
        )
        return True


# API.md: the refusals that concern single events of a batch rather than the session.
_EVENT_REFUSALS = frozenset({"INVALID_JSON", "VALIDATION_ERROR", "PAYLOAD_TOO_LARGE"})


def refused_event_indexes(batch: Batch, result: SendResult) -> dict[int, str] | None:
    """Which events of ``batch`` the service refused, each with the kind of problem (in words that quote no value);
    empty when the refusal concerns single events the service did not name (and the batch holds more than one);
    None when it is not about single events.

    VALIDATION_ERROR lists ``{event_index, field, problem}`` in ``details.errors``; PAYLOAD_TOO_LARGE names one
    ``event_index`` (or none, for the whole body); INVALID_JSON names none, since the body did not parse, so the
    events are read back as the service reads them (``event_problem``)."""
    if result.code not in _EVENT_REFUSALS:
        return None
    details = result.details
    if result.code == "VALIDATION_ERROR":
        errors = details.get("errors")
        if not isinstance(errors, list) or not errors:
            return None
        refused: dict[int, str] = {}
        for error in errors:
            index = error.get("event_index") if isinstance(error, dict) else None
            if type(index) is not int or not 0 <= index < len(batch.events):
                return None  # a problem of the body, not of one event
            # pydantic's problems name the allowed values, never the value given: kept as they are.
            refused[index] = f"VALIDATION_ERROR {error.get('field', '')}: {error.get('problem', '')}"
        return refused
    if result.code == "PAYLOAD_TOO_LARGE":
        problem = "PAYLOAD_TOO_LARGE: the event is over the service's size limit"
        index = details.get("event_index")
        if type(index) is int and 0 <= index < len(batch.events):
            return {index: problem}
        return {0: problem} if len(batch.events) == 1 else {}
    problem = describe_problem(f"INVALID_JSON: {details.get('problem', '')}")
    if len(batch.events) == 1:
        return {0: problem}
    return {index: problem for index, line in enumerate(batch.lines) if event_problem(line) is not None}
