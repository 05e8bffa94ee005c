"""ELS section 7, check 1: an event's envelope fields present and well typed, read into one record.

Two readers give the same ``Envelope``:

- ``read_envelope`` checks a parsed event object, field by field in the table order of ELS section 1, and records the
  first problem in the chain's state.
- ``CANONICAL_HEAD`` and ``CANONICAL_TAIL`` read the envelope of a line written as the archive writes it (ELS
  section 2: RFC 8785, so members in sorted order and no whitespace) straight from its text: one pattern for the
  members before the payload, one for those after it. They accept only values that ``read_envelope`` passes (strings
  without escapes, UUIDs, timestamps, integers of at most 15 digits, the current ``schema_ver``), so a line they read
  and the same line parsed give the same record; any other line is parsed and read by ``read_envelope``.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from . import _codes as codes
from . import _rules as rules
from ._describe import describe
from ._jcs import MAX_SAFE_INTEGER
from ._state import ChainState, CheckOptions

_FIELDS = frozenset(rules.ENVELOPE_FIELDS)
_FIELDS_WITH_AUTHORITY_ID = _FIELDS | frozenset(rules.OPTIONAL_FIELDS)
_KNOWN_FIELDS = _FIELDS_WITH_AUTHORITY_ID | {rules.WITHHELD_MARK}

_uuid = rules.UUID.fullmatch
_timestamp = rules.TIMESTAMP.fullmatch


class Envelope(NamedTuple):
    """What the checks after check 1 read of an event: its fields, well typed. ``payload`` is None exactly when the
    event withholds it (an export document's ``payload_withheld``); the hashes are the event's claims."""

    event_id: str
    session_id: str
    sequence_number: int
    timestamp_wall: str
    event_type: str
    payload: dict[str, Any] | None
    payload_hash: str
    prev_event_hash: str | None
    event_hash: str
    chain_authority: str


def read_envelope(state: ChainState, options: CheckOptions, event: dict[str, Any], index: int) -> Envelope:
    """Check 1 for a parsed event at position ``index``. Raises ``Stop`` after recording the first problem."""
    withheld = False
    if event.keys() not in (_FIELDS, _FIELDS_WITH_AUTHORITY_ID):
        withheld = _check_field_set(state, options, event, index)
    event_id = event["event_id"]
    if type(event_id) is not str or not _uuid(event_id):
        raise state.invalid_field("event_id", "a canonical lowercase UUID", event_id, index, event_id)
    session_id = event["session_id"]
    if session_id != state.session_id and (type(session_id) is not str or not _uuid(session_id)):
        raise state.invalid_field("session_id", "a canonical lowercase UUID", session_id, index, event_id)
    sequence_number = event["sequence_number"]
    if type(sequence_number) is not int or not 0 <= sequence_number <= MAX_SAFE_INTEGER:
        raise state.invalid_field("sequence_number", "a non-negative integer", sequence_number, index, event_id)
    timestamp_wall = event["timestamp_wall"]
    if type(timestamp_wall) is not str or not _timestamp(timestamp_wall):
        raise state.invalid_field("timestamp_wall", "an RFC 3339 UTC time ending in Z", timestamp_wall, index, event_id)
    monotonic = event["timestamp_monotonic"]
    if type(monotonic) is not int or not 0 <= monotonic <= MAX_SAFE_INTEGER:
        raise state.invalid_field("timestamp_monotonic", "a non-negative integer", monotonic, index, event_id)
    event_type = event["event_type"]
    if type(event_type) is not str:
        raise state.invalid_field("event_type", "a string", event_type, index, event_id)
    if type(event["source_sdk_ver"]) is not str:
        raise state.invalid_field("source_sdk_ver", "a string", event["source_sdk_ver"], index, event_id)
    schema_ver = event["schema_ver"]
    if schema_ver != rules.SCHEMA_VERSION:
        _check_schema_version(state, schema_ver, index, event_id)
    payload = None if withheld else event["payload"]
    if not withheld and type(payload) is not dict:
        raise state.invalid_field("payload", "a JSON object", payload, index, event_id)
    payload_hash = event["payload_hash"]
    if type(payload_hash) is not str:
        raise state.invalid_field("payload_hash", "a string", payload_hash, index, event_id)
    prev_event_hash = event["prev_event_hash"]
    if prev_event_hash is not None and type(prev_event_hash) is not str:
        raise state.invalid_field("prev_event_hash", "a string or null", prev_event_hash, index, event_id)
    event_hash = event["event_hash"]
    if type(event_hash) is not str:
        raise state.invalid_field("event_hash", "a string", event_hash, index, event_id)
    authority = event["chain_authority"]
    if authority not in rules.AUTHORITIES or type(authority) is not str:
        raise state.invalid_field("chain_authority", '"server" or "sdk"', authority, index, event_id)
    if "authority_id" in event and type(event["authority_id"]) is not str:
        raise state.invalid_field("authority_id", "a string", event["authority_id"], index, event_id)
    return Envelope(
        event_id,
        session_id,
        sequence_number,
        timestamp_wall,
        event_type,
        payload,
        payload_hash,
        prev_event_hash,
        event_hash,
        authority,
    )


def _check_field_set(state: ChainState, options: CheckOptions, event: dict[str, Any], index: int) -> bool:
    """Missing, then unknown fields; returns whether the payload is withheld (export documents only)."""
    event_id = event.get("event_id")
    if rules.WITHHELD_MARK in event and not options.allow_withheld:
        raise state.fail(
            codes.UNKNOWN_FIELD,
            f"{rules.WITHHELD_MARK!r} is only allowed in an export document",
            index,
            event_id,
            field=rules.WITHHELD_MARK,
        )
    withheld = rules.WITHHELD_MARK in event
    if withheld:
        if event[rules.WITHHELD_MARK] is not True:
            raise state.invalid_field(rules.WITHHELD_MARK, "true", event[rules.WITHHELD_MARK], index, event_id)
        if "payload" in event:
            raise state.fail(
                codes.INVALID_FIELD,
                "an event marked payload_withheld must not carry a payload",
                index,
                event_id,
                field="payload",
            )
    for name in rules.ENVELOPE_FIELDS:
        if name not in event and not (withheld and name == "payload"):
            raise state.fail(codes.MISSING_FIELD, f"missing field {name!r}", index, event_id, field=name)
    for name in event:
        if name not in _KNOWN_FIELDS:
            raise state.fail(codes.UNKNOWN_FIELD, f"unknown field {name!r}", index, event_id, field=name)
    return withheld


def _check_schema_version(state: ChainState, schema_ver: Any, index: int, event_id: str) -> None:
    if schema_ver == rules.LEGACY_SCHEMA_VERSION:
        if not state.legacy_schema_reported:
            state.legacy_schema_reported = True
            state.warn(codes.LEGACY_SCHEMA_VERSION, "schema_ver v0.5 read as legacy v0.6", index, event_id)
        return
    raise state.fail(
        codes.SCHEMA_VERSION_MISMATCH,
        f"schema_ver is {describe(schema_ver)}, expected {rules.SCHEMA_VERSION!r}",
        index,
        event_id,
        found=schema_ver if type(schema_ver) is str else None,
    )


# -- the envelope of a canonical line, read from its text -----------------------------------------------------------

# A JSON string of printable ASCII without escapes, which is its own value. ASCII only, so that the reader finds the
# payload's bytes in the line at the positions the patterns leave in its text.
_PLAIN_STRING = r'"[ !#-\[\]-~]*"'
# An integer within 0..MAX_SAFE_INTEGER for certain: at most 15 digits, as JSON writes them.
_SAFE_INTEGER = "(?:0|[1-9][0-9]{0,14})"


def _member(name: str, value: str, *, first: bool = False) -> str:
    return ("" if first else ",") + f'"{name}":{value}'


def _captured(name: str, pattern: str) -> str:
    return f"(?P<{name}>{pattern})"


def _quoted(name: str, pattern: str) -> str:
    return f'"{_captured(name, pattern)}"'


# Everything up to the payload's opening brace: the members that sort before "payload" (RFC 8785 section 3.2.3).
CANONICAL_HEAD = re.compile(
    "{"
    + f"(?:{_member('authority_id', _PLAIN_STRING, first=True)},)?"
    + _member("chain_authority", _quoted("chain_authority", "|".join(map(re.escape, rules.AUTHORITIES))), first=True)
    + _member("event_hash", _quoted("event_hash", rules.HEX_DIGEST_PATTERN))
    + _member("event_id", _quoted("event_id", rules.UUID_PATTERN))
    + _member("event_type", _quoted("event_type", "[A-Z_]{1,64}"))
    + _member("payload", "(?={)")
)
# Everything after the payload, to the end of the line: the members that sort after "payload".
CANONICAL_TAIL = re.compile(
    _member("payload_hash", _quoted("payload_hash", rules.HEX_DIGEST_PATTERN))
    + _member("prev_event_hash", f"(?:null|{_quoted('prev_event_hash', rules.HEX_DIGEST_PATTERN)})")
    + _member("schema_ver", '"' + re.escape(rules.SCHEMA_VERSION) + '"')
    + _member("sequence_number", _captured("sequence_number", _SAFE_INTEGER))
    + _member("session_id", _quoted("session_id", rules.UUID_PATTERN))
    + _member("source_sdk_ver", _PLAIN_STRING)
    + _member("timestamp_monotonic", _SAFE_INTEGER)
    + _member("timestamp_wall", _quoted("timestamp_wall", rules.TIMESTAMP.pattern))
    + "}"
)
_HEAD_GROUPS = tuple(
    CANONICAL_HEAD.groupindex[name] for name in ("event_id", "event_type", "event_hash", "chain_authority")
)
_TAIL_GROUPS = tuple(
    CANONICAL_TAIL.groupindex[name]
    for name in ("session_id", "sequence_number", "timestamp_wall", "payload_hash", "prev_event_hash")
)


def canonical_envelope(head: re.Match[str], payload: dict[str, Any], tail: re.Match[str]) -> Envelope:
    """The envelope of a line whose text ``CANONICAL_HEAD`` matched at its start and ``CANONICAL_TAIL`` matched from
    the end of its ``payload`` object to its end."""
    event_id, event_type, event_hash, authority = head.group(*_HEAD_GROUPS)
    session_id, sequence_number, timestamp_wall, payload_hash, prev_event_hash = tail.group(*_TAIL_GROUPS)
    return Envelope(
        event_id,
        session_id,
        int(sequence_number),
        timestamp_wall,
        event_type,
        payload,
        payload_hash,
        prev_event_hash,
        event_hash,
        authority,
    )
