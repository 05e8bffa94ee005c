"""Streaming verification of one session (ELS section 7): every per-event check, in the order the spec gives.

``ChainVerifier`` takes events one at a time, as raw JSON Lines or as parsed objects, keeps only what the next check
needs (the previous hash, the expected sequence number, a few flags, and the set of event ids seen), stops checking
at the first violation while still counting events, and turns what it saw into a ``Report``. No I/O: the caller
reads the bytes and passes the trust anchor in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Protocol

from . import _codes as codes
from . import _rules as rules
from ._ecdsa import PublicKey, verify_signature
from ._errors import MalformedJSONError
from ._eventline import JSON_WHITESPACE, EventLineParser, canonical_bytes
from ._hashing import SPEC_VERSION, seal_signed_bytes
from ._jcs import MAX_SAFE_INTEGER, fast_canonical_text
from ._json import check_tree
from ._policy import Policy
from ._report import Finding, Report, Violation

VERIFIER_VERSION = "0.1.0"

_FIELDS = frozenset(rules.ENVELOPE_FIELDS)
_FIELDS_WITH_AUTHORITY_ID = _FIELDS | frozenset(rules.OPTIONAL_FIELDS)
_KNOWN_FIELDS = _FIELDS_WITH_AUTHORITY_ID | {rules.WITHHELD_MARK}
_JSON_WHITESPACE_BYTES = JSON_WHITESPACE.encode("ascii")
_ORDER_SENSITIVE_TYPES = frozenset({rules.SESSION_START, rules.SESSION_END, rules.CHAIN_SEAL})
_REDACTED_JSON = b'"' + rules.REDACTED.encode("ascii") + b'"'
# Warnings of one kind beyond this many are counted, not listed, so memory stays flat on long chains.
_MAX_WARNINGS_PER_TYPE = 100

_uuid = rules.UUID.fullmatch
_sha256 = hashlib.sha256
_timestamp = rules.TIMESTAMP.fullmatch


class KeyLookup(Protocol):
    """The trust anchor: ``TrustStore`` or anything else that returns the trusted key with a given id."""

    def get(self, key_id: str) -> PublicKey | None: ...


class _Stop(Exception):  # noqa: N818 - internal control flow, never escapes this module
    """Raised inside the per-event checks when a violation has been recorded."""


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
    sealed: bool
    seal_signed: bool
    seal_key_id: str | None
    seal_key_trusted: bool
    # For export claims (ELS section 9): would the seal's signature verify if its key were trusted? True unless a
    # key listed in the document under that id says otherwise.
    seal_valid_if_trusted: bool
    seal_payload_hash: str | None
    complete: bool
    has_log_drop: bool
    total_drops: int


@dataclass(frozen=True)
class SegmentResult:
    """What a worker verifying one segment of a JSON Lines file hands back (see ``ChainVerifier.begin_segment``)."""

    lines: int
    events: int
    first_line: bytes | None
    first_line_number: int
    usable: bool
    violation: Violation | None
    warnings: tuple[Finding, ...]
    warning_counts: dict[str, int]
    drops: tuple[tuple[int, str, Any, Any], ...]
    ids: tuple[int, ...]
    last_hash: str | None
    last_time: str | None
    has_end: bool
    seal_index: int | None
    seal_signed: bool
    seal_key_id: str | None
    seal_key_trusted: bool
    seal_valid_if_trusted: bool
    seal_payload_hash: str | None
    has_log_drop: bool


class ChainVerifier:
    """Verifies one session incrementally: ``add_line`` / ``add_event`` for each event in order, then ``finish``.

    ``add_line`` takes one raw JSON Lines line and is the fast path; ``add_event`` takes an event another component
    already parsed and checks it with the exact (slower) canonicalizer. Neither modifies what it is given.
    """

    def __init__(
        self,
        trust: KeyLookup | None = None,
        policy: Policy = Policy(),  # noqa: B008
        *,
        allow_withheld_payloads: bool = False,
    ) -> None:
        self._trust = trust
        self._policy = policy
        self._parse = EventLineParser().parse
        # Events of an export document (ELS section 9) may carry "payload_withheld": true instead of a payload.
        self._allow_withheld = allow_withheld_payloads
        # The document's public_keys, used only to recompute the class the document may claim.
        self._document_keys: Mapping[str, PublicKey] = {}
        self._line_number = 0
        self._count = 0
        self._violation: Violation | None = None
        self._warnings: list[Finding] = []
        self._warning_counts: dict[str, int] = {}
        self._session_id: str | None = None
        self._authority: str | None = None
        self._first_hash: str | None = None
        self._last_hash: str | None = None
        self._seen_ids: set[int] = set()
        self._last_time: str | None = None
        self._has_end = False
        self._seal_index: int | None = None
        self._seal_signed = False
        self._seal_key_id: str | None = None
        self._seal_key_trusted = False
        self._seal_valid_if_trusted = True
        self._seal_payload_hash: str | None = None
        self._has_log_drop = False
        self._total_drops = 0
        self._excessive_drops_reported = False
        self._legacy_schema_reported = False
        self._withheld: list[int] = []
        # Set only in a segment worker of parallel verification (see begin_segment).
        self._segment_ids: list[int] | None = None
        self._deferred_drops: list[tuple[int, str, Any, Any]] | None = None

    # -- input -------------------------------------------------------------------------------------------------

    def add_line(self, line: bytes) -> None:
        """One JSON Lines line (raw bytes, with or without its LF). Lines holding only whitespace are skipped."""
        self._line_number += 1
        stripped = line.strip(_JSON_WHITESPACE_BYTES)
        if not stripped:
            return
        if self._violation is not None:
            self._count += 1
            return
        try:
            event, exact = self._parse(stripped)
            if type(event) is not dict:
                raise MalformedJSONError(f"an event must be a JSON object, not {_json_kind(event)}")
            payload = event.get("payload")
            if type(payload) is not dict:
                payload_jcs = None
            elif exact:
                payload_jcs = canonical_bytes(payload, exact=True)
            else:
                payload_jcs = fast_canonical_text(payload).encode("utf-8")
        except MalformedJSONError as exc:
            self._malformed(str(exc))
            return
        index = self._count
        self._count += 1
        try:
            self._check(event, payload_jcs, index)
        except _Stop:
            return

    def add_event(self, event: Any) -> None:
        """One event that is already parsed (a dict as ``json.loads`` gives it)."""
        self._line_number += 1
        if self._violation is not None:
            self._count += 1
            return
        try:
            if type(event) is not dict:
                raise MalformedJSONError(f"an event must be a JSON object, not {_json_kind(event)}")
            check_tree(event)
            payload = event.get("payload")
            payload_jcs = canonical_bytes(payload, exact=True) if type(payload) is dict else None
        except MalformedJSONError as exc:
            self._malformed(str(exc))
            return
        self._check_event(event, payload_jcs)

    def finish(self, *, source: str | None = None) -> Report:
        """The report for everything added so far. It changes nothing: more events may be added afterwards (a
        replay of an open session does that) and ``finish`` called again."""
        return build_report(self.outcome(), self._policy, source=source)

    def outcome(self) -> ChainOutcome:
        """The checks' findings before classification (used for export-claim checks)."""
        violation = self._violation
        if violation is None and self._count == 0:
            violation = Violation(codes.EMPTY_LOG, "the input holds no events")
        warnings = list(self._warnings)
        if self._withheld:
            warnings.append(
                Finding(
                    codes.PAYLOAD_WITHHELD,
                    f"{len(self._withheld)} payload(s) withheld from this export; their hashes still chain",
                    context={"sequences": list(self._withheld)},
                )
            )
        for code, count in self._warning_counts.items():
            if count > _MAX_WARNINGS_PER_TYPE:
                warnings.append(Finding(code, f"{count - _MAX_WARNINGS_PER_TYPE} more {code} warnings not listed"))
        return ChainOutcome(
            violation=violation,
            warnings=tuple(warnings),
            session_id=self._session_id,
            authority=self._authority,
            event_count=self._count,
            first_event_hash=self._first_hash,
            final_event_hash=self._last_hash,
            sealed=self._seal_index is not None,
            seal_signed=self._seal_signed,
            seal_key_id=self._seal_key_id,
            seal_key_trusted=self._seal_key_trusted,
            seal_valid_if_trusted=self._seal_valid_if_trusted,
            seal_payload_hash=self._seal_payload_hash,
            complete=self._has_end,
            has_log_drop=self._has_log_drop,
            total_drops=self._total_drops,
        )

    def use_document_keys(self, document_keys: Mapping[str, PublicKey]) -> None:
        """An export document's ``public_keys`` by id (ELS section 9): not trusted, only used to recompute the
        class the document may claim."""
        self._document_keys = dict(document_keys)

    # -- parallel verification of one file in segments (see _parallel) -------------------------------------------

    def begin_segment(self, line: bytes) -> bool:
        """Worker side: continue the chain from ``line`` as if every event before it had verified. The main process
        verifies that line itself with the real state; this only sets the state it would leave behind. Returns
        False when the line cannot be a starting point (the main process then reports what is wrong with it)."""
        self._line_number += 1
        try:
            event, _ = self._parse(line.strip(_JSON_WHITESPACE_BYTES))
        except MalformedJSONError:
            return False
        if type(event) is not dict:
            return False
        sequence_number = event.get("sequence_number")
        event_id = event.get("event_id")
        session_id = event.get("session_id")
        claimed_hash = event.get("event_hash")
        timestamp_wall = event.get("timestamp_wall")
        event_type = event.get("event_type")
        authority = event.get("chain_authority")
        if not (
            type(sequence_number) is int
            and type(event_id) is str
            and _uuid(event_id)
            and type(session_id) is str
            and type(claimed_hash) is str
            and type(timestamp_wall) is str
            and _timestamp(timestamp_wall)
            and type(event_type) is str
            and authority in rules.AUTHORITIES
        ):
            return False
        id_number = int(event_id.replace("-", ""), 16)
        self._count = sequence_number + 1
        self._session_id = session_id
        self._authority = authority
        self._last_hash = claimed_hash
        self._last_time = timestamp_wall
        self._seen_ids.add(id_number)
        self._segment_ids = [id_number]
        self._deferred_drops = []
        self._has_end = event_type == rules.SESSION_END
        self._seal_index = sequence_number if event_type == rules.CHAIN_SEAL else None
        return True

    @property
    def events_counted(self) -> int:
        """Events seen so far (for a segment worker: the first event's sequence number plus those after it)."""
        return self._count

    def segment_result(
        self, *, lines: int, events: int, first_line: bytes | None, first_line_number: int, usable: bool
    ) -> SegmentResult:
        """Worker side: what the main process needs to continue from the end of this segment."""
        return SegmentResult(
            lines=lines,
            events=events,
            first_line=first_line,
            first_line_number=first_line_number,
            usable=usable,
            violation=self._violation,
            warnings=tuple(self._warnings),
            warning_counts=dict(self._warning_counts),
            drops=tuple(self._deferred_drops or ()),
            ids=tuple(self._segment_ids or ()),
            last_hash=self._last_hash,
            last_time=self._last_time,
            has_end=self._has_end,
            seal_index=self._seal_index,
            seal_signed=self._seal_signed,
            seal_key_id=self._seal_key_id,
            seal_key_trusted=self._seal_key_trusted,
            seal_valid_if_trusted=self._seal_valid_if_trusted,
            seal_payload_hash=self._seal_payload_hash,
            has_log_drop=self._has_log_drop,
        )

    def absorb_segment(self, segment: SegmentResult) -> bool:
        """Main side: continue with a worker's segment. The segment's first line is verified here with the real
        state. Returns False when the worker's result cannot simply be taken over (it found a violation, or an
        event id repeats one of an earlier segment): the caller then verifies the whole input serially, which
        reports exactly what a serial run reports."""
        if segment.first_line is None:
            self._line_number += segment.lines
            return True
        self._line_number += segment.first_line_number - 1
        self.add_line(segment.first_line)
        remaining_lines = segment.lines - segment.first_line_number
        if self._violation is not None:  # decided here, before anything the worker saw
            self._count += segment.events - 1
            self._line_number += remaining_lines
            return True
        if (
            not segment.usable
            or segment.violation is not None
            or any(id_number in self._seen_ids for id_number in segment.ids[1:])
            or any(count > _MAX_WARNINGS_PER_TYPE for count in segment.warning_counts.values())
        ):
            return False
        first_index = self._count - 1
        listed_before = len(self._warnings)
        for warning in segment.warnings:
            if warning.type == codes.LEGACY_SCHEMA_VERSION and self._legacy_schema_reported:
                continue
            self._legacy_schema_reported |= warning.type == codes.LEGACY_SCHEMA_VERSION
            self._warn(warning.type, warning.message, warning.event_sequence, warning.event_id, **warning.context)
        for index, event_id, dropped, cumulative in segment.drops:
            self._check_drop_counts(dropped, cumulative, index, event_id)
        self._warnings[listed_before:] = sorted(
            self._warnings[listed_before:], key=lambda finding: finding.event_sequence or 0
        )
        self._seen_ids.update(segment.ids)
        self._count = first_index + segment.events
        self._line_number += remaining_lines
        self._last_hash = segment.last_hash
        self._last_time = segment.last_time
        self._has_end = self._has_end or segment.has_end
        self._has_log_drop = self._has_log_drop or segment.has_log_drop
        if segment.seal_index is not None and segment.seal_index != first_index:
            self._seal_index = segment.seal_index
            self._seal_signed = segment.seal_signed
            self._seal_key_id = segment.seal_key_id
            self._seal_key_trusted = segment.seal_key_trusted
            self._seal_valid_if_trusted = segment.seal_valid_if_trusted
            self._seal_payload_hash = segment.seal_payload_hash
        return True

    # -- findings ----------------------------------------------------------------------------------------------

    def _malformed(self, message: str) -> None:
        self._violation = Violation(
            codes.MALFORMED_JSON, message, event_sequence=self._count, context={"line": self._line_number}
        )
        self._count += 1

    def _fail(self, code: str, message: str, index: int, event_id: Any, **context: Any) -> _Stop:
        self._violation = Violation(
            code, message, event_sequence=index, event_id=event_id if type(event_id) is str else None, context=context
        )
        return _Stop()

    def _warn(self, code: str, message: str, index: int | None, event_id: str | None, **context: Any) -> None:
        count = self._warning_counts.get(code, 0) + 1
        self._warning_counts[code] = count
        if count <= _MAX_WARNINGS_PER_TYPE:
            self._warnings.append(Finding(code, message, event_sequence=index, event_id=event_id, context=context))

    # -- the checks of ELS section 7, in order -----------------------------------------------------------------

    def _check_event(self, event: dict[str, Any], payload_jcs: bytes | None) -> None:
        index = self._count
        self._count += 1
        try:
            self._check(event, payload_jcs, index)
        except _Stop:
            return

    def _check(self, event: dict[str, Any], payload_jcs: bytes | None, index: int) -> None:
        keys = event.keys()
        withheld = False
        if keys not in (_FIELDS, _FIELDS_WITH_AUTHORITY_ID):
            withheld = self._check_field_set(event, index)

        # 1. fields well-typed (table order of ELS section 1)
        event_id = event["event_id"]
        if type(event_id) is not str or not _uuid(event_id):
            raise self._invalid_field("event_id", "a canonical lowercase UUID", event_id, index, event_id)
        session_id = event["session_id"]
        if session_id != self._session_id and (type(session_id) is not str or not _uuid(session_id)):
            raise self._invalid_field("session_id", "a canonical lowercase UUID", session_id, index, event_id)
        sequence_number = event["sequence_number"]
        if type(sequence_number) is not int or not 0 <= sequence_number <= MAX_SAFE_INTEGER:
            raise self._invalid_field("sequence_number", "a non-negative integer", sequence_number, index, event_id)
        timestamp_wall = event["timestamp_wall"]
        if type(timestamp_wall) is not str or not _timestamp(timestamp_wall):
            raise self._invalid_field(
                "timestamp_wall", "an RFC 3339 UTC time ending in Z", timestamp_wall, index, event_id
            )
        monotonic = event["timestamp_monotonic"]
        if type(monotonic) is not int or not 0 <= monotonic <= MAX_SAFE_INTEGER:
            raise self._invalid_field("timestamp_monotonic", "a non-negative integer", monotonic, index, event_id)
        event_type = event["event_type"]
        if type(event_type) is not str:
            raise self._invalid_field("event_type", "a string", event_type, index, event_id)
        if type(event["source_sdk_ver"]) is not str:
            raise self._invalid_field("source_sdk_ver", "a string", event["source_sdk_ver"], index, event_id)
        schema_ver = event["schema_ver"]
        if schema_ver != rules.SCHEMA_VERSION:
            self._check_schema_version(schema_ver, index, event_id)
        payload = None if withheld else event["payload"]
        if not withheld and type(payload) is not dict:
            raise self._invalid_field("payload", "a JSON object", payload, index, event_id)
        claimed_payload_hash = event["payload_hash"]
        if type(claimed_payload_hash) is not str:
            raise self._invalid_field("payload_hash", "a string", claimed_payload_hash, index, event_id)
        prev_event_hash = event["prev_event_hash"]
        if prev_event_hash is not None and type(prev_event_hash) is not str:
            raise self._invalid_field("prev_event_hash", "a string or null", prev_event_hash, index, event_id)
        claimed_event_hash = event["event_hash"]
        if type(claimed_event_hash) is not str:
            raise self._invalid_field("event_hash", "a string", claimed_event_hash, index, event_id)
        authority = event["chain_authority"]
        if authority not in rules.AUTHORITIES or type(authority) is not str:
            raise self._invalid_field("chain_authority", '"server" or "sdk"', authority, index, event_id)
        if "authority_id" in event and type(event["authority_id"]) is not str:
            raise self._invalid_field("authority_id", "a string", event["authority_id"], index, event_id)

        # 2. session id
        if index == 0:
            self._session_id = session_id
        elif session_id != self._session_id:
            raise self._fail(
                codes.SESSION_MISMATCH,
                f"session_id {session_id} differs from the session's {self._session_id}",
                index,
                event_id,
                expected=self._session_id,
                found=session_id,
            )

        # 3. payload hash (compared as a string: any difference, letter case included, is a mismatch)
        if withheld:
            self._withheld.append(index)
        else:
            assert payload_jcs is not None  # payload is a dict, so the caller canonicalized it
            computed_payload_hash = _sha256(payload_jcs).hexdigest()
            if computed_payload_hash != claimed_payload_hash:
                raise self._fail(
                    codes.PAYLOAD_HASH_MISMATCH,
                    "payload_hash does not match the hash of the payload",
                    index,
                    event_id,
                    expected=computed_payload_hash,
                    found=claimed_payload_hash,
                )

        # 4. sequence number
        if sequence_number != index:
            raise self._fail(
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
                raise self._fail(
                    codes.INVALID_GENESIS,
                    "the first event's prev_event_hash must be null",
                    index,
                    event_id,
                    found=prev_event_hash,
                )
        elif prev_event_hash != self._last_hash:
            raise self._fail(
                codes.CHAIN_BROKEN,
                "prev_event_hash is not the previous event's event_hash",
                index,
                event_id,
                expected=self._last_hash,
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
            raise self._fail(codes.MALFORMED_JSON, "a hashed field holds a lone surrogate", index, event_id) from None
        if computed_event_hash != claimed_event_hash:
            raise self._fail(
                codes.EVENT_HASH_MISMATCH,
                "event_hash does not match the hash of the event",
                index,
                event_id,
                expected=computed_event_hash,
                found=claimed_event_hash,
            )

        # event ids are unique within the session (ELS section 1)
        id_number = int(event_id.replace("-", ""), 16)
        if id_number in self._seen_ids:
            raise self._fail(codes.DUPLICATE_EVENT_ID, f"event_id {event_id} appears twice", index, event_id)
        self._seen_ids.add(id_number)
        if self._segment_ids is not None:
            self._segment_ids.append(id_number)

        # 7. type, order, authority and seal rules
        required = rules.REQUIRED_PAYLOAD_KEYS.get(event_type)
        if required is None:
            raise self._fail(
                codes.UNKNOWN_EVENT_TYPE, f"event_type {event_type!r} is not an ELS event type", index, event_id
            )
        if payload is not None:
            for key in required:
                if key not in payload:
                    raise self._fail(
                        codes.MISSING_FIELD,
                        f"{event_type} payload lacks {key!r}",
                        index,
                        event_id,
                        field=f"payload.{key}",
                    )
        if index == 0 or self._has_end or self._seal_index is not None or event_type in _ORDER_SENSITIVE_TYPES:
            self._check_order(event_type, index, event_id)
        if index == 0:
            self._authority = authority
        elif authority != self._authority:
            raise self._fail(
                codes.MIXED_AUTHORITY,
                f"chain_authority is {authority!r} but the session's is {self._authority!r}",
                index,
                event_id,
                expected=self._authority,
                found=authority,
            )
        if event_type == rules.CHAIN_SEAL:
            self._check_seal(payload, index, event_id, session_id, claimed_payload_hash)

        # redaction (ELS section 3); the canonical bytes show every "[REDACTED]" string literally
        if payload is not None and payload_jcs is not None and _REDACTED_JSON in payload_jcs:
            unbacked = find_unbacked_redaction(payload)
            if unbacked is not None:
                raise self._fail(
                    codes.REDACTION_INTEGRITY,
                    f"{unbacked} is {rules.REDACTED} but has no sibling hash",
                    index,
                    event_id,
                    path=unbacked,
                )

        # warnings
        if event_type == rules.LOG_DROP:
            self._has_log_drop = True
            if payload is not None:
                if self._deferred_drops is None:
                    self._check_drop_counts(payload["dropped_count"], payload["cumulative_drops"], index, event_id)
                else:  # a segment worker: the running total lives in the main process
                    self._deferred_drops.append(
                        (index, event_id, payload["dropped_count"], payload["cumulative_drops"])
                    )
        # Same-length timestamps compare as strings; otherwise the fraction lengths differ and need aligning.
        last_time = self._last_time
        if last_time is not None and (
            timestamp_wall < last_time
            if len(timestamp_wall) == len(last_time)
            else _time_key(timestamp_wall) < _time_key(last_time)
        ):
            self._warn(
                codes.TIMESTAMP_ANOMALY,
                "timestamp_wall is earlier than the previous event's",
                index,
                event_id,
                timestamp_wall=timestamp_wall,
            )
        self._last_time = timestamp_wall

        if index == 0:
            self._first_hash = claimed_event_hash
        self._last_hash = claimed_event_hash

    def _invalid_field(self, name: str, expected: str, value: Any, index: int, event_id: Any) -> _Stop:
        return self._fail(
            codes.INVALID_FIELD,
            f"{name} must be {expected}, found {_describe(value)}",
            index,
            event_id,
            field=name,
        )

    def _check_field_set(self, event: dict[str, Any], index: int) -> bool:
        """Missing, then unknown fields; returns whether the payload is withheld (export documents only)."""
        event_id = event.get("event_id")
        if rules.WITHHELD_MARK in event and not self._allow_withheld:
            raise self._fail(
                codes.UNKNOWN_FIELD,
                f"{rules.WITHHELD_MARK!r} is only allowed in an export document",
                index,
                event_id,
                field=rules.WITHHELD_MARK,
            )
        withheld = rules.WITHHELD_MARK in event
        if withheld:
            if event[rules.WITHHELD_MARK] is not True:
                raise self._invalid_field(rules.WITHHELD_MARK, "true", event[rules.WITHHELD_MARK], index, event_id)
            if "payload" in event:
                raise self._fail(
                    codes.INVALID_FIELD,
                    "an event marked payload_withheld must not carry a payload",
                    index,
                    event_id,
                    field="payload",
                )
        for name in rules.ENVELOPE_FIELDS:
            if name not in event and not (withheld and name == "payload"):
                raise self._fail(codes.MISSING_FIELD, f"missing field {name!r}", index, event_id, field=name)
        for name in event:
            if name not in _KNOWN_FIELDS:
                raise self._fail(codes.UNKNOWN_FIELD, f"unknown field {name!r}", index, event_id, field=name)
        return withheld

    def _check_schema_version(self, schema_ver: Any, index: int, event_id: str) -> None:
        if schema_ver == rules.LEGACY_SCHEMA_VERSION:
            if not self._legacy_schema_reported:
                self._legacy_schema_reported = True
                self._warn(codes.LEGACY_SCHEMA_VERSION, "schema_ver v0.5 read as legacy v0.6", index, event_id)
            return
        raise self._fail(
            codes.SCHEMA_VERSION_MISMATCH,
            f"schema_ver is {_describe(schema_ver)}, expected {rules.SCHEMA_VERSION!r}",
            index,
            event_id,
            found=schema_ver if type(schema_ver) is str else None,
        )

    def _check_order(self, event_type: str, index: int, event_id: str) -> None:
        # ELS section 3 order rules.
        problem = None
        if self._seal_index is not None:
            problem = f"{event_type} follows the CHAIN_SEAL at sequence {self._seal_index}"
        elif index == 0 and event_type != rules.SESSION_START:
            problem = f"the first event is {event_type}, not SESSION_START"
        elif index > 0 and event_type == rules.SESSION_START:
            problem = "a second SESSION_START"
        elif self._has_end and event_type != rules.CHAIN_SEAL:
            problem = f"{event_type} follows SESSION_END"
        if problem is not None:
            raise self._fail(codes.ORDER_VIOLATION, problem, index, event_id)
        if event_type == rules.SESSION_END:
            self._has_end = True

    def _check_seal(
        self, payload: dict[str, Any] | None, index: int, event_id: str, session_id: str, claimed_hash: str
    ) -> None:
        # ELS section 5.
        if payload is None:
            raise self._fail(
                codes.INVALID_SEAL, "the CHAIN_SEAL payload is withheld, so it cannot be checked", index, event_id
            )
        final_event_hash = self._last_hash
        if "signature" not in payload:
            missing = [key for key in rules.LEGACY_SEAL_KEYS if key not in payload]
            if missing:
                raise self._fail(
                    codes.INVALID_SEAL, f"unsigned seal lacks {', '.join(missing)}", index, event_id, missing=missing
                )
            mismatched = []
            if payload["session_digest"] != rules.DIGEST_PREFIX + str(final_event_hash):
                mismatched.append("session_digest")
            if "final_event_hash" in payload and payload["final_event_hash"] != final_event_hash:
                mismatched.append("final_event_hash")
            count = payload.get("event_count", index)
            if type(count) is not int or count != index:
                mismatched.append("event_count")
            if mismatched:
                self._warn(
                    codes.LEGACY_SEAL_MISMATCH,
                    f"unsigned legacy seal: {', '.join(mismatched)} not matching the chain",
                    index,
                    event_id,
                    fields=mismatched,
                )
            self._seal_index = index
            self._seal_payload_hash = claimed_hash
            return

        missing = [key for key in rules.SIGNED_SEAL_KEYS if key not in payload]
        if missing:
            raise self._fail(
                codes.INVALID_SEAL, f"signed seal lacks {', '.join(missing)}", index, event_id, missing=missing
            )
        problems = []
        if type(payload["ingestion_service_id"]) is not str or not payload["ingestion_service_id"]:
            problems.append("ingestion_service_id is not a non-empty string")
        if type(payload["seal_timestamp"]) is not str or not _timestamp(payload["seal_timestamp"]):
            problems.append("seal_timestamp is not an RFC 3339 UTC time")
        if type(payload["event_count"]) is not int or payload["event_count"] != index:
            problems.append(f"event_count is {_describe(payload['event_count'])}, the chain has {index}")
        if payload["final_event_hash"] != final_event_hash:
            problems.append("final_event_hash is not the previous event's event_hash")
        if payload["session_digest"] != rules.DIGEST_PREFIX + str(final_event_hash):
            problems.append("session_digest is not 'sha256:' + final_event_hash")
        if payload["signature_algorithm"] != rules.SIGNATURE_ALGORITHM:
            problems.append(f"signature_algorithm is not {rules.SIGNATURE_ALGORITHM}")
        key_id = payload["signer_key_id"]
        if type(key_id) is not str or not rules.KEY_ID.fullmatch(key_id):
            problems.append("signer_key_id is not 'sha256:' + 64 lowercase hex digits")
        signature = _decode_signature(payload["signature"])
        if signature is None:
            problems.append("signature is not padded standard base64")
        if problems:
            raise self._fail(codes.INVALID_SEAL, "; ".join(problems), index, event_id, problems=problems)
        assert signature is not None

        self._seal_index = index
        self._seal_signed = True
        self._seal_key_id = key_id
        self._seal_payload_hash = claimed_hash
        message = seal_signed_bytes(session_id, event_id, payload)
        key = self._trust.get(key_id) if self._trust is not None else None
        if key is None:
            listed = self._document_keys.get(key_id)
            if listed is not None:
                self._seal_valid_if_trusted = verify_signature(listed, message, signature)
            return
        if not verify_signature(key, message, signature):
            raise self._fail(
                codes.INVALID_SIGNATURE,
                f"the seal's signature does not verify under trusted key {key_id}",
                index,
                event_id,
                signer_key_id=key_id,
            )
        self._seal_key_trusted = True

    def _check_drop_counts(self, dropped: Any, cumulative: Any, index: int, event_id: str) -> None:
        if type(dropped) is not int or dropped < 1:
            self._warn(codes.INVALID_DROP_COUNT, "dropped_count is not an integer >= 1", index, event_id)
            dropped = 0
        self._total_drops += dropped
        if type(cumulative) is not int or cumulative < self._total_drops:
            self._warn(
                codes.INVALID_DROP_COUNT,
                "cumulative_drops is not an integer at least the drops recorded so far",
                index,
                event_id,
                total_so_far=self._total_drops,
            )
        elif cumulative > rules.EXCESSIVE_DROPS:
            self._report_excessive_drops(cumulative, index, event_id)
        if self._total_drops > rules.EXCESSIVE_DROPS:
            self._report_excessive_drops(self._total_drops, index, event_id)

    def _report_excessive_drops(self, dropped: int, index: int, event_id: str) -> None:
        if not self._excessive_drops_reported:
            self._excessive_drops_reported = True
            self._warn(
                codes.EXCESSIVE_CUMULATIVE_DROPS,
                f"{dropped} events dropped (more than {rules.EXCESSIVE_DROPS})",
                index,
                event_id,
                dropped=dropped,
            )


def find_unbacked_redaction(payload: dict[str, Any]) -> str | None:
    """The JSON Pointer of the first ``"[REDACTED]"`` value with no string ``<key>_hash`` sibling, or None.

    A redacted array element has no key and so no sibling: it is always unbacked (ELS section 3)."""
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        node, path = stack.pop()
        if type(node) is dict:
            for key, value in node.items():
                pointer = f"{path}/{_pointer_token(key)}"
                if value == rules.REDACTED and type(value) is str:
                    if type(node.get(key + rules.REDACTION_HASH_SUFFIX)) is not str:
                        return pointer
                elif type(value) in (dict, list):
                    stack.append((value, pointer))
        elif type(node) is list:
            for position, value in enumerate(node):
                pointer = f"{path}/{position}"
                if value == rules.REDACTED and type(value) is str:
                    return pointer
                if type(value) in (dict, list):
                    stack.append((value, pointer))
    return None


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _decode_signature(value: Any) -> bytes | None:
    if type(value) is not str or not value.isascii():
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Only the one padded standard encoding of these bytes is accepted.
    return decoded if base64.b64encode(decoded).decode("ascii") == value and decoded else None


def _time_key(timestamp: str) -> tuple[str, str]:
    # Comparable form of a validated timestamp: the fixed-width seconds part, then the fraction digits without
    # trailing zeros (digit strings compare as decimal fractions).
    return timestamp[:19], timestamp[20:-1].rstrip("0") if timestamp[19] == "." else ""


def _describe(value: Any) -> str:
    if type(value) is str:
        shown = value if len(value) <= 80 else value[:77] + "..."
        return repr(shown)
    if value is None or type(value) in (bool, int, float):
        return f"{_json_kind(value)} {value!r}"
    return _json_kind(value)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is int:
        return "an integer"
    if type(value) is float:
        return "a number with a fraction or exponent"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


def build_report(
    outcome: ChainOutcome,
    policy: Policy,
    *,
    claim_violation: Violation | None = None,
    source: str | None = None,
) -> Report:
    """Classify (ELS section 6), apply the policy (section 7) and assemble the report."""
    violation = outcome.violation or claim_violation
    reasons: tuple[str, ...] = ()
    if violation is not None:
        evidence_class = codes.NON_AUTHORITATIVE_EVIDENCE
    else:
        evidence_class, reasons = classify(outcome, accept_unsigned_seals=policy.accept_unsigned_seals)
        violation = _policy_violation(outcome, evidence_class, reasons, policy)
        if violation is not None:
            evidence_class, reasons = codes.NON_AUTHORITATIVE_EVIDENCE, ()
    passed = violation is None
    return Report(
        session_id=outcome.session_id,
        status=codes.PASS if passed else codes.FAIL,
        evidence_class=evidence_class,
        partial_reasons=reasons,
        authority=outcome.authority,
        sealed=outcome.sealed,
        seal_signed=outcome.seal_signed,
        seal_key_id=outcome.seal_key_id,
        seal_key_trusted=outcome.seal_key_trusted,
        complete=outcome.complete,
        event_count=outcome.event_count,
        total_drops=outcome.total_drops,
        first_event_hash=outcome.first_event_hash,
        final_event_hash=outcome.final_event_hash,
        replay_fingerprint=outcome.final_event_hash if passed else None,
        violations=(violation,) if violation is not None else (),
        warnings=outcome.warnings,
        verifier_version=VERIFIER_VERSION,
        spec_version=SPEC_VERSION,
        source=source,
    )


def classify(
    outcome: ChainOutcome, *, accept_unsigned_seals: bool, assume_key_trusted: bool = False
) -> tuple[str, tuple[str, ...]]:
    """ELS section 6 for a chain that passed every check: the class and its partial reasons.

    ``assume_key_trusted`` recomputes the class as an export document may claim it (ELS section 9)."""
    if outcome.authority != rules.SERVER:
        return codes.NON_AUTHORITATIVE_EVIDENCE, ()
    reasons = []
    if not outcome.sealed:
        reasons.append(codes.UNSEALED_SESSION)
    elif not outcome.seal_signed:
        if not accept_unsigned_seals:
            reasons.append(codes.UNSIGNED_SEAL)
    elif assume_key_trusted:
        if not outcome.seal_valid_if_trusted:
            return codes.NON_AUTHORITATIVE_EVIDENCE, ()
    elif not outcome.seal_key_trusted:
        reasons.append(codes.UNTRUSTED_SEAL_KEY)
    if not outcome.complete:
        reasons.append(codes.MISSING_SESSION_END)
    if outcome.has_log_drop:
        reasons.append(codes.LOG_DROP_PRESENT)
    if reasons:
        return codes.PARTIAL_AUTHORITATIVE_EVIDENCE, tuple(reasons)
    return codes.AUTHORITATIVE_EVIDENCE, ()


def _policy_violation(
    outcome: ChainOutcome, evidence_class: str, reasons: tuple[str, ...], policy: Policy
) -> Violation | None:
    if policy.reject_local_authority and outcome.authority == rules.SDK:
        return Violation(
            codes.POLICY_VIOLATION,
            "local-authority (sdk) session rejected by --reject-local-authority",
            context={"policy": "reject_local_authority"},
        )
    if policy.require_authoritative and evidence_class != codes.AUTHORITATIVE_EVIDENCE:
        detail = f" ({', '.join(reasons)})" if reasons else ""
        return Violation(
            codes.POLICY_VIOLATION,
            f"evidence class {evidence_class}{detail} does not meet --require-authoritative",
            context={
                "policy": "require_authoritative",
                "evidence_class": evidence_class,
                "partial_reasons": list(reasons),
            },
        )
    return None
