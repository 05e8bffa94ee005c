"""The payloads of the typed helpers, and payloads made later, on the sender thread.

Each ``*_content`` function states one helper's payload rules once: the helper (``client.Session``) uses it on the
agent's thread, and an integration through ``Session._record_later``, on the sender thread (``made_payload``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

# A helper's event before its content is placed: (payload, content key, hash key, content). The content goes into the
# payload under the content key when the session captures content, else its digest under the hash key; None: neither.
Content: TypeAlias = tuple[dict[str, Any], str, str, Any]


def model_request_content(
    model: str, messages: Any = None, provider: str | None = None, parameters: Mapping[str, Any] | None = None
) -> Content:
    payload: dict[str, Any] = {"model": model}
    if provider is not None:
        payload["provider"] = provider
    if parameters is not None:
        payload["parameters"] = dict(parameters)
    return payload, "messages", "prompt_hash", messages


def model_response_content(
    model: str, content: Any = None, finish_reason: str | None = None, usage: Mapping[str, Any] | None = None
) -> Content:
    payload: dict[str, Any] = {"model": model}
    if finish_reason is not None:
        payload["finish_reason"] = finish_reason
    if usage is not None:
        payload["usage"] = dict(usage)
    return payload, "content", "content_hash", content


def tool_call_content(tool_name: str, args: Any = None, tool_id: str | None = None) -> Content:
    payload: dict[str, Any] = {"tool_name": tool_name}
    if tool_id is not None:
        payload["tool_id"] = tool_id
    return payload, "args", "args_hash", args


def tool_result_content(
    tool_name: str,
    result: Any = None,
    tool_id: str | None = None,
    status: str | None = None,
    duration_ms: float | None = None,
) -> Content:
    payload: dict[str, Any] = {"tool_name": tool_name}
    if tool_id is not None:
        payload["tool_id"] = tool_id
    if status is not None:
        payload["status"] = status
    if isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool) and math.isfinite(duration_ms):
        payload["duration_ms"] = max(0, round(duration_ms))
    return payload, "result", "result_hash", result


def made_payload(
    build: Callable[..., dict[str, Any] | Content],
    captured: tuple[Any, ...],
    capture_content: bool,
    digest: Callable[[Any], str],
) -> dict[str, Any]:
    """The payload of an event recorded by ``Session._record_later``, made on the sender thread: ``build(*captured)``
    returns the payload, or a ``Content`` whose content is placed as the session says (``capture_content``)."""
    made = build(*captured)
    if isinstance(made, dict):
        return made
    payload, content_key, hash_key, content = made
    if content is not None:
        if capture_content:
            payload[content_key] = content
        else:
            payload[hash_key] = digest(content)
    return payload
