"""OpenTelemetry span exporter (``pip install agentops-replay[otel]``): GenAI semantic-convention spans -> events.

Add it to a tracer provider you own, e.g. ``provider.add_span_processor(SimpleSpanProcessor(
AgentOpsSpanExporter(client)))``; it never installs itself globally. Spans without ``gen_ai.operation.name`` are
ignored. Sessions: one per ``gen_ai.conversation.id``, else one per trace. A trace's session ends when the trace's
local root span ends (``failure`` if that span's status is an error). A conversation outlives any one trace, so its
session ends when no GenAI span has come for ``idle_seconds`` (``timeout``; checked whenever spans are exported, and
a later span of the conversation starts a new session) or at ``shutdown()``. The default, 15 minutes, ends sessions
well before the service would seal them as incomplete (``SealIdleSeconds``, an hour by default); ``None`` keeps them
open until ``shutdown()``. A session starts when its first GenAI span ends (a child span, usually); its ``agent_id``
is that span's ``gen_ai.agent.name`` or else the exporter's ``agent_id``, and its SESSION_START ``tags`` hold
``otel.trace_id:<32 hex digits>`` (the trace that started it) and ``gen_ai.conversation.id:<id>`` when there is one.
``session_id_of_trace`` tells which session recorded a trace.

| ``gen_ai.operation.name`` | events |
|---|---|
| ``chat``, ``text_completion``, ``generate_content`` | MODEL_REQUEST, MODEL_RESPONSE |
| ``execute_tool`` | TOOL_CALL, TOOL_RESULT |
| a span whose status is an error | ERROR (``error.type`` or the exception's type; for a tool, its ``tool_id``) |

Events are recorded when a span ends, in the order spans end. Content attributes (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``) are recorded as hashes unless
the client captures content. An ended span's attributes do not change, so ``export`` (which a ``SimpleSpanProcessor``
calls on the agent's thread) queues them as they are: JSON text is parsed, content converted and digested, and the
payload checked, on the SDK's sender thread (``_later``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from agentops_replay._content import Content
from agentops_replay.client import AgentOpsClient, Session
from agentops_replay.events import MODEL_REQUEST, MODEL_RESPONSE, TOOL_CALL, TOOL_RESULT
from agentops_replay.integrations import _later
from agentops_replay.privacy import jsonable

logger = logging.getLogger("agentops_replay")

_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
_TOOL_OPERATION = "execute_tool"
_REQUEST_PARAMETERS = {
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.top_k": "top_k",
    "gen_ai.request.seed": "seed",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
}

_USAGE = {"gen_ai.usage.input_tokens": "input_tokens", "gen_ai.usage.output_tokens": "output_tokens"}
_TRACES_KEPT = 100_000


def _content(value: Any) -> Any:
    """Content attributes are JSON strings or plain attribute values; record them as I-JSON either way."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return jsonable(json.loads(value))
        except ValueError:
            return value
    return jsonable(value)


def _model_request(model: str, messages: Any, provider: str | None, parameters: dict[str, Any]) -> Content:
    return _later.model_request(model, _content(messages), provider, parameters or None)


def _model_response(model: str, output: Any, finish_reason: str | None, usage: dict[str, Any]) -> Content:
    return _later.model_response(model, _content(output), finish_reason, usage or None)


def _tool_call(name: str, arguments: Any, tool_id: str) -> Content:
    return _later.tool_call(name, _content(arguments), tool_id)


def _tool_result(name: str, result: Any, tool_id: str, status: str, duration_ms: float | None) -> Content:
    return _later.tool_result(name, _content(result), tool_id, status, duration_ms)


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """A span's attributes as a plain dict. The SDK's mapping answers each lookup in Python and a span is read a dozen
    times (on the agent's thread, under SimpleSpanProcessor); its ``copy()`` is one C-level dict copy."""
    if attributes is None:
        return {}
    copy = getattr(attributes, "copy", None)
    copied = copy() if callable(copy) else None
    return copied if isinstance(copied, dict) else dict(attributes)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class AgentOpsSpanExporter(SpanExporter):
    """Turns GenAI spans into AgentOps Replay sessions recorded through ``client``."""

    def __init__(
        self,
        client: AgentOpsClient,
        *,
        agent_id: str = "opentelemetry-agent",
        idle_seconds: float | None = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        # Session key -> time of its last span, least recently active first: export() runs on the agent's thread
        # (SimpleSpanProcessor), so finding the idle sessions looks only at those that are.
        self._last_span_at: OrderedDict[str, float] = OrderedDict()
        # Trace id (32 hex digits) -> id of the session that recorded it, most recent last, at most _TRACES_KEPT.
        self._trace_sessions: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def session_id_of_trace(self, trace_id: int | str) -> str | None:
        """The id of the session that recorded trace ``trace_id`` (the span context's integer, or its 32 hex digits),
        or None when no GenAI span of that trace was recorded (or it was among the oldest of more than 100,000)."""
        key = f"{trace_id:032x}" if isinstance(trace_id, int) else trace_id.lower()
        with self._lock:
            return self._trace_sessions.get(key)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._end_idle_sessions()  # first: a span of an idle conversation starts its next session
        except Exception:
            logger.exception("agentops: idle sessions could not be ended (retried at the next export)")
        for span in spans:
            try:
                self._export_span(span)
            except Exception:
                logger.exception("agentops: span %r could not be recorded (skipped)", getattr(span, "name", "?"))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """End every session still open (conversations, and traces whose root never ended). The client stays open:
        it belongs to the caller."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._last_span_at.clear()
        for session in sessions:
            session.end("success")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._client.flush(timeout_millis / 1000)

    def _export_span(self, span: ReadableSpan) -> None:
        attributes = _plain(span.attributes)
        operation = attributes.get("gen_ai.operation.name")
        trace_id = f"{span.context.trace_id:032x}" if span.context is not None else None
        trace_key = f"trace:{trace_id}" if trace_id is not None else None
        if operation is not None:
            session = self._session_for(attributes, trace_key, trace_id)
            if session is not None:
                self._record(session, str(operation), span, attributes)
        is_local_root = span.parent is None or span.parent.is_remote
        if is_local_root and trace_key is not None:
            with self._lock:
                finished = self._sessions.pop(trace_key, None)
                self._last_span_at.pop(trace_key, None)
            if finished is not None:
                if span.status.status_code is StatusCode.ERROR:
                    finished.end("failure", reason=self._error_type(span))
                else:
                    finished.end("success")

    def _session_for(
        self, attributes: Mapping[str, Any], trace_key: str | None, trace_id: str | None
    ) -> Session | None:
        conversation = attributes.get("gen_ai.conversation.id")
        key = f"conversation:{conversation}" if conversation else trace_key
        if key is None:
            return None
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                agent = _text(attributes.get("gen_ai.agent.name")) or self._agent_id
                metadata: dict[str, Any] = {"framework": "opentelemetry"}
                tags = [f"otel.trace_id:{trace_id}"] if trace_id is not None else []
                if conversation:
                    metadata["conversation_id"] = str(conversation)
                    tags.append(f"gen_ai.conversation.id:{conversation}")
                session = self._client.start_session(agent, tags=tags, **metadata)
                self._sessions[key] = session
            self._last_span_at[key] = self._clock()
            self._last_span_at.move_to_end(key)
            if trace_id is not None:
                self._trace_sessions[trace_id] = session.session_id
                self._trace_sessions.move_to_end(trace_id)
                if len(self._trace_sessions) > _TRACES_KEPT:
                    self._trace_sessions.popitem(last=False)
            return session

    def _end_idle_sessions(self) -> None:
        if self._idle_seconds is None:
            return
        now = self._clock()
        sessions = []
        with self._lock:
            while self._last_span_at:
                key, last_span_at = next(iter(self._last_span_at.items()))
                if now - last_span_at < self._idle_seconds:
                    break
                del self._last_span_at[key]
                sessions.append(self._sessions.pop(key))
        for session in sessions:
            session.end("timeout", reason=f"no GenAI span for {self._idle_seconds:g} s")

    def _record(self, session: Session, operation: str, span: ReadableSpan, attributes: Mapping[str, Any]) -> None:
        duration_ms = None
        if span.start_time is not None and span.end_time is not None:
            duration_ms = round((span.end_time - span.start_time) / 1e6, 3)
        failed = span.status.status_code is StatusCode.ERROR
        tool_id = None
        if operation in _MODEL_OPERATIONS:
            model = _text(attributes.get("gen_ai.request.model")) or "unknown"
            parameters = {
                name: attributes[key] for key, name in _REQUEST_PARAMETERS.items() if attributes.get(key) is not None
            }
            provider = _text(attributes.get("gen_ai.provider.name")) or _text(attributes.get("gen_ai.system"))
            messages = attributes.get("gen_ai.input.messages")
            session._record_later(MODEL_REQUEST, _model_request, model, messages, provider, parameters)
            if not failed:
                usage = {name: attributes[key] for key, name in _USAGE.items() if attributes.get(key) is not None}
                reasons = attributes.get("gen_ai.response.finish_reasons")
                session._record_later(
                    MODEL_RESPONSE,
                    _model_response,
                    _text(attributes.get("gen_ai.response.model")) or model,
                    attributes.get("gen_ai.output.messages"),
                    str(reasons[0]) if reasons else None,
                    usage,
                )
        elif operation == _TOOL_OPERATION:
            name = _text(attributes.get("gen_ai.tool.name")) or span.name
            tool_id = _text(attributes.get("gen_ai.tool.call.id")) or f"{span.context.span_id:016x}"
            session._record_later(TOOL_CALL, _tool_call, name, attributes.get("gen_ai.tool.call.arguments"), tool_id)
            status = "error" if failed else "success"
            result = attributes.get("gen_ai.tool.call.result")
            session._record_later(TOOL_RESULT, _tool_result, name, result, tool_id, status, duration_ms)
        if failed:
            session.error(self._error_type(span), span.status.description or span.name, tool_id=tool_id)

    @staticmethod
    def _error_type(span: ReadableSpan) -> str:
        error_type = (span.attributes or {}).get("error.type")
        if error_type:
            return str(error_type)
        for event in span.events or ():  # Span.record_exception: an "exception" event with its type
            if event.name == "exception" and (event.attributes or {}).get("exception.type"):
                return str((event.attributes or {})["exception.type"])
        return "SpanError"
