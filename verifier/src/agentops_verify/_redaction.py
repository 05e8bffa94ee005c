"""Redaction before hashing (ELS section 3): where a payload holds ``"[REDACTED]"`` and whether its hash is kept.

A producer may replace a value by ``"[REDACTED]"`` and put the original's hash in a sibling key ``<key>_hash``; a
marker without that sibling binds nothing and is a redaction error (the verifier's ``REDACTION_INTEGRITY``). The
verifier, the ingestion service, replay and the PII scan all ask this module, so they agree on every case: a marker
inside an array has no key and so no sibling; the sibling must be a string (the hash or a salted variant).

Places are RFC 6901 JSON Pointers below a root the caller names (``"/payload"`` for pointers into an envelope).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._rules import REDACTED, REDACTION_HASH_SUFFIX


@dataclass(frozen=True)
class Redaction:
    """One ``"[REDACTED]"`` value: its JSON Pointer and whether a string ``<key>_hash`` sibling backs it."""

    pointer: str
    backed: bool


def is_redacted(value: Any) -> bool:
    """Whether ``value`` is the redaction marker (a string, not merely equal to one)."""
    return type(value) is str and value == REDACTED


def has_redaction_hash(container: Mapping[str, Any], key: str) -> bool:
    """Whether the object holding member ``key`` also holds its string ``<key>_hash`` sibling."""
    return type(container.get(key + REDACTION_HASH_SUFFIX)) is str


def pointer_token(key: str) -> str:
    """RFC 6901 section 3: a member name as a reference token ('~' written '~0', '/' written '~1')."""
    return key.replace("~", "~0").replace("/", "~1")


def find_redactions(value: Any, root: str = "") -> Iterator[Redaction]:
    """Every ``"[REDACTED]"`` inside ``value``, in document order, with its pointer (prefixed by ``root``)."""
    # Depth first, children pushed in reverse so they come off the stack in document order. Each entry carries the
    # object holding it and its member name (None inside an array), which decide whether it is backed.
    stack: list[tuple[Any, str, dict[str, Any] | None, str | None]] = [(value, root, None, None)]
    while stack:
        node, pointer, parent, key = stack.pop()
        if is_redacted(node):
            yield Redaction(pointer, parent is not None and key is not None and has_redaction_hash(parent, key))
        elif type(node) is dict:
            stack.extend(
                (child, f"{pointer}/{pointer_token(name)}", node, name) for name, child in reversed(node.items())
            )
        elif type(node) is list:
            stack.extend(
                (child, f"{pointer}/{position}", None, None) for position, child in reversed(list(enumerate(node)))
            )


def find_unbacked_redaction(value: Any, root: str = "") -> str | None:
    """The pointer of the first ``"[REDACTED]"`` (document order) that no ``<key>_hash`` sibling backs, or None."""
    return next((redaction.pointer for redaction in find_redactions(value, root) if not redaction.backed), None)
