"""OpenAI Agents SDK tracing processor (``pip install "agentops-replay[openai-agents]"``): one session per trace.

Add it next to the SDK's own processors with ``agents.add_trace_processor(AgentOpsTracingProcessor(client))`` (or
replace them with ``agents.set_trace_processors([...])``). Tested with openai-agents 0.24, with its chat completions
and responses models. Spans become events when they end, in the order they end:

| span | event |
|---|---|
| ``generation`` (chat completions), ``response`` (responses API) | MODEL_REQUEST and MODEL_RESPONSE |
| ``function`` | TOOL_CALL and TOOL_RESULT (``status`` ``success`` or ``error``, ``duration_ms``) |
| ``handoff`` | DECISION_TRACE (``inputs.from_agent``, ``outputs.to_agent``) |
| ``guardrail`` | DECISION_TRACE (``inputs.guardrail``, ``outputs.triggered``) |
| ``agent`` | AGENT_STATE_SNAPSHOT (the agent's name, tools, handoffs and output type) |
| any span with an error | ERROR (the span's error message and data; for a function span with its ``tool_id``) |

The session starts when the trace's first agent span starts (``agent_id``: that agent's name, unless the processor
was given one; ``framework`` ``openai-agents`` and its version; tags ``openai_agents.trace_id:<id>``,
``openai_agents.workflow:<name>`` and ``openai_agents.group_id:<id>`` when the run has one) and ends with the trace:
``failure`` when an agent or turn span failed (an exception, a guardrail tripwire), else ``success``.
``session_id_of_trace`` tells which session recorded a trace.

A function span does not carry the model's call id, so ``tool_id`` is found in the tool calls of the model output
that asked for it (by function name and arguments, in order); a call that cannot be matched keeps the function span's
id. Prompts, completions, arguments and results are digests unless the client captures content; the SDK puts them on
spans only while ``trace_include_sensitive_data`` is on (its default). A processor method never raises into the
Agents SDK: failures are logged and counted as the SDK's internal errors. A span has ended when it is recorded and
the Agents SDK does not change it afterwards: its values are queued as they are, and converted, digested and
checked on the SDK's sender thread (``_later``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from agents.tracing import Span, Trace, TracingProcessor

from agentops_replay._content import Content
from agentops_replay.client import AgentOpsClient, Session
from agentops_replay.events import (
    AGENT_STATE_SNAPSHOT,
    DECISION_TRACE,
    ERROR,
    MODEL_REQUEST,
    MODEL_RESPONSE,
    TOOL_CALL,
    TOOL_RESULT,
)
from agentops_replay.integrations import _later
from agentops_replay.privacy import jsonable

logger = logging.getLogger("agentops_replay")

FRAMEWORK = "openai-agents"
_TRACES_KEPT = 100_000
_Method = TypeVar("_Method", bound=Callable[..., None])
# Spans whose failure fails the run (the Agents SDK raises out of Runner.run after them).
_FATAL_SPANS = frozenset({"agent", "turn", "task"})


def _framework_version() -> str | None:
    try:
        return importlib.metadata.version(FRAMEWORK)
    except importlib.metadata.PackageNotFoundError:
        return None


def _never_raises(method: _Method) -> _Method:
    @functools.wraps(method)
    def guarded(self: AgentOpsTracingProcessor, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            logger.exception("agentops: internal error in the OpenAI Agents tracing processor (not recorded)")

    return guarded  # type: ignore[return-value]


@dataclass
class _TraceState:
    name: str = "Agent workflow"
    group_id: str | None = None
    session: Session | None = None
    # Tool calls the model asked for and no function span has answered yet: (call id, function name, arguments).
    pending_calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    failure: str | None = None


def _duration_ms(started_at: Any, ended_at: Any) -> float | None:
    try:
        started = datetime.fromisoformat(str(started_at))
        ended = datetime.fromisoformat(str(ended_at))
    except (TypeError, ValueError):
        return None
    return (ended - started).total_seconds() * 1000


def _function_result(name: str, output: Any, tool_id: str, status: str, span_times: tuple[Any, Any]) -> Content:
    return _later.tool_result(name, output, tool_id, status, _duration_ms(*span_times))


def _calls_in_chat_output(output: Any) -> list[tuple[str, str, str | None]]:
    calls = []
    for message in output or ():
        for call in (message.get("tool_calls") if isinstance(message, Mapping) else None) or ():
            function = call.get("function") or {}
            if isinstance(call.get("id"), str) and isinstance(function.get("name"), str):
                calls.append((call["id"], function["name"], function.get("arguments")))
    return calls


def _calls_in_response(response: Any) -> list[tuple[str, str, str | None]]:
    calls = []
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) == "function_call":
            calls.append((str(item.call_id), str(item.name), getattr(item, "arguments", None)))
    return calls


def _model_request(model: str, messages: Any, config: Any) -> Content:
    return _later.model_request(model, messages, None, _without_nulls(config))


def _without_nulls(config: Any) -> dict[str, Any] | None:
    if not isinstance(config, Mapping):
        return None
    values = {key: value for key, value in config.items() if value is not None}
    return jsonable(values) if values else None


def _agent_state(checkpoint_id: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"checkpoint_id": checkpoint_id, "state": jsonable(state)}


class AgentOpsTracingProcessor(TracingProcessor):
    """Turns each OpenAI Agents SDK trace into one AgentOps Replay session recorded through ``client``."""

    def __init__(self, client: AgentOpsClient, *, agent_id: str | None = None, **metadata: Any) -> None:
        self._client = client
        self._agent_id = agent_id
        self._metadata = metadata
        self._version = _framework_version()
        self._traces: dict[str, _TraceState] = {}
        self._trace_sessions: OrderedDict[str, str] = OrderedDict()  # trace id -> session id, most recent last
        self._lock = threading.Lock()

    def session_id_of_trace(self, trace_id: str) -> str | None:
        """The id of the session that recorded trace ``trace_id`` (``trace_...``), or None when none did yet (or it
        was among the oldest of more than 100,000)."""
        with self._lock:
            return self._trace_sessions.get(trace_id)

    # -- TracingProcessor --------------------------------------------------------------------------------------

    @_never_raises
    def on_trace_start(self, trace: Trace) -> None:
        exported = trace.export() or {}
        group_id = exported.get("group_id")
        state = _TraceState(name=str(trace.name), group_id=str(group_id) if group_id else None)
        with self._lock:
            self._traces[trace.trace_id] = state

    @_never_raises
    def on_trace_end(self, trace: Trace) -> None:
        with self._lock:
            state = self._traces.pop(trace.trace_id, None)
        if state is None or state.session is None or state.session.ended:
            return
        if state.failure is not None:
            state.session.end("failure", reason=state.failure)
        else:
            state.session.end("success")

    @_never_raises
    def on_span_start(self, span: Span[Any]) -> None:
        if span.span_data.type == "agent":
            self._session(span.trace_id, span.span_data.name)

    @_never_raises
    def on_span_end(self, span: Span[Any]) -> None:
        data = span.span_data
        kind = data.type
        recorder = self._RECORDERS.get(kind)
        tool_id = None
        if recorder is not None:
            session = self._session(span.trace_id, None)
            if session is None:
                return
            tool_id = recorder(self, session, span)
        if span.error is not None:
            self._record_error(span, kind, tool_id)

    def shutdown(self) -> None:
        """End the sessions of traces still open (the client stays open: it belongs to the caller)."""
        with self._lock:
            states = list(self._traces.values())
            self._traces.clear()
        for state in states:
            if state.session is not None and not state.session.ended:
                state.session.end("cancelled", reason="the tracing processor shut down before the trace ended")

    def force_flush(self) -> None:
        self._client.flush()

    # -- recording ---------------------------------------------------------------------------------------------

    def _session(self, trace_id: str, agent_name: str | None) -> Session | None:
        with self._lock:
            state = self._traces.get(trace_id)
            if state is None:  # a trace that started before this processor was added
                state = self._traces[trace_id] = _TraceState()
            if state.session is not None:
                return state.session
            agent_id = self._agent_id or agent_name or state.name
            metadata: dict[str, Any] = {"framework": FRAMEWORK, **self._metadata}
            if self._version is not None:
                metadata.setdefault("framework_version", self._version)
            tags = list(metadata.pop("tags", []))
            tags += [f"openai_agents.trace_id:{trace_id}", f"openai_agents.workflow:{state.name}"]
            if state.group_id is not None:
                tags.append(f"openai_agents.group_id:{state.group_id}")
            state.session = self._client.start_session(agent_id, tags=tags, **metadata)
            self._trace_sessions[trace_id] = state.session.session_id
            if len(self._trace_sessions) > _TRACES_KEPT:
                self._trace_sessions.popitem(last=False)
            return state.session

    def _state(self, trace_id: str) -> _TraceState:
        with self._lock:
            return self._traces.setdefault(trace_id, _TraceState())

    def _record_generation(self, session: Session, span: Span[Any]) -> None:
        data = span.span_data
        model = str(data.model or "unknown")
        # The SDK builds a generation's input, output, configuration and usage afresh for each call and never
        # changes them afterwards, so they are converted and digested on the sender thread, as they are.
        session._record_later(MODEL_REQUEST, _model_request, model, data.input, data.model_config)
        usage = data.usage if isinstance(data.usage, Mapping) else None
        session._record_later(MODEL_RESPONSE, _later.model_response, model, data.output, None, usage)
        self._expect_calls(span.trace_id, _calls_in_chat_output(data.output))

    def _record_response(self, session: Session, span: Span[Any]) -> None:
        data = span.span_data
        response = data.response
        model = str(getattr(response, "model", None) or "unknown")
        session._record_later(MODEL_REQUEST, _later.model_request, model, data.input, None, None)
        # The response's output and usage are pydantic models the Agents SDK keeps and never changes once the
        # response is complete: converted on the sender thread.
        usage = getattr(response, "usage", None)
        output = getattr(response, "output", None)
        session._record_later(MODEL_RESPONSE, _later.model_response, model, output, None, usage)
        self._expect_calls(span.trace_id, _calls_in_response(response))

    def _expect_calls(self, trace_id: str, calls: list[tuple[str, str, str | None]]) -> None:
        if calls:
            state = self._state(trace_id)
            with self._lock:
                state.pending_calls.extend(calls)

    def _record_function(self, session: Session, span: Span[Any]) -> str:
        data = span.span_data
        tool_id = self._call_id(span.trace_id, data.name, data.input) or span.span_id
        session._record_later(TOOL_CALL, _later.tool_call, data.name, data.input, tool_id)
        status = "error" if span.error is not None else "success"
        output = data.output
        session._record_later(
            TOOL_RESULT, _function_result, data.name, output, tool_id, status, (span.started_at, span.ended_at)
        )
        return tool_id

    def _call_id(self, trace_id: str, name: str, arguments: str | None) -> str | None:
        """The model's id of the call this function span ran: the first pending call of that function with the same
        arguments, else the first of that function."""
        state = self._state(trace_id)
        with self._lock:
            pending = state.pending_calls
            for exact in (True, False):
                for index, (call_id, called, called_with) in enumerate(pending):
                    if called == name and (not exact or called_with == arguments):
                        del pending[index]
                        return call_id
        return None

    def _record_handoff(self, session: Session, span: Span[Any]) -> None:
        data = span.span_data
        session.record(
            DECISION_TRACE,
            {
                "decision_id": span.span_id,
                "inputs": {"from_agent": data.from_agent},
                "outputs": {"to_agent": data.to_agent},
                "justification": "handoff",
            },
        )

    def _record_guardrail(self, session: Session, span: Span[Any]) -> None:
        data = span.span_data
        session.record(
            DECISION_TRACE,
            {
                "decision_id": span.span_id,
                "inputs": {"guardrail": data.name},
                "outputs": {"triggered": bool(data.triggered)},
                "justification": "guardrail",
            },
        )

    def _record_agent(self, session: Session, span: Span[Any]) -> None:
        data = span.span_data
        state = {"agent": data.name, "tools": data.tools, "handoffs": data.handoffs, "output_type": data.output_type}
        session._record_later(AGENT_STATE_SNAPSHOT, _agent_state, span.span_id, state)

    def _record_error(self, span: Span[Any], kind: str, tool_id: str | None) -> None:
        error: Mapping[str, Any] = span.error or {}
        message = str(error.get("message") or "error")
        data = error.get("data")
        detail = data.get("error") if isinstance(data, Mapping) else None
        fatal = kind in _FATAL_SPANS
        state = self._state(span.trace_id)
        session = self._session(span.trace_id, None)
        if fatal and state.failure is None:
            state.failure = message
        if session is None:
            return
        payload: dict[str, Any] = {
            "error_type": message,
            "message": str(detail) if detail is not None else message,
            "fatal": fatal,
        }
        if tool_id is not None:
            payload["tool_id"] = tool_id
            payload["tool_name"] = span.span_data.name
        session.record(ERROR, payload)

    _RECORDERS: Mapping[str, Callable[[AgentOpsTracingProcessor, Session, Span[Any]], str | None]] = {
        "generation": _record_generation,
        "response": _record_response,
        "function": _record_function,
        "handoff": _record_handoff,
        "guardrail": _record_guardrail,
        "agent": _record_agent,
    }
