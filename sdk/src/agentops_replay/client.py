"""The public recorder: ``AgentOpsClient`` and ``Session``.

Promises to the agent (issue 6): ``record`` and the typed helpers never raise and stay cheap (they validate shallowly,
copy the payload's top level and append it to a bounded buffer; numbering, hashing and sending happen on the sender
thread); memory is bounded by ``max_buffer``; ``close`` and the interpreter-exit hook are bounded by their timeout;
a forked child gets a fresh sender and starts empty (see ``_after_fork_in_child``).

Integrations go further (issue 16), through ``Session._record_later``: on the framework's thread they only capture
the values an event is made of (``privacy.snapshot``) and queue them in order, with the event's time; the payload is
made, converted (``privacy.jsonable``), digested and checked on the sender thread, by the same rules as the helpers'
(``tool_call_content`` and the other ``*_content`` functions). A payload found unrecordable there becomes a LOG_DROP
in its place, as any event the sender refuses.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from agentops_verify import REDACTED, SESSION_END, SESSION_START

from ._batch import MAX_EVENT_BYTES, holds_text_over
from ._buffer import Buffer, SessionState
from ._content import (
    Content,
    model_request_content,
    model_response_content,
    tool_call_content,
    tool_result_content,
)
from ._receipts import ReceiptsFile
from ._sender import Sender, SenderSettings
from ._values import plain_json
from ._version import VERSION
from .events import (
    ANNOTATION,
    DECISION_TRACE,
    ERROR,
    MODEL_REQUEST,
    MODEL_RESPONSE,
    SESSION_END_STATUSES,
    TOOL_CALL,
    TOOL_RESULT,
    mistyped_keys,
    payload_problem,
    value_problem,
    wrong_type,
)
from .privacy import ContentDigest, digest_key_from, redact, text_of
from .transport import HttpTransport, LocalChainWriter, Transport

logger = logging.getLogger("agentops_replay")

_LIVE_CLIENTS: weakref.WeakSet[AgentOpsClient] = weakref.WeakSet()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_Helper = TypeVar("_Helper", bound=Callable[..., "str | None"])


def _never_raises(helper: _Helper) -> _Helper:
    """Typed helpers build their payload from the caller's arguments, which can be anything: whatever goes wrong is
    counted as an internal error, never raised into the agent."""

    @functools.wraps(helper)
    def guarded(self: Session, *args: Any, **kwargs: Any) -> str | None:
        try:
            return helper(self, *args, **kwargs)
        except Exception:
            self._internal_error()
            return None

    return guarded  # type: ignore[return-value]


class Session:
    """One recorded agent run. Obtain it from ``AgentOpsClient.start_session`` or ``AgentOpsClient.session``.

    ``session_id`` is the session's id (a UUID string), the id the API, replay, export and the verifier use for it.
    """

    __slots__ = ("_capture_content", "_client", "_started_ns", "_state", "session_id")

    def __init__(self, client: AgentOpsClient, state: SessionState, capture_content: bool) -> None:
        # The buffer is looked up through the client on every call, so that after a fork the child's sessions and
        # inherited ones use the child's fresh buffer (and its unlocked lock).
        self._client = client
        self._state = state
        self._capture_content = capture_content
        self._started_ns = time.monotonic_ns()
        self.session_id = state.session_id

    @property
    def ended(self) -> bool:
        """True once the session takes no more records (ended, or closed with its client)."""
        return self._state.closed_reason is not None

    @property
    def capture_content(self) -> bool:
        """Whether content (prompts, completions, arguments, results) is recorded as text rather than hashes."""
        return self._capture_content

    def record(self, event_type: str, payload: Mapping[str, Any]) -> str | None:
        """Record one event; returns its event id, or None when it was not recorded (invalid, dropped, ended).

        Never raises. The payload's top level is copied; do not mutate nested values after recording them.
        """
        try:
            copied = _plain_dict(payload)
            problem = payload_problem(event_type, copied)
            if problem is not None:
                self._client._refuse(problem)
                return None
            return self._client._queue(self._state, event_type, copied)
        except Exception:
            self._internal_error()
            return None

    def _record_later(self, event_type: str, build: Callable[..., dict[str, Any] | Content], *captured: Any) -> None:
        """Queue an event whose payload ``build(*captured)`` makes on the sender thread (``_content.made_payload``).
        For integrations: ``captured`` must not change after this call (``privacy.snapshot``). Never raises."""
        try:
            self._client._queue_later(self._state, event_type, build, captured)
        except Exception:
            self._internal_error()

    def _record_content(
        self, event_type: str, payload: dict[str, Any], content_key: str, hash_key: str, content: Any
    ) -> str | None:
        """Record a helper's event. Unless content is captured, ``content`` is recorded as its hash under ``hash_key``,
        computed on the sender thread. (Callers are guarded by ``_never_raises``.)"""
        if content is not None and self._capture_content:
            payload[content_key] = content
            content = None
        problem = payload_problem(event_type, payload)
        if problem is not None:
            self._client._refuse(problem)
            return None
        if content is None:
            return self._client._queue(self._state, event_type, payload)
        return self._client._queue(self._state, event_type, payload, hash_key, content)

    def _internal_error(self) -> None:
        """Count and log an unexpected exception of the SDK (or of an integration); never raises."""
        # Logging can fail too (a broken handler); the agent must not see that either.
        with contextlib.suppress(Exception):
            self._client._count_internal_error()
            logger.exception("agentops: internal error while recording (event not recorded)")

    def digest(self, value: Any) -> str:
        """The digest this session records in place of ``value`` (what the helpers put in ``prompt_hash``,
        ``args_hash``, ...): plain SHA-256 of its canonical form, or keyed when the client has a
        ``content_digest_key``. Computed now, on the calling thread. Raises ``agentops_verify.CanonicalizationError``
        for a value that has no canonical form."""
        return self._client._digest(value)

    def redact(self, payload: Mapping[str, Any], *keys: str) -> dict[str, Any]:
        """``agentops_replay.redact`` with the client's content digest key: each of ``keys`` becomes
        ``"[REDACTED]"`` with its digest in ``<key>_hash``."""
        return redact(payload, *keys, digest_key=self._client._digest_key)

    @_never_raises
    def model_request(
        self,
        model: str,
        *,
        messages: Any = None,
        provider: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> str | None:
        """MODEL_REQUEST. ``messages`` is recorded as ``prompt_hash`` unless the client captures content."""
        return self._record_content(MODEL_REQUEST, *model_request_content(model, messages, provider, parameters))

    @_never_raises
    def model_response(
        self,
        model: str,
        *,
        content: Any = None,
        finish_reason: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> str | None:
        """MODEL_RESPONSE. ``content`` is recorded as ``content_hash`` unless the client captures content."""
        return self._record_content(MODEL_RESPONSE, *model_response_content(model, content, finish_reason, usage))

    @_never_raises
    def tool_call(self, tool_name: str, *, args: Any = None, tool_id: str | None = None) -> str | None:
        """TOOL_CALL. ``args`` is recorded as ``args_hash`` unless the client captures content."""
        return self._record_content(TOOL_CALL, *tool_call_content(tool_name, args, tool_id))

    @_never_raises
    def tool_result(
        self,
        tool_name: str,
        *,
        result: Any = None,
        tool_id: str | None = None,
        status: str | None = None,
        duration_ms: float | None = None,
    ) -> str | None:
        """TOOL_RESULT. ``result`` is recorded as ``result_hash`` unless the client captures content;
        ``duration_ms`` is rounded to a whole number of milliseconds (ELS keeps it an integer)."""
        return self._record_content(TOOL_RESULT, *tool_result_content(tool_name, result, tool_id, status, duration_ms))

    @_never_raises
    def decision(
        self,
        decision_id: str,
        *,
        inputs: Any,
        outputs: Any,
        justification: Any,
        policy_version: str | None = None,
    ) -> str | None:
        """DECISION_TRACE. Without content capture, ``justification`` is recorded as ``"[REDACTED]"`` plus
        ``justification_hash`` (it is usually model text); ``inputs`` and ``outputs`` are recorded as given."""
        payload: dict[str, Any] = {"decision_id": decision_id, "inputs": inputs, "outputs": outputs}
        if policy_version is not None:
            payload["policy_version"] = policy_version
        if self._capture_content:
            payload["justification"] = justification
            return self.record(DECISION_TRACE, payload)
        payload["justification"] = REDACTED
        return self._record_content(DECISION_TRACE, payload, "justification", "justification_hash", justification)

    @_never_raises
    def error(self, error_type: str, message: str, *, fatal: bool = False, tool_id: str | None = None) -> str | None:
        """ERROR. No stack trace is recorded (ELS section 3). ``tool_id`` ties the error to the tool call that raised
        it (the ``tool_id`` of its TOOL_CALL)."""
        payload: dict[str, Any] = {"error_type": error_type, "message": message, "fatal": fatal}
        if tool_id is not None:
            payload["tool_id"] = tool_id
        return self.record(ERROR, payload)

    @_never_raises
    def annotate(
        self, annotator_id: str, annotation_type: str, content: Any, *, target_event_id: str | None = None
    ) -> str | None:
        """ANNOTATION (``annotation_type`` is flag, comment or rating)."""
        payload: dict[str, Any] = {"annotator_id": annotator_id, "annotation_type": annotation_type, "content": content}
        if target_event_id is not None:
            payload["target_event_id"] = target_event_id
        return self.record(ANNOTATION, payload)

    def end(self, status: str = "success", **fields: Any) -> str | None:
        """Record SESSION_END (never dropped). ``fields``: ``reason``, ``duration_ms`` (measured when omitted),
        ``total_cost_usd``. Later records on this session are ignored and counted as invalid."""
        try:
            if status not in SESSION_END_STATUSES:
                self._client._refuse(wrong_type(SESSION_END, "status", status))
                return None
            payload: dict[str, Any] = {"status": status, **fields}
            payload.setdefault("duration_ms", (time.monotonic_ns() - self._started_ns) // 1_000_000)
            # Once per session, worth checking fully here: SESSION_END is never dropped, and must never be refused.
            _leave_out_unrecordable(SESSION_END, payload)
            return self._client._queue(self._state, SESSION_END, payload)
        except Exception:
            self._internal_error()
            return None


def _plain_dict(payload: Any) -> Any:
    """A shallow copy as a plain dict of any mapping (dict subclasses, read-only views); anything else unchanged, for
    the validation to refuse. A mapping that fails to copy is refused the same way."""
    if type(payload) is dict:
        return payload.copy()
    if isinstance(payload, Mapping):
        try:
            return dict(payload)
        except Exception:
            return None
    return payload


def _leave_out_unrecordable(event_type: str, payload: dict[str, Any]) -> None:
    """SESSION_START and SESSION_END must never be refused: each value the service would refuse is left out, with a
    warning that says what is allowed, and values with an obvious JSON form (datetimes, ...) are converted. The keys
    a session cannot do without (``agent_id``, ``status``) are already valid."""
    for key in mistyped_keys(event_type, payload):
        logger.warning("agentops: %s; %r left out", wrong_type(event_type, key, payload[key]), key)
        del payload[key]
    for key in list(payload):
        if type(key) is not str:
            logger.warning("agentops: %s metadata key %r is not a string (ELS section 2); left out", event_type, key)
            del payload[key]
            continue
        value = payload[key]
        problem: str | None = None
        try:
            if holds_text_over({key: value}, MAX_EVENT_BYTES):  # checked without writing it out on this thread
                problem = f"over the {MAX_EVENT_BYTES} bytes an event may hold (API.md)"
            else:
                value = plain_json(value)
                not_json = value_problem(value)
                if not_json is not None:
                    problem = f"not I-JSON (ELS section 2: {not_json})"
        except Exception as exc:  # the value's own code raised while it was read (a mapping whose items() fail)
            problem = f"it raised {type(exc).__name__} while it was read"
        if problem is None:
            payload[key] = value
        else:
            logger.warning("agentops: %s %r is %s; left out", event_type, key, problem)
            del payload[key]


class _DisabledSession:
    """What every call returns under ``AGENTOPS_DISABLED=1``: the same surface, doing nothing."""

    capture_content = False
    ended = False

    def __init__(self) -> None:
        self.session_id = str(uuid.uuid4())

    def __getattr__(self, name: str) -> Any:
        return _do_nothing


def _do_nothing(*args: Any, **kwargs: Any) -> None:
    return None


class AgentOpsClient:
    """Records agent sessions and delivers them to AgentOps Replay (or, with ``local_path``, chains them locally).

    ``endpoint`` defaults to ``AGENTOPS_ENDPOINT``; requests are SigV4-signed for ``execute-api`` with botocore's
    default credential chain in ``region`` (default: ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / botocore's config).
    ``AGENTOPS_DISABLED=1`` makes every method a cheap no-op. Without an endpoint or ``local_path`` the client is
    disabled too (with a warning), because there is nowhere to deliver to. ``content_digest_key`` (default:
    ``AGENTOPS_CONTENT_DIGEST_KEY``) makes every content digest ``"hmac-sha256:<hex>"`` under that key (``privacy``).
    ``receipts_path`` (default: ``AGENTOPS_RECEIPTS_FILE``) appends every acknowledgement of the service to that JSON
    Lines file, for ``agentops-verify --receipts`` (``_receipts``).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        region: str | None = None,
        max_buffer: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        capture_content: bool = False,
        local_path: str | os.PathLike[str] | None = None,
        request_timeout: float = 5.0,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        network_loss_after: float = 60.0,
        exit_timeout: float = 2.0,
        content_digest_key: bytes | str | None = None,
        receipts_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.capture_content = capture_content
        self._closed = False
        self._exit_timeout = exit_timeout
        endpoint = endpoint or os.environ.get("AGENTOPS_ENDPOINT") or None
        self.disabled = _env_flag("AGENTOPS_DISABLED")
        if not self.disabled and endpoint is None and local_path is None:
            logger.warning("agentops: no endpoint (AGENTOPS_ENDPOINT) and no local_path; recording is disabled")
            self.disabled = True
        self.local_writer = LocalChainWriter(local_path) if local_path is not None else None
        self._endpoint = endpoint
        self._region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self._settings = SenderSettings(
            batch_size=max(1, batch_size),
            flush_interval=flush_interval,
            request_timeout=request_timeout,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            network_loss_after=network_loss_after,
        )
        self._max_buffer = max(1, max_buffer)
        self._receipts_path = receipts_path or os.environ.get("AGENTOPS_RECEIPTS_FILE") or None
        if self._receipts_path is not None and local_path is not None:
            logger.warning("agentops: local authority mode has no service to acknowledge events; no receipts are kept")
            self._receipts_path = None
        self._digest_key: bytes | None = None
        self._digest = ContentDigest(None)
        if self.disabled:
            return
        try:
            self._digest_key = digest_key_from(content_digest_key)
            self._digest = ContentDigest(self._digest_key)
            self._transport = self._new_transport()
        except Exception:
            # Fail open: a malformed endpoint, AWS configuration or digest key must not stop the agent from starting
            # (and content is never digested without the key the owner asked for).
            logger.exception("agentops: cannot set up delivery; recording is disabled")
            self.disabled = True
            return
        self._buffer = Buffer(self._max_buffer, self._settings.batch_size, self._digest)
        self._sender = Sender(self._buffer, self._transport, self._settings, self._new_receipts())
        _LIVE_CLIENTS.add(self)
        atexit.register(self._close_at_exit)

    def _new_receipts(self) -> ReceiptsFile | None:
        # Opened by the sender thread with the first acknowledgement, never here on the agent's thread.
        return ReceiptsFile(self._receipts_path) if self._receipts_path is not None else None

    def _new_transport(self) -> Transport:
        if self.local_writer is not None:
            return self.local_writer
        assert self._endpoint is not None
        return HttpTransport(self._endpoint, self._region)

    def start_session(self, agent_id: str, *, tags: list[str] | None = None, **metadata: Any) -> Session:
        """Open a session and record its SESSION_START. ``metadata`` goes into the SESSION_START payload
        (ELS section 3 names ``environment``, ``framework``, ``framework_version``, ``system_prompt_hash``)."""
        if self.disabled:
            return _DisabledSession()  # type: ignore[return-value]
        try:
            return self._start_session(agent_id, tags, metadata)
        except Exception:
            logger.exception("agentops: internal error while starting a session (not recorded)")
            with contextlib.suppress(Exception):
                self._count_internal_error()
            return _DisabledSession()  # type: ignore[return-value]

    def _start_session(self, agent_id: str, tags: list[str] | None, metadata: dict[str, Any]) -> Session:
        payload: dict[str, Any] = {"agent_id": text_of(agent_id), "sdk_version": VERSION, **metadata}
        if tags is not None:
            payload["tags"] = list(tags) if isinstance(tags, list | tuple) else tags  # a string is not a list of tags
        if not payload["agent_id"]:
            payload["agent_id"] = "unnamed-agent"
        # Too long for an event, or a lone surrogate, say: the session still needs a name.
        if len(payload["agent_id"]) > MAX_EVENT_BYTES or value_problem(payload["agent_id"]) is not None:
            logger.warning("agentops: agent_id is not I-JSON or too long (ELS section 2); recorded as 'unnamed-agent'")
            payload["agent_id"] = "unnamed-agent"
        # Once per session, worth checking fully here: SESSION_START is never dropped, and must never be refused.
        _leave_out_unrecordable(SESSION_START, payload)
        state = self._buffer.open_session(str(uuid.uuid4()), capture_content=self.capture_content)
        if self._closed:
            state.closed_reason = "ended"
        self._buffer.append(state, SESSION_START, payload)
        if not self._closed:
            self._sender.ensure_running()
        return Session(self, state, self.capture_content)

    @contextlib.contextmanager
    def session(self, agent_id: str, *, tags: list[str] | None = None, **metadata: Any) -> Iterator[Session]:
        """A session that ends with ``success``, or ``failure`` (reason: the exception's type) if the block raises;
        the exception is re-raised. A session the block ended itself is left as it is."""
        session = self.start_session(agent_id, tags=tags, **metadata)
        try:
            yield session
        except BaseException as exc:
            if not session.ended:
                session.end("failure", reason=type(exc).__name__)
            raise
        if not session.ended:
            session.end("success")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded before this call is acknowledged by the service (dropped events through
        their LOG_DROP; invalid or refused ones are settled too); True if that happened within ``timeout`` seconds.
        Events recorded meanwhile by other threads are not waited for."""
        if self.disabled:
            return True
        try:
            buffer = self._buffer
            watermarks = buffer.watermarks()
            buffer.wake.set()
            with buffer.changed:
                return buffer.changed.wait_for(
                    lambda: all(state.settled_ordinal >= latest for state, latest in watermarks), max(timeout, 0.0)
                )
        except Exception:
            logger.exception("agentops: internal error while flushing")
            return False

    def close(self, timeout: float = 5.0) -> bool:
        """Flush for at most ``timeout`` seconds, then stop the sender. Returns True when nothing was left unsent.
        Later records are ignored."""
        if self.disabled:
            return True
        try:
            return self._close(timeout)
        except Exception:
            logger.exception("agentops: internal error while closing")
            return False

    def _close(self, timeout: float) -> bool:
        if self._closed:
            return self._buffer.is_idle()
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self._close_at_exit)
        self._sender.stop(timeout)
        with self._buffer.lock:
            for state in self._buffer.sessions.values():
                if state.closed_reason is None:
                    state.closed_reason = "ended"
            idle = self._buffer.is_idle()
        if not idle:
            logger.warning("agentops: closed with %d events undelivered", self._buffer.pending)
        return idle

    def _close_at_exit(self) -> None:
        self.close(self._exit_timeout)

    # What Session records through. The buffer is looked up on every call, never held: a forked child replaces it
    # (with its lock) in _after_fork_in_child.

    def _queue(
        self,
        state: SessionState,
        event_type: str,
        payload: dict[str, Any],
        hash_key: str | None = None,
        hash_value: Any = None,
    ) -> str | None:
        """Queue a validated event; ``hash_value`` is digested into ``hash_key`` by the sender."""
        return self._buffer.append(state, event_type, payload, hash_key, hash_value)

    def _queue_later(
        self,
        state: SessionState,
        event_type: str,
        build: Callable[..., dict[str, Any] | Content],
        captured: tuple[Any, ...],
    ) -> None:
        """Queue an event whose payload ``build(*captured)`` makes on the sender thread."""
        self._buffer.append_later(state, event_type, build, captured)

    def _refuse(self, problem: str) -> None:
        """An event refused at record time: counted as invalid, and said once per kind of problem."""
        self._buffer.refuse(problem)

    def _count_internal_error(self) -> None:
        self._buffer.count_internal_error()

    def stats(self) -> dict[str, int]:
        """Counters since the client was created (or since the fork, in a child process)."""
        if self.disabled:
            return dict.fromkeys(
                ("recorded", "sent", "dropped", "invalid", "rejected", "retries", "internal_errors", "pending"), 0
            )
        with self._buffer.lock:
            counters = self._buffer.counters
            return {
                "recorded": counters.recorded,
                "sent": counters.sent,
                "dropped": counters.dropped,
                "invalid": counters.invalid,
                "rejected": counters.rejected,
                "retries": counters.retries,
                "internal_errors": counters.internal_errors,
                "pending": self._buffer.pending,
            }

    def _after_fork_in_child(self) -> None:
        # Fork policy: the parent keeps sending what it recorded; the child starts empty with a fresh buffer, lock,
        # transport and sender. Sessions inherited from the parent are closed in the child (their records are ignored
        # and counted as invalid), because two processes appending to one session would fork its chain.
        old_buffer = self._buffer
        for state in list(old_buffer.sessions.values()):
            state.closed_reason = "forked"
        self._transport = self._new_transport()
        self._buffer = Buffer(self._max_buffer, self._settings.batch_size, self._digest)
        self._sender = Sender(self._buffer, self._transport, self._settings, self._new_receipts())


def _reset_clients_in_child() -> None:
    for client in list(_LIVE_CLIENTS):
        client._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_clients_in_child)
