"""Strands Agents hook provider (``pip install "agentops-replay[strands]"``): each invocation of an agent is a session.

Register it on the agent, ``Agent(..., hooks=[AgentOpsHooks(client)])``. Tested with strands-agents 1.62.

- ``BeforeInvocationEvent``: SESSION_START; ``agent_id`` is the hook's, else the agent's ``name``; ``framework``
  ``strands-agents`` and its version; the tag ``strands.agent_id:<the agent's agent_id>``.
- ``BeforeModelCallEvent``: MODEL_REQUEST; ``model`` is the model's ``model_id``, ``prompt_hash`` covers the system
  prompt and the messages.
- ``AfterModelCallEvent``: MODEL_RESPONSE (``finish_reason`` is the stop reason, ``usage``), or ERROR when the model
  call raised.
- ``BeforeToolCallEvent``: TOOL_CALL; ``tool_id`` is Strands' ``toolUseId``, the model's own id of the call.
- ``AfterToolCallEvent``: TOOL_RESULT (``status`` ``success`` or ``error``, ``duration_ms``, ``result_hash``), and
  an ERROR with the same ``tool_id`` and the ``tool_name`` when the tool raised.
- ``AfterInvocationEvent``: SESSION_END; ``success``, ``cancelled`` for an interrupt (reason ``interrupted``) or a
  cancelled run, ``failure`` when the invocation raised. A tool call left unanswered (an interrupt before the tool
  ran) first gets a TOOL_RESULT with ``status`` ``interrupted`` (or ``cancelled``).

Messages are recorded as ``{"role", "content"}`` (without Strands' random tracking ids), content as Strands holds it
(text, tool use and tool result blocks; bytes of images and documents as base64). Prompts, completions, arguments
and results are digests unless the client captures content. A hook never raises into the agent: failures are logged
and counted as the SDK's internal errors. A hook runs on the agent's thread: it takes what the event needs (content
as ``privacy.snapshot`` keeps it) and queues it; the payload is converted, digested and checked on the SDK's sender
thread (``_later``).

Strands also emits OpenTelemetry spans with the GenAI conventions; ``agentops_replay.integrations.otel`` can record
those instead (see the SDK's README). Use one or the other, not both: each records the same run.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from strands.hooks import (
    AfterInvocationEvent,
    AfterModelCallEvent,
    AfterToolCallEvent,
    BeforeInvocationEvent,
    BeforeModelCallEvent,
    BeforeToolCallEvent,
    HookProvider,
    HookRegistry,
)

from agentops_replay._content import Content
from agentops_replay.client import AgentOpsClient, Session
from agentops_replay.events import ERROR, MODEL_REQUEST, MODEL_RESPONSE, TOOL_CALL, TOOL_RESULT
from agentops_replay.integrations import _later
from agentops_replay.privacy import snapshot

logger = logging.getLogger("agentops_replay")

FRAMEWORK = "strands-agents"
_Hook = TypeVar("_Hook", bound=Callable[..., None])
_CANCELLED_STOPS = frozenset({"interrupt", "cancelled"})
_AGENTS_KEPT = 10_000


def _framework_version() -> str | None:
    try:
        return importlib.metadata.version(FRAMEWORK)
    except importlib.metadata.PackageNotFoundError:
        return None


def _never_raises(hook: _Hook) -> _Hook:
    @functools.wraps(hook)
    def guarded(self: AgentOpsHooks, event: Any) -> None:
        try:
            hook(self, event)
        except Exception:
            self._internal_error(event)

    return guarded  # type: ignore[return-value]


def _model_id(agent: Any) -> str:
    model = getattr(agent, "model", None)
    try:
        config = model.get_config() if model is not None else None
    except Exception:  # a provider whose configuration cannot be read still has a name
        config = None
    model_id = config.get("model_id") if isinstance(config, dict) else getattr(config, "model_id", None)
    if isinstance(model_id, str) and model_id:
        return model_id
    return type(model).__name__ if model is not None else "unknown"


def _conversation(messages: Any) -> list[dict[str, Any]]:
    """What was said: role and content of each message. The content blocks are not copied (Strands does not change
    a message once it is in the history); the list is, so later turns do not change what this request recorded."""
    return [{"role": message.get("role"), "content": message.get("content")} for message in messages or ()]


def _model_request(model: str, system: Any, conversation: Any, provider: str) -> Content:
    return _later.model_request(model, {"system": system, "messages": conversation}, provider, None)


class AgentOpsHooks(HookProvider):
    """Records every invocation of the agents it is registered on as one AgentOps Replay session."""

    def __init__(self, client: AgentOpsClient, *, agent_id: str | None = None, **metadata: Any) -> None:
        self._client = client
        self._agent_id = agent_id
        self._metadata = metadata
        self._version = _framework_version()
        self._sessions: dict[int, Session] = {}  # id(agent) -> its running invocation's session
        self._last_errors: dict[int, str] = {}  # id(agent) -> type of the last error its invocation met
        self._open_calls: dict[int, dict[str, str]] = {}  # id(agent) -> toolUseId -> tool name, called, not answered
        # id(agent) -> id of the session of its latest invocation, most recent last, at most _AGENTS_KEPT
        self._last_session_ids: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeInvocationEvent, self._before_invocation)
        registry.add_callback(BeforeModelCallEvent, self._before_model_call)
        registry.add_callback(AfterModelCallEvent, self._after_model_call)
        registry.add_callback(BeforeToolCallEvent, self._before_tool_call)
        registry.add_callback(AfterToolCallEvent, self._after_tool_call)
        registry.add_callback(AfterInvocationEvent, self._after_invocation)

    def session_of(self, agent: Any) -> Session | None:
        """The session of ``agent``'s running invocation, if any (its ``session_id`` names it in AgentOps Replay)."""
        return self._sessions.get(id(agent))  # one dict lookup is atomic: no lock on every hook

    def last_session_id(self, agent: Any) -> str | None:
        """The id of the session that recorded ``agent``'s latest invocation (running or ended), if any."""
        with self._lock:
            return self._last_session_ids.get(id(agent))

    def _internal_error(self, event: Any) -> None:
        session = self.session_of(getattr(event, "agent", None))
        if session is not None:
            session._internal_error()
        else:
            logger.exception("agentops: internal error in a Strands hook (not recorded)")

    @_never_raises
    def _before_invocation(self, event: BeforeInvocationEvent) -> None:
        agent = event.agent
        agent_id = self._agent_id or getattr(agent, "name", None) or "strands-agent"
        metadata: dict[str, Any] = {"framework": FRAMEWORK, **self._metadata}
        if self._version is not None:
            metadata.setdefault("framework_version", self._version)
        strands_id = getattr(agent, "agent_id", None)
        tags = list(metadata.pop("tags", []))
        if isinstance(strands_id, str):
            tags.append(f"strands.agent_id:{strands_id}")
        session = self._client.start_session(str(agent_id), tags=tags, **metadata)
        with self._lock:
            previous = self._sessions.pop(id(agent), None)
            self._sessions[id(agent)] = session
            self._last_session_ids[id(agent)] = session.session_id
            self._last_session_ids.move_to_end(id(agent))
            if len(self._last_session_ids) > _AGENTS_KEPT:
                self._last_session_ids.popitem(last=False)
        if previous is not None and not previous.ended:  # an invocation that never reached AfterInvocationEvent
            previous.end("failure", reason="a new invocation started before this one ended")

    @_never_raises
    def _before_model_call(self, event: BeforeModelCallEvent) -> None:
        session = self.session_of(event.agent)
        if session is None:
            return
        agent = event.agent
        system = snapshot(getattr(agent, "system_prompt", None))
        conversation = _conversation(agent.messages)
        session._record_later(
            MODEL_REQUEST, _model_request, _model_id(agent), system, conversation, type(agent.model).__name__
        )

    @_never_raises
    def _after_model_call(self, event: AfterModelCallEvent) -> None:
        session = self.session_of(event.agent)
        if session is None:
            return
        if event.exception is not None:
            self._note_error(event.agent, event.exception)
            error = event.exception
            session._record_later(ERROR, _later.error, type(error).__name__, str(error), False, None, None)
            return
        response = event.stop_response
        if response is None:
            return
        message = response.message
        usage = (message.get("metadata") or {}).get("usage") if isinstance(message, dict) else None
        session._record_later(
            MODEL_RESPONSE,
            _later.model_response,
            _model_id(event.agent),
            _conversation([message]),
            str(response.stop_reason),
            snapshot(usage) if isinstance(usage, dict) else None,
        )

    @_never_raises
    def _before_tool_call(self, event: BeforeToolCallEvent) -> None:
        session = self.session_of(event.agent)
        if session is None:
            return
        tool_use = event.tool_use
        name = str(tool_use.get("name") or "tool")
        tool_id = tool_use["toolUseId"]
        with self._lock:
            self._open_calls.setdefault(id(event.agent), {})[tool_id] = name
        # The tool receives the input as its arguments and may change them: recorded as they are now.
        session._record_later(TOOL_CALL, _later.tool_call, name, snapshot(tool_use.get("input")), tool_id)

    @_never_raises
    def _after_tool_call(self, event: AfterToolCallEvent) -> None:
        session = self.session_of(event.agent)
        if session is None:
            return
        tool_use = event.tool_use
        name = str(tool_use.get("name") or "tool")
        tool_id = tool_use["toolUseId"]
        with self._lock:
            self._open_calls.get(id(event.agent), {}).pop(tool_id, None)
        result = event.result or {}
        status = result.get("status")
        session._record_later(
            TOOL_RESULT,
            _later.tool_result,
            name,
            snapshot(result.get("content")),
            tool_id,
            status if isinstance(status, str) else None,
            event.duration * 1000 if event.duration is not None else None,
        )
        if event.exception is not None:
            error = event.exception
            self._note_error(event.agent, error)
            session._record_later(ERROR, _later.error, type(error).__name__, str(error), False, tool_id, name)

    def _note_error(self, agent: Any, error: BaseException) -> None:
        with self._lock:
            self._last_errors[id(agent)] = type(error).__name__

    @_never_raises
    def _after_invocation(self, event: AfterInvocationEvent) -> None:
        with self._lock:
            session = self._sessions.pop(id(event.agent), None)
            last_error = self._last_errors.pop(id(event.agent), None)
            open_calls = self._open_calls.pop(id(event.agent), {})
        if session is None or session.ended:
            return
        result = event.result
        # A tool call the invocation never answered (an interrupt before the tool ran, say) is answered here, so
        # every TOOL_CALL of the session has its TOOL_RESULT; a resumed invocation calls the tool again.
        stopped = "interrupted" if result is not None and result.stop_reason == "interrupt" else "cancelled"
        for tool_id, name in open_calls.items():
            session._record_later(TOOL_RESULT, _later.tool_result, name, None, tool_id, stopped, None)
        if result is None:  # the invocation raised; Strands does not say what, the last error met is the best guess
            session.end("failure", reason=last_error or "the invocation raised")
            return
        stop_reason = str(result.stop_reason)
        if stop_reason in _CANCELLED_STOPS:
            session.end("cancelled", reason="interrupted" if stop_reason == "interrupt" else stop_reason)
        elif stop_reason in ("end_turn", "stop_sequence"):
            session.end("success")
        else:
            session.end("success", reason=stop_reason)
