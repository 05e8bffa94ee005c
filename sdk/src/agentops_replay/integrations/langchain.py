"""LangChain and LangGraph callback handler (``pip install "agentops-replay[langchain]"`` or ``[langgraph]``).

Tested with langchain-core 1.8 and langgraph 1.2 (a prebuilt tool-calling agent graph, a failing tool, an
interrupted graph). Only the long-stable ``BaseCallbackHandler`` methods are used. Mapping:

| callback | event |
|---|---|
| chat model / LLM start | MODEL_REQUEST (``prompt_hash`` of the messages unless the client captures content) |
| chat model / LLM end | MODEL_RESPONSE (``finish_reason``, ``usage``; ``content_hash`` unless capturing) |
| tool start / end | TOOL_CALL / TOOL_RESULT, ``tool_id`` = the model's tool call id (else the tool run's id) |
| tool error | ERROR with that ``tool_id`` and ``tool_name`` (exception type and message, no stack trace) |
| LLM error, error of the outermost chain | ERROR (the chain's with ``fatal: true``) |
| agent action / finish | DECISION_TRACE |
| LangGraph interrupt (``interrupt()``) | AGENT_STATE_SNAPSHOT ``{"interrupted": true, ...}``, never an ERROR |
| a tool stopped by an interrupt | TOOL_RESULT ``status: "interrupted"`` |

``recorded_run`` opens a session with the framework's name and version around one run and ends it by how the run
went. A callback never raises into LangChain: failures are logged and counted as the SDK's internal errors. A
callback runs on LangChain's thread: it takes what the event needs (content as ``privacy.snapshot`` keeps it) and
queues it; the payload is converted, digested and checked on the SDK's sender thread (``_later``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

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
from agentops_replay.privacy import snapshot, text_of

_Callback = TypeVar("_Callback", bound=Callable[..., None])
_MAX_OPEN_RUNS = 10_000
# LangGraph stops a graph by raising these through the callbacks (an interrupt, a command to a parent graph): they
# are how a graph pauses or hands over, not failures. Matched by name so that LangChain alone needs no LangGraph.
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphDrained"})


def _is_control_flow(error: BaseException) -> bool:
    return any(cls.__name__ in _CONTROL_FLOW and cls.__module__.startswith("langgraph") for cls in type(error).__mro__)


def _never_raises(callback: _Callback) -> _Callback:
    @functools.wraps(callback)
    def guarded(self: AgentOpsCallbackHandler, *args: Any, **kwargs: Any) -> None:
        try:
            callback(self, *args, **kwargs)
        except Exception:
            self.session._internal_error()

    return guarded  # type: ignore[return-value]


def _message(message: Any) -> dict[str, Any]:
    """The parts of a LangChain message that say what was said (not its random ids), as they are now."""
    record: dict[str, Any] = {"role": getattr(message, "type", "unknown"), "content": snapshot(message.content)}
    for name in ("name", "tool_call_id"):
        value = getattr(message, name, None)
        if value:
            record[name] = snapshot(value)
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        record["tool_calls"] = [
            {"name": call.get("name"), "args": snapshot(call.get("args")), "id": call.get("id")} for call in tool_calls
        ]
    return record


def _interrupt_state(session: Session, state: dict[str, Any], values: Any) -> dict[str, Any]:
    return {"state": {**state, **_later.content_or_digest(session, "values", values)}}


def _action(session: Session, decision_id: str, tool: Any, tool_input: Any, log: Any) -> dict[str, Any]:
    inputs = _later.content_or_digest(session, "tool_input", tool_input)
    return _later.decision(session, decision_id, inputs, {"tool": tool}, log)


def _finish(session: Session, decision_id: str, return_values: Any, log: Any) -> dict[str, Any]:
    outputs = _later.content_or_digest(session, "return_values", return_values)
    return _later.decision(session, decision_id, {}, outputs, log)


def _model_name(serialized: dict[str, Any] | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> str:
    invocation = kwargs.get("invocation_params") or {}
    for candidate in (
        (metadata or {}).get("ls_model_name"),
        invocation.get("model"),
        invocation.get("model_name"),
        ((serialized or {}).get("kwargs") or {}).get("model_name"),
        ((serialized or {}).get("kwargs") or {}).get("model"),
        invocation.get("_type"),
        (serialized or {}).get("name"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return "unknown"


class AgentOpsCallbackHandler(BaseCallbackHandler):
    """Records a LangChain run or a LangGraph graph into ``session``. Pass it in ``callbacks=[...]`` or a
    ``RunnableConfig``. ``interrupted`` tells whether a LangGraph interrupt stopped the run."""

    raise_error = False

    def __init__(self, session: Session) -> None:
        self.session = session
        # run id -> (model or tool name, start time in ns, tool_id of a tool run)
        self._runs: dict[UUID, tuple[str, int, str | None]] = {}
        self._decisions = 0
        self.interrupted = False

    def _started(self, run_id: UUID, name: str, tool_id: str | None = None) -> None:
        if len(self._runs) >= _MAX_OPEN_RUNS:  # runs that never ended (interrupted streams): forget the oldest
            del self._runs[next(iter(self._runs))]
        self._runs[run_id] = (name, time.monotonic_ns(), tool_id)

    def _finished(self, run_id: UUID, default_name: str) -> tuple[str, float | None, str]:
        name, started, tool_id = self._runs.pop(run_id, (default_name, None, None))
        duration = None if started is None else round((time.monotonic_ns() - started) / 1e6, 3)
        return name, duration, tool_id or str(run_id)

    def _interrupt(self, error: BaseException, node: Any) -> None:
        """A LangGraph interrupt: the graph pauses at a checkpoint, waiting for input (recorded once per run)."""
        if self.interrupted:
            return
        self.interrupted = True
        interrupts = error.args[0] if error.args and isinstance(error.args[0], (list, tuple)) else ()
        ids = [str(getattr(item, "id", "")) for item in interrupts if getattr(item, "id", None)]
        values = [snapshot(getattr(item, "value", None)) for item in interrupts]
        state: dict[str, Any] = {"interrupted": True, "interrupt": type(error).__name__, "interrupt_ids": ids}
        if isinstance(node, str):
            state["node"] = node
        self.session._record_later(AGENT_STATE_SNAPSHOT, _interrupt_state, self.session, state, values)

    @_never_raises
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        model = _model_name(serialized, metadata, kwargs)
        self._started(run_id, model)
        provider = (metadata or {}).get("ls_provider")
        self.session._record_later(
            MODEL_REQUEST,
            _later.model_request,
            model,
            [[_message(message) for message in batch] for batch in messages],
            provider if isinstance(provider, str) else None,
            None,
        )

    @_never_raises
    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        model = _model_name(serialized, metadata, kwargs)
        self._started(run_id, model)
        provider = (metadata or {}).get("ls_provider")
        self.session._record_later(
            MODEL_REQUEST,
            _later.model_request,
            model,
            snapshot(prompts),
            provider if isinstance(provider, str) else None,
            None,
        )

    @_never_raises
    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        llm_output = response.llm_output or {}
        model, _, _ = self._finished(run_id, str(llm_output.get("model_name") or "unknown"))
        contents: list[Any] = []
        finish_reason = None
        usage = llm_output.get("token_usage") or llm_output.get("usage")
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                contents.append(_message(message) if message is not None else snapshot(generation.text))
                info = generation.generation_info or {}
                metadata = getattr(message, "response_metadata", None) or {}
                finish_reason = finish_reason or info.get("finish_reason") or metadata.get("finish_reason")
                usage = usage or getattr(message, "usage_metadata", None)
        self.session._record_later(
            MODEL_RESPONSE,
            _later.model_response,
            model,
            contents,
            finish_reason if isinstance(finish_reason, str) else None,
            snapshot(usage) if isinstance(usage, dict) else None,
        )

    @_never_raises
    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._runs.pop(run_id, None)
        self.session._record_later(ERROR, _later.error, type(error).__name__, text_of(error), False, None, None)

    @_never_raises
    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        # The framework's own id of the call (the model's tool call id, which the ToolMessage answers), when the
        # tool was called for one; else the tool run's id.
        call_id = kwargs.get("tool_call_id")
        tool_id = call_id if isinstance(call_id, str) and call_id else str(run_id)
        self._started(run_id, name, tool_id)
        args = snapshot(inputs) if inputs is not None else input_str
        self.session._record_later(TOOL_CALL, _later.tool_call, name, args, tool_id)

    @_never_raises
    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        name, duration_ms, tool_id = self._finished(run_id, str(kwargs.get("name") or "tool"))
        result = getattr(output, "content", output)  # a ToolMessage carries the tool's output as its content
        status = getattr(output, "status", None)  # LangGraph's ToolNode turns handled errors into status "error"
        self.session._record_later(
            TOOL_RESULT,
            _later.tool_result,
            name,
            snapshot(result),
            tool_id,
            status if isinstance(status, str) and status in ("success", "error") else "success",
            duration_ms,
        )

    @_never_raises
    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        name, duration_ms, tool_id = self._finished(run_id, str(kwargs.get("name") or "tool"))
        if _is_control_flow(error):
            self.session._record_later(TOOL_RESULT, _later.tool_result, name, None, tool_id, "interrupted", duration_ms)
            self._interrupt(error, (kwargs.get("metadata") or {}).get("langgraph_node"))
            return
        self.session._record_later(ERROR, _later.error, type(error).__name__, text_of(error), False, tool_id, name)

    @_never_raises
    def on_agent_action(self, action: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._decisions += 1
        decision_id = f"{run_id}/{self._decisions}"
        tool_input = snapshot(action.tool_input)
        self.session._record_later(
            DECISION_TRACE, _action, self.session, decision_id, snapshot(action.tool), tool_input, snapshot(action.log)
        )

    @_never_raises
    def on_agent_finish(self, finish: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._decisions += 1
        decision_id = f"{run_id}/{self._decisions}"
        values = snapshot(finish.return_values)
        self.session._record_later(DECISION_TRACE, _finish, self.session, decision_id, values, snapshot(finish.log))

    @_never_raises
    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if _is_control_flow(error):
            self._interrupt(error, (kwargs.get("metadata") or {}).get("langgraph_node"))
            return
        # A chain error is reported by every enclosing chain; only the outermost one is recorded.
        if parent_run_id is None:
            self.session._record_later(ERROR, _later.error, type(error).__name__, text_of(error), True, None, None)


def framework_version(framework: str) -> str | None:
    """The installed version of ``framework`` (``langchain``: langchain-core; ``langgraph``), or None."""
    distribution = "langchain-core" if framework == "langchain" else framework
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def recorded_run(
    client: AgentOpsClient, agent_id: str, *, framework: str = "langgraph", **metadata: Any
) -> Iterator[AgentOpsCallbackHandler]:
    """A session around one LangChain or LangGraph run, started with the framework's name and version, and the
    handler to pass in the run's callbacks. The session ends ``success``; ``cancelled`` with reason
    ``"interrupted"`` when a LangGraph interrupt paused the graph (its resumption is a new run); ``failure`` with the
    exception's type when the block raises (the exception propagates)."""
    version = framework_version(framework)
    if version is not None:
        metadata.setdefault("framework_version", version)
    session = client.start_session(agent_id, framework=framework, **metadata)
    handler = AgentOpsCallbackHandler(session)
    try:
        yield handler
    except BaseException as exc:
        if not session.ended:
            session.end("failure", reason=type(exc).__name__)
        raise
    if session.ended:
        return
    if handler.interrupted:
        session.end("cancelled", reason="interrupted")
    else:
        session.end("success")
