"""Privacy helpers: content recorded as digests, and single values redacted (ELS section 3, "Redaction before hashing").

A digest is taken over the RFC 8785 canonical form of the value (``agentops_verify.canonicalize``), after the
conversions of ``_values`` (datetimes, bytes, sets, ...). Two forms:

- plain: ``hex(SHA-256(JCS(value)))``, ELS section 2's ``payload_hash`` rule: anyone holding the value can recompute
  it, and so can anyone who can guess it (a short or predictable value is found by trying candidates);
- keyed, with a content digest key: ``"hmac-sha256:" + hex(HMAC-SHA256(key, JCS(value)))``, the "salted variant"
  ELS section 3 allows for redaction hashes. Without the key a digest proves nothing about a guess; the owner proves
  a value by disclosing it together with the key (``content_digest`` recomputes it). The prefix names the algorithm,
  so a reader always knows which form a digest is.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any, Final

from agentops_verify import MAX_DEPTH, REDACTED, CanonicalizationError, canonicalize, payload_hash

from ._values import plain_json
from .events import number_problem

KEYED_DIGEST_PREFIX: Final = "hmac-sha256:"
DIGEST_KEY_ENVIRONMENT: Final = "AGENTOPS_CONTENT_DIGEST_KEY"


def _canonical(value: Any) -> bytes:
    try:
        return canonicalize(value)
    except CanonicalizationError:
        return canonicalize(plain_json(value))


def content_digest(value: Any, key: bytes | str | None = None) -> str:
    """The digest recorded in place of ``value``: plain SHA-256 without ``key``, ``"hmac-sha256:<hex>"`` with it.

    Raises ``agentops_verify.CanonicalizationError`` when ``value`` has no canonical form (NaN, a lone surrogate,
    ...) even after the conversions of ``_values``."""
    if key is None:
        try:
            return payload_hash(value)
        except CanonicalizationError:
            return payload_hash(plain_json(value))
    secret = key.encode("utf-8") if isinstance(key, str) else key
    return KEYED_DIGEST_PREFIX + hmac.new(secret, _canonical(value), hashlib.sha256).hexdigest()


def content_hash(value: Any) -> str:
    """hex(SHA-256(JCS(value))): the plain digest (``content_digest`` without a key)."""
    return content_digest(value)


class ContentDigest:
    """The digest rule of one client: keyed when it has a content digest key. Used by the sender thread (helpers'
    hashes) and by integrations (``Session.digest``)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def __call__(self, value: Any) -> str:
        return content_digest(value, self._key)


def digest_key_from(argument: bytes | str | None) -> bytes | None:
    """The content digest key: the argument, else ``AGENTOPS_CONTENT_DIGEST_KEY``; as bytes (a string is UTF-8)."""
    key = argument if argument is not None else os.environ.get(DIGEST_KEY_ENVIRONMENT) or None
    if key is None:
        return None
    secret = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not secret:
        raise ValueError("the content digest key is empty")
    return secret


def redact(payload: Mapping[str, Any], *keys: str, digest_key: bytes | str | None = None) -> dict[str, Any]:
    """Return a copy of ``payload`` with each of ``keys`` replaced by ``"[REDACTED]"`` and the original value's digest
    in the sibling key ``<key>_hash`` (keyed when ``digest_key`` is given; ``Session.redact`` uses the client's key).
    Keys that are absent are left alone.

    Raises ``agentops_verify.CanonicalizationError`` when a redacted value is not I-JSON (it has no digest).
    """
    redacted = dict(payload)
    for key in keys:
        if key in redacted:
            redacted[f"{key}_hash"] = content_digest(redacted[key], digest_key)
            redacted[key] = REDACTED
    return redacted


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Best-effort conversion of framework objects into I-JSON values, so their digest or content can be recorded.
    Used by the integrations: the conversions of ``_values`` (pydantic models, dataclasses, datetimes, bytes, sets,
    ...), then anything still not I-JSON becomes text: unknown objects their ``str()`` (``text_of``), numbers the
    service would refuse (NaN, Infinity, integers beyond +-(2**53 - 1), integral floats from 2**53 to 1e21) their
    ``repr()``, or ``hex()`` for an integer too long for Python to print in decimal. Never raises: a value whose own
    code raises while it is read (a mapping whose ``items()`` fails, ...) is recorded as ``text_of`` it."""
    if _depth > MAX_DEPTH - 5:  # room for the envelope and an integration's keys around it; deeper: text
        return text_of(value)
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int or kind is float:
        return value if number_problem(value) is None else _number_text(value)
    try:
        if kind is dict or isinstance(value, Mapping):
            return {text_of(key): jsonable(item, _depth + 1) for key, item in value.items()}
        if kind is list or kind is tuple:
            return [jsonable(item, _depth + 1) for item in value]
        converted = plain_json(value)
    except Exception:
        return text_of(value)
    if converted is value:
        return text_of(value)
    return jsonable(converted, _depth + 1)


def text_of(value: Any) -> str:
    """``str(value)``, or ``"<unprintable TYPE>"`` when its ``__str__`` raises or returns something else than a
    string (an exception whose message needs an attribute it was raised without, ...). Never raises."""
    if type(value) is str:
        return value
    try:
        text = str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return str.__str__(text)  # a plain str even when __str__ returned a subclass of str


def _number_text(number: float) -> str:
    try:
        return repr(number)
    except ValueError:  # an integer of more digits than Python prints in decimal (sys.get_int_max_str_digits())
        return hex(int(number))


def snapshot(value: Any, _depth: int = 0) -> Any:
    """``value`` as it is now, for an integration to record later (``Session._record_later``) whatever the framework
    does with it afterwards, at the least cost on the framework's thread: strings, numbers, booleans, None and bytes
    are shared (they cannot change); bytearrays and memoryviews are copied as bytes; dicts, lists and tuples are
    copied, level by level; any other object (a pydantic model, a dataclass, ...) is converted by ``jsonable`` now,
    since it may change, or not be safe to read from another thread. Converting the copy with ``jsonable`` later
    gives what converting ``value`` now would have."""
    kind = type(value)
    if kind in _UNCHANGING:
        return value
    if kind is bytearray or kind is memoryview:  # copied as they are (a memory copy); encoded later, by the sender
        with contextlib.suppress(ValueError):  # a released memoryview: jsonable records its text
            return bytes(value)
    if _depth > MAX_DEPTH - 5:
        return jsonable(value, _depth)
    depth = _depth + 1
    # Most members are strings and numbers: taken as they are without a call each.
    try:
        if kind is dict:
            return {key: item if type(item) in _UNCHANGING else snapshot(item, depth) for key, item in value.items()}
        if kind is list or kind is tuple:
            return [item if type(item) in _UNCHANGING else snapshot(item, depth) for item in value]
    except RuntimeError:  # another thread changed it while it was copied ("dictionary changed size ...")
        return _copied_again(value, depth)
    return jsonable(value, _depth)


def _copied_again(container: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> Any:
    """The container copied as it is now, or its text if it changes again meanwhile: the event is never lost."""
    try:
        if type(container) is dict:
            return {key: snapshot(item, depth) for key, item in container.items()}
        return [snapshot(item, depth) for item in container]
    except RuntimeError:
        return text_of(container)


_UNCHANGING: Final = frozenset({str, int, float, bool, type(None), bytes})
