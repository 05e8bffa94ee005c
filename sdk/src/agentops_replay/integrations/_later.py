"""The events integrations record, made on the sender thread (``Session._record_later``).

An integration captures on the framework's thread only what an event is made of: names and ids, and content as
``privacy.snapshot`` keeps it. The functions here run later, on the sender thread: they convert content with
``privacy.jsonable`` (framework objects as I-JSON, numbers the service would refuse as text) and build the payload
by the helpers' own rules (``_content``); the content is then placed, or digested, as the session says.
"""

from __future__ import annotations

from typing import Any

from agentops_verify import REDACTED

from agentops_replay._content import (
    Content,
    model_request_content,
    model_response_content,
    tool_call_content,
    tool_result_content,
)
from agentops_replay.client import Session
from agentops_replay.privacy import jsonable


def _converted(value: Any) -> Any:
    return None if value is None else jsonable(value)


def model_request(model: str, messages: Any, provider: str | None, parameters: Any) -> Content:
    return model_request_content(model, _converted(messages), provider, _converted(parameters))


def model_response(model: str, content: Any, finish_reason: str | None, usage: Any) -> Content:
    return model_response_content(model, _converted(content), finish_reason, _converted(usage))


def tool_call(tool_name: str, args: Any, tool_id: str | None) -> Content:
    return tool_call_content(tool_name, _converted(args), tool_id)


def tool_result(
    tool_name: str, result: Any, tool_id: str | None, status: str | None, duration_ms: float | None
) -> Content:
    return tool_result_content(tool_name, _converted(result), tool_id, status, duration_ms)


def error(error_type: str, message: str, fatal: bool, tool_id: str | None, tool_name: str | None) -> dict[str, Any]:
    """ERROR; with ``tool_id`` (and ``tool_name``) it names the tool call that raised it."""
    payload: dict[str, Any] = {"error_type": error_type, "message": message, "fatal": fatal}
    if tool_id is not None:
        payload["tool_id"] = tool_id
        if tool_name is not None:
            payload["tool_name"] = tool_name
    return payload


def decision(session: Session, decision_id: str, inputs: Any, outputs: Any, justification: Any) -> dict[str, Any]:
    """DECISION_TRACE as ``Session.decision`` records it: without content capture the justification is
    ``"[REDACTED]"`` with its digest in ``justification_hash``."""
    payload: dict[str, Any] = {"decision_id": decision_id, "inputs": jsonable(inputs), "outputs": jsonable(outputs)}
    justification = jsonable(justification)
    if session.capture_content:
        payload["justification"] = justification
    else:
        payload["justification"] = REDACTED
        payload["justification_hash"] = session.digest(justification)
    return payload


def content_or_digest(session: Session, name: str, value: Any) -> dict[str, Any]:
    """``{name: value}`` when the session captures content, else ``{name + "_hash": digest}``: for content an
    integration records inside a larger value (a decision's inputs, a snapshot's state)."""
    converted = jsonable(value)
    return {name: converted} if session.capture_content else {f"{name}_hash": session.digest(converted)}
