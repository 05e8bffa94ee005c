"""Redacted values in event payloads (ELS section 3, "Redaction before hashing").

A producer may replace a sensitive value by the string ``"[REDACTED]"`` and keep a hash of the original in a sibling
key ``<key>_hash``. Replay marks such events (REDACTION frames) and the PII scan reports a redaction without its
sibling hash as an error. Pointers are rooted at the event envelope (``/payload/...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentops_server.json_pointer import Node, walk

REDACTED = "[REDACTED]"
HASH_SUFFIX = "_hash"


@dataclass(frozen=True)
class Redaction:
    pointer: str
    has_sibling_hash: bool  # False is a redaction error (ELS section 3): nothing binds the value that was removed


def find_redactions(payload: Any) -> list[Redaction]:
    """Every ``"[REDACTED]"`` value in ``payload`` in document order, and whether its ``<key>_hash`` sibling exists."""
    return [Redaction(node.pointer, has_sibling_hash(node)) for node in walk(payload, "/payload") if is_redacted(node)]


def is_redacted(node: Node) -> bool:
    return isinstance(node.value, str) and node.value == REDACTED


def has_sibling_hash(node: Node) -> bool:
    """Whether the object holding this member also holds ``<key>_hash`` (a string: the hash or a salted variant)."""
    return node.parent is not None and isinstance(node.parent.get(f"{node.key}{HASH_SUFFIX}"), str)
