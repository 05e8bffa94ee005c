"""JSON Pointers (RFC 6901) over parsed JSON values: how PII findings say *where* in an event (replay frames name
redactions with the verifier's ``find_redactions``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agentops_verify import pointer_token


@dataclass(frozen=True)
class Node:
    """One value inside a JSON document, with its pointer and, for object members, its key and parent object."""

    pointer: str
    value: Any
    key: str | None  # the member name when the value sits in an object, None inside arrays and at the root
    parent: dict[str, Any] | None  # the object holding the member, None inside arrays and at the root


def walk(value: Any, root: str = "", member_token: Callable[[str, int], str] | None = None) -> Iterator[Node]:
    """Every value of ``value`` in document order (parents before children), each with its JSON Pointer.

    ``member_token(key, position)`` may replace the reference token of an object member (``position`` is its index
    among the object's members); by default the token is the escaped key.
    """
    token = member_token if member_token is not None else _escaped_key
    stack: list[Node] = [Node(root, value, None, None)]
    while stack:
        node = stack.pop()
        yield node
        current = node.value
        if isinstance(current, dict):
            children = [
                Node(f"{node.pointer}/{token(key, position)}", child, key, current)
                for position, (key, child) in enumerate(current.items())
            ]
        elif isinstance(current, list):
            children = [Node(f"{node.pointer}/{index}", child, None, None) for index, child in enumerate(current)]
        else:
            continue
        stack.extend(reversed(children))


def _escaped_key(key: str, _position: int) -> str:
    return pointer_token(key)
