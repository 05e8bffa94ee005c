"""LangChain callback handler (``pip install agentops-replay[langchain]``): langchain-core 0.3 and 1.x.

Only the long-stable ``BaseCallbackHandler`` methods are used. Mapping (issue 6):

| callback | event |
|---|---|
| chat model / LLM start | MODEL_REQUEST (``prompt_hash`` of the messages unless the client captures content) |
| chat model / LLM end | MODEL_RESPONSE (``finish_reason``, ``usage``; ``content_hash`` unless capturing) |
| LLM error, tool error, root chain error | ERROR (exception type and message, no stack trace) |
| tool start / end | TOOL_CALL / TOOL_RESULT with ``tool_id`` = the tool run's id, ``args_hash`` / ``result_hash`` |
| agent action / finish | DECISION_TRACE |

A callback never raises into LangChain: failures are logged and counted as the SDK's internal errors.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from agentops_replay.client import Session
from agentops_replay.privacy import content_hash, jsonable

_Callback = TypeVar("_Callback", bound=Callable[..., None])
_MAX_OPEN_RUNS = 10_000


def _never_raises(callback: _Callback) -> _Callback:
    @functools.wraps(callback)
    def guarded(self: AgentOpsCallbackHandler, *args: Any, **kwargs: Any) -> None:
        try:
            callback(self, *args, **kwargs)
        except Exception:
            self.session._internal_error()

    return guarded  # type: ignore[return-value]


def _message(message: Any) -> dict[str, Any]:
    """The parts of a LangChain message that say what was said (not its random ids), as I-JSON."""
    record: dict[str, Any] = {"role": getattr(message, "type", "unknown"), "content": jsonable(message.content)}
    for name in ("name", "tool_call_id"):
        value = getattr(message, name, None)
        if value:
            record[name] = value
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        record["tool_calls"] = [
            {"name": call.get("name"), "args": jsonable(call.get("args")), "id": call.get("id")} for call in tool_calls
        ]
    return record


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
    """Records a LangChain run into ``session``. Pass it in ``callbacks=[...]`` or a ``RunnableConfig``."""

    raise_error = False

    def __init__(self, session: Session) -> None:
        self.session = session
        self._runs: dict[UUID, tuple[str, int]] = {}  # run id -> (model or tool name, start time in ns)
        self._decisions = 0

    def _started(self, run_id: UUID, name: str) -> None:
        if len(self._runs) >= _MAX_OPEN_RUNS:  # runs that never ended (interrupted streams): forget the oldest
            del self._runs[next(iter(self._runs))]
        self._runs[run_id] = (name, time.monotonic_ns())

    def _finished(self, run_id: UUID, default_name: str) -> tuple[str, float | None]:
        name, started = self._runs.pop(run_id, (default_name, None))
        return name, None if started is None else round((time.monotonic_ns() - started) / 1e6, 3)

    def _error(self, error: BaseException, *, fatal: bool) -> None:
        self.session.error(type(error).__name__, str(error), fatal=fatal)

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
        self.session.model_request(
            model,
            messages=[[_message(message) for message in batch] for batch in messages],
            provider=provider if isinstance(provider, str) else None,
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
        self.session.model_request(
            model, messages=list(prompts), provider=provider if isinstance(provider, str) else None
        )

    @_never_raises
    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        llm_output = response.llm_output or {}
        model, _ = self._finished(run_id, str(llm_output.get("model_name") or "unknown"))
        contents: list[Any] = []
        finish_reason = None
        usage = llm_output.get("token_usage") or llm_output.get("usage")
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                contents.append(_message(message) if message is not None else generation.text)
                info = generation.generation_info or {}
                metadata = getattr(message, "response_metadata", None) or {}
                finish_reason = finish_reason or info.get("finish_reason") or metadata.get("finish_reason")
                usage = usage or getattr(message, "usage_metadata", None)
        self.session.model_response(
            model,
            content=contents,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            usage=jsonable(usage) if isinstance(usage, dict) else None,
        )

    @_never_raises
    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._runs.pop(run_id, None)
        self._error(error, fatal=False)

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
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        self._started(run_id, str(name))
        self.session.tool_call(
            str(name), args=jsonable(inputs) if inputs is not None else input_str, tool_id=str(run_id)
        )

    @_never_raises
    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        name, duration_ms = self._finished(run_id, str(kwargs.get("name") or "tool"))
        result = getattr(output, "content", output)  # a ToolMessage carries the tool's output as its content
        self.session.tool_result(
            name, result=jsonable(result), tool_id=str(run_id), status="success", duration_ms=duration_ms
        )

    @_never_raises
    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._runs.pop(run_id, None)
        self._error(error, fatal=False)

    @_never_raises
    def on_agent_action(self, action: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._decisions += 1
        tool_input = jsonable(action.tool_input)
        inputs = (
            {"tool_input": tool_input}
            if self.session.capture_content
            else {"tool_input_hash": content_hash(tool_input)}
        )
        self.session.decision(
            f"{run_id}/{self._decisions}", inputs=inputs, outputs={"tool": action.tool}, justification=action.log
        )

    @_never_raises
    def on_agent_finish(self, finish: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._decisions += 1
        values = jsonable(finish.return_values)
        outputs = (
            {"return_values": values} if self.session.capture_content else {"return_values_hash": content_hash(values)}
        )
        self.session.decision(f"{run_id}/{self._decisions}", inputs={}, outputs=outputs, justification=finish.log)

    @_never_raises
    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        # A chain error is reported by every enclosing chain; only the outermost one is recorded.
        if parent_run_id is None:
            self._error(error, fatal=True)
