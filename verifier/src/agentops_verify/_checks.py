"""The per-event checks of ELS section 7, in the order the spec gives, over the state one session's chain has built.

``ChainState`` is everything the next check needs (previous hash, expected sequence number, a few flags, the event ids
seen, the seal's state) and everything found so far; ``check_event`` checks one parsed event against it and advances
it. A violation is recorded in the state and ends checking (``Stop``). No I/O and no parsing: ``ChainVerifier`` reads
the input and calls these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._describe import describe
from ._ecdsa import PublicKey
from ._jcs import MAX_SAFE_INTEGER
from ._keys import KeyLookup
from ._redaction import find_unbacked_redaction
from ._report import Finding, Violation
from ._seal import UNSEALED, SealEvent, SealProblem, SealState, check_seal

_FIELDS = frozenset(rules.ENVELOPE_FIELDS)
_FIELDS_WITH_AUTHORITY_ID = _FIELDS | frozenset(rules.OPTIONAL_FIELDS)
_KNOWN_FIELDS = _FIELDS_WITH_AUTHORITY_ID | {rules.WITHHELD_MARK}
_ORDER_SENSITIVE_TYPES = frozenset({rules.SESSION_START, rules.SESSION_END, rules.CHAIN_SEAL})
_REDACTED_JSON = b'"' + rules.REDACTED.encode("ascii") + b'"'
# Warnings of one kind beyond this many are counted, not listed, so memory stays flat on long chains.
MAX_WARNINGS_PER_TYPE = 100

_uuid = rules.UUID.fullmatch
_sha256 = hashlib.sha256
_timestamp = rules.TIMESTAMP.fullmatch


# A LOG_DROP's counts as a segment worker leaves them to the main process: the event's sequence number and id, its
# dropped_count and cumulative_drops, and how many warnings the worker had listed before it (its own warnings go
# there, so the main process lists them where a serial run does, before the event's TIMESTAMP_ANOMALY).
DeferredDrop = tuple[int, str, Any, Any, int]


class Stop(Exception):  # noqa: N818 - control flow between the checks and ChainVerifier, never escapes the package
    """Raised by a check after it has recorded a violation."""


@dataclass(frozen=True)
class CheckOptions:
    """What the checks take from outside the chain: the trusted keys, an export document's listed keys (used only to
    recompute what the document may claim, ELS section 9), and whether events may withhold their payload."""

    trust: KeyLookup | None = None
    document_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    allow_withheld: bool = False


@dataclass(frozen=True)
class ChainOutcome:
    """What the per-event checks established, before classification and policy."""

    violation: Violation | None
    warnings: tuple[Finding, ...]
    session_id: str | None
    authority: str | None
    event_count: int
    first_event_hash: str | None
    final_event_hash: str | None
    seal: SealState
    complete: bool
    has_log_drop: bool
    total_drops: int


@dataclass(slots=True)
class ChainState:
    """One session's chain as checked so far. ``count`` counts events, also after the first violation."""

    count: int = 0
    line_number: int = 0
    violation: Violation | None = None
    warnings: list[Finding] = field(default_factory=list)
    warning_counts: dict[str, int] = field(default_factory=dict)
    session_id: str | None = None
    authority: str | None = None
    first_hash: str | None = None
    last_hash: str | None = None
    seen_ids: set[int] = field(default_factory=set)
    last_time: str | None = None
    has_end: bool = False
    seal: SealState = UNSEALED
    has_log_drop: bool = False
    total_drops: int = 0
    excessive_drops_reported: bool = False
    legacy_schema_reported: bool = False
    withheld: list[int] = field(default_factory=list)
    # Set only in a segment worker of parallel verification (see _segments): the ids it saw, and the LOG_DROP counts
    # whose running total lives in the main process.
    segment_ids: list[int] | None = None
    deferred_drops: list[DeferredDrop] | None = None

    def fail(self, code: str, message: str, index: int | None, event_id: Any, **context: Any) -> Stop:
        self.violation = Violation(
            code, message, event_sequence=index, event_id=event_id if type(event_id) is str else None, context=context
        )
        return Stop()

    def invalid_field(self, name: str, expected: str, value: Any, index: int, event_id: Any) -> Stop:
        return self.fail(
            codes.INVALID_FIELD, f"{name} must be {expected}, found {describe(value)}", index, event_id, field=name
        )

    def malformed(self, message: str) -> None:
        """The line or value at the current position is not an I-JSON object: MALFORMED_JSON, counted as an event."""
        self.violation = Violation(
            codes.MALFORMED_JSON, message, event_sequence=self.count, context={"line": self.line_number}
        )
        self.count += 1

    def warn(self, code: str, message: str, index: int | None, event_id: str | None, **context: Any) -> None:
        count = self.warning_counts.get(code, 0) + 1
        self.warning_counts[code] = count
        if count <= MAX_WARNINGS_PER_TYPE:
            self.warnings.append(Finding(code, message, event_sequence=index, event_id=event_id, context=context))

    def outcome(self) -> ChainOutcome:
        violation = self.violation
        if violation is None and self.count == 0:
            violation = Violation(codes.EMPTY_LOG, "the input holds no events")
        warnings = list(self.warnings)
        if self.withheld:
            warnings.append(
                Finding(
                    codes.PAYLOAD_WITHHELD,
                    f"{len(self.withheld)} payload(s) withheld from this export; their hashes still chain",
                    context={"sequences": list(self.withheld)},
                )
            )
        for code, count in self.warning_counts.items():
            if count > MAX_WARNINGS_PER_TYPE:
                warnings.append(Finding(code, f"{count - MAX_WARNINGS_PER_TYPE} more {code} warnings not listed"))
        return ChainOutcome(
            violation=violation,
            warnings=tuple(warnings),
            session_id=self.session_id,
            authority=self.authority,
            event_count=self.count,
            first_event_hash=self.first_hash,
            final_event_hash=self.last_hash,
            seal=self.seal,
            complete=self.has_end,
            has_log_drop=self.has_log_drop,
            total_drops=self.total_drops,
        )


def check_event(
    state: ChainState, options: CheckOptions, event: dict[str, Any], payload_jcs: bytes | None, index: int
) -> None:
    """ELS section 7 for the event at position ``index``; ``payload_jcs`` is its payload's canonical bytes (None
    when the payload is not an object). Raises ``Stop`` after recording the first violation."""
    keys = event.keys()
    withheld = False
    if keys not in (_FIELDS, _FIELDS_WITH_AUTHORITY_ID):
        withheld = _check_field_set(state, options, event, index)

    # 1. fields well-typed (table order of ELS section 1)
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
    claimed_payload_hash = event["payload_hash"]
    if type(claimed_payload_hash) is not str:
        raise state.invalid_field("payload_hash", "a string", claimed_payload_hash, index, event_id)
    prev_event_hash = event["prev_event_hash"]
    if prev_event_hash is not None and type(prev_event_hash) is not str:
        raise state.invalid_field("prev_event_hash", "a string or null", prev_event_hash, index, event_id)
    claimed_event_hash = event["event_hash"]
    if type(claimed_event_hash) is not str:
        raise state.invalid_field("event_hash", "a string", claimed_event_hash, index, event_id)
    authority = event["chain_authority"]
    if authority not in rules.AUTHORITIES or type(authority) is not str:
        raise state.invalid_field("chain_authority", '"server" or "sdk"', authority, index, event_id)
    if "authority_id" in event and type(event["authority_id"]) is not str:
        raise state.invalid_field("authority_id", "a string", event["authority_id"], index, event_id)

    # 2. session id
    if index == 0:
        state.session_id = session_id
    elif session_id != state.session_id:
        raise state.fail(
            codes.SESSION_MISMATCH,
            f"session_id {session_id} differs from the session's {state.session_id}",
            index,
            event_id,
            expected=state.session_id,
            found=session_id,
        )

    # 3. payload hash (compared as a string: any difference, letter case included, is a mismatch)
    if withheld:
        state.withheld.append(index)
    else:
        assert payload_jcs is not None  # payload is a dict, so the caller canonicalized it
        computed_payload_hash = _sha256(payload_jcs).hexdigest()
        if computed_payload_hash != claimed_payload_hash:
            raise state.fail(
                codes.PAYLOAD_HASH_MISMATCH,
                "payload_hash does not match the hash of the payload",
                index,
                event_id,
                expected=computed_payload_hash,
                found=claimed_payload_hash,
            )

    # 4. sequence number
    if sequence_number != index:
        raise state.fail(
            codes.SEQUENCE_GAP,
            f"sequence_number is {sequence_number}, expected {index}",
            index,
            event_id,
            expected=index,
            found=sequence_number,
        )

    # 5. link to the previous event
    if index == 0:
        if prev_event_hash is not None:
            raise state.fail(
                codes.INVALID_GENESIS,
                "the first event's prev_event_hash must be null",
                index,
                event_id,
                found=prev_event_hash,
            )
    elif prev_event_hash != state.last_hash:
        raise state.fail(
            codes.CHAIN_BROKEN,
            "prev_event_hash is not the previous event's event_hash",
            index,
            event_id,
            expected=state.last_hash,
            found=prev_event_hash,
        )

    # 6. event hash. The seven hashed values are validated above (UUIDs, integer, timestamp) or equal to a
    # computed hex digest, so only event_type (and a withheld event's unchecked payload_hash) need escaping.
    type_json = f'"{event_type}"' if event_type in rules.REQUIRED_PAYLOAD_KEYS else encode_basestring(event_type)
    payload_hash_json = encode_basestring(claimed_payload_hash) if withheld else f'"{claimed_payload_hash}"'
    prev_json = "null" if prev_event_hash is None else f'"{prev_event_hash}"'
    hashed_text = (
        f'{{"event_id":"{event_id}","event_type":{type_json},"payload_hash":{payload_hash_json},'
        f'"prev_event_hash":{prev_json},"sequence_number":{sequence_number},"session_id":"{session_id}",'
        f'"timestamp_wall":"{timestamp_wall}"}}'
    )
    try:
        computed_event_hash = _sha256(hashed_text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:
        raise state.fail(codes.MALFORMED_JSON, "a hashed field holds a lone surrogate", index, event_id) from None
    if computed_event_hash != claimed_event_hash:
        raise state.fail(
            codes.EVENT_HASH_MISMATCH,
            "event_hash does not match the hash of the event",
            index,
            event_id,
            expected=computed_event_hash,
            found=claimed_event_hash,
        )

    # event ids are unique within the session (ELS section 1)
    id_number = int(event_id.replace("-", ""), 16)
    if id_number in state.seen_ids:
        raise state.fail(codes.DUPLICATE_EVENT_ID, f"event_id {event_id} appears twice", index, event_id)
    state.seen_ids.add(id_number)
    if state.segment_ids is not None:
        state.segment_ids.append(id_number)

    # 7. type, order, authority and seal rules
    required = rules.REQUIRED_PAYLOAD_KEYS.get(event_type)
    if required is None:
        raise state.fail(
            codes.UNKNOWN_EVENT_TYPE, f"event_type {event_type!r} is not an ELS event type", index, event_id
        )
    if payload is not None:
        for key in required:
            if key not in payload:
                raise state.fail(
                    codes.MISSING_FIELD,
                    f"{event_type} payload lacks {key!r}",
                    index,
                    event_id,
                    field=f"payload.{key}",
                )
    if index == 0 or state.has_end or state.seal.sealed or event_type in _ORDER_SENSITIVE_TYPES:
        _check_order(state, event_type, index, event_id)
    if index == 0:
        state.authority = authority
    elif authority != state.authority:
        raise state.fail(
            codes.MIXED_AUTHORITY,
            f"chain_authority is {authority!r} but the session's is {state.authority!r}",
            index,
            event_id,
            expected=state.authority,
            found=authority,
        )
    if event_type == rules.CHAIN_SEAL:
        seal = SealEvent(index, event_id, session_id, timestamp_wall, payload, claimed_payload_hash)
        _check_seal(state, options, seal)

    # redaction (ELS section 3); the canonical bytes show every "[REDACTED]" string literally
    if payload is not None and payload_jcs is not None and _REDACTED_JSON in payload_jcs:
        unbacked = find_unbacked_redaction(payload)
        if unbacked is not None:
            raise state.fail(
                codes.REDACTION_INTEGRITY,
                f"{unbacked} is {rules.REDACTED} but has no sibling hash",
                index,
                event_id,
                path=unbacked,
            )

    # warnings
    if event_type == rules.LOG_DROP:
        state.has_log_drop = True
        if payload is not None:
            if state.deferred_drops is None:
                check_drop_counts(state, payload["dropped_count"], payload["cumulative_drops"], index, event_id)
            else:  # a segment worker: the running total lives in the main process
                counts = (payload["dropped_count"], payload["cumulative_drops"])
                state.deferred_drops.append((index, event_id, *counts, len(state.warnings)))
    # Same-length timestamps compare as strings; otherwise the fraction lengths differ and need aligning.
    last_time = state.last_time
    if last_time is not None and (
        timestamp_wall < last_time
        if len(timestamp_wall) == len(last_time)
        else _time_key(timestamp_wall) < _time_key(last_time)
    ):
        state.warn(
            codes.TIMESTAMP_ANOMALY,
            "timestamp_wall is earlier than the previous event's",
            index,
            event_id,
            timestamp_wall=timestamp_wall,
        )
    state.last_time = timestamp_wall

    if index == 0:
        state.first_hash = claimed_event_hash
    state.last_hash = claimed_event_hash


def check_drop_counts(state: ChainState, dropped: Any, cumulative: Any, index: int, event_id: str) -> None:
    """LOG_DROP counts (ELS section 3): warnings only, and the session's running total of dropped events."""
    if type(dropped) is not int or dropped < 1:
        state.warn(codes.INVALID_DROP_COUNT, "dropped_count is not an integer >= 1", index, event_id)
        dropped = 0
    state.total_drops += dropped
    if type(cumulative) is not int or cumulative < state.total_drops:
        state.warn(
            codes.INVALID_DROP_COUNT,
            "cumulative_drops is not an integer at least the drops recorded so far",
            index,
            event_id,
            total_so_far=state.total_drops,
        )
    elif cumulative > rules.EXCESSIVE_DROPS:
        _report_excessive_drops(state, cumulative, index, event_id)
    if state.total_drops > rules.EXCESSIVE_DROPS:
        _report_excessive_drops(state, state.total_drops, index, event_id)


def _report_excessive_drops(state: ChainState, dropped: int, index: int, event_id: str) -> None:
    if not state.excessive_drops_reported:
        state.excessive_drops_reported = True
        state.warn(
            codes.EXCESSIVE_CUMULATIVE_DROPS,
            f"{dropped} events dropped (more than {rules.EXCESSIVE_DROPS})",
            index,
            event_id,
            dropped=dropped,
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


def _check_order(state: ChainState, event_type: str, index: int, event_id: str) -> None:
    # ELS section 3 order rules.
    problem = None
    if state.seal.sealed:
        problem = f"{event_type} follows the CHAIN_SEAL at sequence {state.seal.index}"
    elif index == 0 and event_type != rules.SESSION_START:
        problem = f"the first event is {event_type}, not SESSION_START"
    elif index > 0 and event_type == rules.SESSION_START:
        problem = "a second SESSION_START"
    elif state.has_end and event_type != rules.CHAIN_SEAL:
        problem = f"{event_type} follows SESSION_END"
    if problem is not None:
        raise state.fail(codes.ORDER_VIOLATION, problem, index, event_id)
    if event_type == rules.SESSION_END:
        state.has_end = True


def _check_seal(state: ChainState, options: CheckOptions, seal: SealEvent) -> None:
    # ELS section 5.
    try:
        state.seal, mismatched = check_seal(seal, state.last_hash, options.trust, options.document_keys)
    except SealProblem as problem:
        if problem.state is not None:
            state.seal = problem.state
        raise state.fail(problem.code, problem.message, seal.index, seal.event_id, **problem.context) from None
    if mismatched:
        state.warn(
            codes.LEGACY_SEAL_MISMATCH,
            f"unsigned legacy seal: {', '.join(mismatched)} not matching the chain",
            seal.index,
            seal.event_id,
            fields=list(mismatched),
        )


def _time_key(timestamp: str) -> tuple[str, str]:
    # Comparable form of a validated timestamp: the fixed-width seconds part, then the fraction digits without
    # trailing zeros (digit strings compare as decimal fractions).
    return timestamp[:19], timestamp[20:-1].rstrip("0") if timestamp[19] == "." else ""
