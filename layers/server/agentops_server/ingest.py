"""The append use case: validate a batch, chain it under server authority, store it with one conditional write.

Pure core: storage, time and the deployment id come in; no AWS, no HTTP. Decision order after validation (see
``agentops_server.validation`` for the request-only checks), every step before the first write:

1. payload canonical forms: a "[REDACTED]" value without its ``<key>_hash`` sibling -> VALIDATION_ERROR (the
   verifier would fail the chain, REDACTION_INTEGRITY); a client ``payload_hash`` that differs -> PAYLOAD_HASH_MISMATCH
2. the head's owner and status (``ChainStore.head_status``): another principal's session -> FORBIDDEN; a SEALED
   session -> SESSION_SEALED (an identical retry of a batch still stored gets its original answer), decided before any
   batch item is read, since a sealed session's batch items expire from the table;
   then the authoritative end of the chain (``ChainStore.tip``; the head item is only a cache):
   no tail and no session -> the batch must open the session (INVALID_FIRST_EVENT);
   another principal's chain -> FORBIDDEN;
   first sequence already stored -> idempotent retry (same request digest and owner: the original 200) or 409;
   sealed -> SESSION_SEALED; ended -> SESSION_ENDED; not the next sequence number -> SEQUENCE_CONFLICT
3. chaining; an event whose canonical form exceeds 256 KiB -> PAYLOAD_TOO_LARGE; a batch that would take the session
   past the deployment's cap on events or canonical bytes (``SessionLimits``; the bytes so far are kept on every
   batch item, read from the tip) -> SESSION_TOO_LARGE
4. an event id the session already holds -> DUPLICATE_EVENT_ID
5. ``create_session`` (first batch) and ``put_batch``: the conditional write decides every race. A lost race is
   answered like step 2 from a fresh tail; then ``advance_head`` folds the batch into the cached head.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from agentops_verify import (
    ENVELOPE_FIELDS,
    OPTIONAL_FIELDS,
    PRODUCER_FIELDS,
    SPEC_VERSION,
    ObjectTemplate,
    canonicalize,
    event_hash_of_members,
    sha256_hex,
)

from agentops_server.clock import Clock
from agentops_server.config import DEFAULT_MAX_SESSION_BYTES, DEFAULT_MAX_SESSION_EVENTS
from agentops_server.errors import ApiError
from agentops_server.event_schema import ENVELOPE_DEFAULTS
from agentops_server.limits import MAX_EVENT_BYTES
from agentops_server.metrics import EVENTS_ACCEPTED, NO_METRICS, MetricsRecorder
from agentops_server.redaction import reject_unbacked_redaction
from agentops_server.store import (
    STATUS_ENDED,
    STATUS_OPEN,
    STATUS_SEALED,
    STATUS_SEALING,
    ChainStore,
    ChainTip,
    SequenceConflictError,
    SessionExistsError,
    StoredBatch,
)
from agentops_server.validation import CLIENT_EVENT_TYPES, ValidatedBatch, validate_batch

CHAIN_AUTHORITY = "server"  # ELS section 4: this service is the chain authority


# ELS section 1: every envelope member, authority_id included (this service always names itself).
_LINE = ObjectTemplate((*ENVELOPE_FIELDS, *OPTIONAL_FIELDS))
# What identifies a request's events for idempotent retries: the client's envelope values with defaults applied and
# the payload through its hash; not where the events land in the chain.
_REQUEST = ObjectTemplate((*(field for field in PRODUCER_FIELDS if field != "payload"), "payload_hash"))


# Canonical bytes of the member values that come from a closed set (event types, the schema version), written once.
_CONSTANT_MEMBERS = {value: canonicalize(value) for value in (*CLIENT_EVENT_TYPES, SPEC_VERSION)}

# A prepared event: the canonical bytes of each envelope member's value (``canonicalize``), the payload's included;
# the chain fields are added while chaining. The event hash and the stored line are both filled from these bytes.
_Members = dict[str, bytes]


@dataclass(frozen=True)
class SessionLimits:
    """The deployment's cap on one session (template parameters ``MaxSessionEvents`` and ``MaxSessionBytes``)."""

    max_events: int = DEFAULT_MAX_SESSION_EVENTS
    max_bytes: int = DEFAULT_MAX_SESSION_BYTES  # canonical bytes: every stored line plus its LF, as archived


class IngestService:
    def __init__(
        self,
        store: ChainStore,
        clock: Clock,
        service_id: str,
        limits: SessionLimits = SessionLimits(),
        metrics: MetricsRecorder = NO_METRICS,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._limits = limits
        # ELS section 4: the same two authority members on every event this service chains.
        self._authority_members = {
            "chain_authority": canonicalize(CHAIN_AUTHORITY),
            "authority_id": canonicalize(service_id),
        }

    def append(self, session_id: str, caller: str, body: bytes | str) -> dict[str, Any]:
        """Append the batch in ``body`` for ``caller``; return the API.md 200 body or raise ``ApiError``."""
        batch = validate_batch(body, session_id)
        prepared = _prepare(batch)
        digest = _request_digest(prepared)
        event_ids = tuple(event["event_id"] for event in batch.events)
        store = self._store

        head = store.head_status(session_id)
        if head is not None:
            if head.owner != caller:
                raise _forbidden()
            if head.status == STATUS_SEALED:
                # Decided on the head alone: a sealed session's batch items expire from the table (TTL), and what is
                # left of them must never let an append through. Only an identical retry gets its original answer.
                return self._sealed(session_id, batch.first_sequence, digest, caller)
        tip = store.tip(session_id)
        new_session = False
        if tip is None:
            if head is None:
                if batch.first_sequence != 0:
                    raise ApiError(
                        "INVALID_FIRST_EVENT",
                        "A new session starts at sequence 0 with SESSION_START.",
                        {"event_index": 0, "field": "sequence_number", "expected": 0},
                    )
                new_session = True
            elif batch.first_sequence != 0:
                raise _sequence_conflict(0, None, STATUS_OPEN)
            previous_hash = None
        else:
            if tip.owner != caller:
                raise _forbidden()
            expected = tip.last_sequence + 1
            if batch.first_sequence < expected:
                return self._replay_or_conflict(session_id, batch.first_sequence, digest, caller)
            if batch.first_sequence > expected or tip.is_seal or tip.ends_session:
                raise self._conflict(tip)
            previous_hash = tip.last_event_hash

        lines, event_hashes = _chain(prepared, previous_hash, self._authority_members)
        session_bytes = self._within_limits(batch.first_sequence, 0 if tip is None else tip.session_bytes, lines)
        if tip is not None:
            used = store.used_event_ids(session_id, event_ids, known_next_sequence=batch.first_sequence)
            if used:
                index = next(i for i, event_id in enumerate(event_ids) if event_id in used)
                raise ApiError(
                    "DUPLICATE_EVENT_ID",
                    f"Event {index} reuses an event id already stored in this session.",
                    {"event_index": index, "field": "event_id", "value": event_ids[index]},
                )

        now = self._clock.now()
        if new_session:
            try:
                store.create_session(session_id, caller, now, agent_id=_agent_id(batch))
            except SessionExistsError as exc:  # another first batch raced us
                if exc.owner != caller:
                    raise _forbidden() from exc
        stored = StoredBatch(
            session_id=session_id,
            first_sequence=batch.first_sequence,
            lines=lines,
            event_ids=event_ids,
            event_hashes=event_hashes,
            owner=caller,
            request_digest=digest,
            accepted_at=now,
            ends_session=batch.ends_session,
            session_bytes=session_bytes,
        )
        try:
            store.put_batch(stored)
        except SequenceConflictError:
            return self._replay_or_conflict(session_id, batch.first_sequence, digest, caller)
        store.advance_head(stored)
        self._metrics.record(EVENTS_ACCEPTED, len(lines))  # newly stored only: a retry's answer counts nothing
        return accepted_body(stored)

    def _within_limits(self, session_events: int, session_bytes: int, lines: tuple[bytes, ...]) -> int:
        """The session's canonical bytes once ``lines`` are stored; SESSION_TOO_LARGE past the deployment's cap."""
        limits = self._limits
        bytes_after = session_bytes + sum(len(line) + 1 for line in lines)
        if session_events + len(lines) > limits.max_events or bytes_after > limits.max_bytes:
            raise ApiError(
                "SESSION_TOO_LARGE",
                "The batch would take the session past this deployment's cap on one session's size.",
                {
                    "limit_events": limits.max_events,
                    "limit_bytes": limits.max_bytes,
                    "session_events": session_events,
                    "session_bytes": session_bytes,
                    "batch_events": len(lines),
                    "batch_bytes": bytes_after - session_bytes,
                },
            )
        return bytes_after

    def _replay_or_conflict(self, session_id: str, first_sequence: int, digest: str, caller: str) -> dict[str, Any]:
        """The first sequence is taken: an identical retry gets the original answer, anything else a 409."""
        stored = self._store.get_batch(session_id, first_sequence)
        if stored is not None and stored.request_digest == digest and stored.owner == caller:
            # A retry after a lost response or a crash: finish the fold the first attempt may not have done.
            self._store.advance_head(stored)
            return accepted_body(stored)
        tip = self._store.tip(session_id)
        if tip is None:  # only a batch at first_sequence sends us here, and batches are never deleted
            raise _sequence_conflict(0, None, STATUS_OPEN)
        if tip.owner != caller:
            raise _forbidden()
        raise self._conflict(tip)

    def _sealed(self, session_id: str, first_sequence: int, digest: str, caller: str) -> dict[str, Any]:
        """A SEALED head: the original answer to an identical retry whose batch is still stored, else 409."""
        stored = self._store.get_batch(session_id, first_sequence)
        if stored is not None and stored.request_digest == digest and stored.owner == caller:
            return accepted_body(stored)
        head = self._store.get_head(session_id)
        details = _head_details(
            0 if head is None else head.next_sequence_number,
            None if head is None else head.last_event_hash,
            STATUS_SEALED,
        )
        raise ApiError("SESSION_SEALED", "The session is sealed; it accepts no more events.", details)

    def _conflict(self, tip: ChainTip) -> ApiError:
        """The 409 that describes a session whose chain ends at ``tip``."""
        next_sequence = tip.last_sequence + 1
        if tip.is_seal:
            head = self._store.get_head(tip.session_id)
            status = STATUS_SEALED if head is not None and head.status == STATUS_SEALED else STATUS_SEALING
            details = _head_details(next_sequence, tip.last_event_hash, status)
            return ApiError("SESSION_SEALED", "The session is sealed; it accepts no more events.", details)
        if tip.ends_session:
            # No repair here even if a crash left the end unrecorded in the head: a 4xx writes nothing (API.md).
            # The sealer finds such a session when its idle deadline passes and reads the end from the tip.
            details = _head_details(next_sequence, tip.last_event_hash, STATUS_ENDED)
            return ApiError("SESSION_ENDED", "The session has ended; it accepts no more events.", details)
        return _sequence_conflict(next_sequence, tip.last_event_hash, STATUS_OPEN)


def accepted_body(batch: StoredBatch) -> dict[str, Any]:
    """The API.md 200 body, computed from the stored batch alone so a retry gets exactly the original answer."""
    return {
        "session_id": batch.session_id,
        "accepted": len(batch.lines),
        "events": [
            {"sequence_number": sequence_number, "event_id": event_id, "event_hash": event_hash_}
            for sequence_number, event_id, event_hash_ in zip(
                range(batch.first_sequence, batch.last_sequence + 1), batch.event_ids, batch.event_hashes, strict=True
            )
        ],
        "head": _head_details(
            batch.last_sequence + 1, batch.last_event_hash, STATUS_ENDED if batch.ends_session else STATUS_OPEN
        )["head"],
    }


def _prepare(batch: ValidatedBatch) -> list[_Members]:
    prepared = []
    session_member = canonicalize(batch.session_id)
    constant = _CONSTANT_MEMBERS
    defaults = ENVELOPE_DEFAULTS
    for index, (event, payload_bytes) in enumerate(zip(batch.events, batch.payloads, strict=True)):
        reject_unbacked_redaction(index, event["payload"], payload_bytes)
        payload_hash = sha256_hex(payload_bytes)  # ELS section 2: hex(SHA-256(JCS(payload)))
        claimed = event.get("payload_hash")
        if claimed is not None and claimed != payload_hash:
            raise ApiError(
                "PAYLOAD_HASH_MISMATCH",
                f"Event {index} carries a payload_hash that differs from the service's computation.",
                {"event_index": index, "field": "payload_hash", "expected": payload_hash},
            )
        members = {
            "event_id": canonicalize(event["event_id"]),
            "session_id": session_member,
            "sequence_number": canonicalize(event["sequence_number"]),
            "timestamp_wall": canonicalize(event["timestamp_wall"]),
            "timestamp_monotonic": canonicalize(event.get("timestamp_monotonic", defaults["timestamp_monotonic"])),
            "event_type": constant[event["event_type"]],
            "source_sdk_ver": canonicalize(event.get("source_sdk_ver", defaults["source_sdk_ver"])),
            "schema_ver": constant[event.get("schema_ver", defaults["schema_ver"])],
            "payload": payload_bytes,
            "payload_hash": canonicalize(payload_hash),
        }
        prepared.append(members)
    return prepared


def _agent_id(batch: ValidatedBatch) -> str | None:
    """The opening batch's SESSION_START ``agent_id`` (validation requires it), recorded in the head for listing."""
    agent_id = batch.events[0]["payload"].get("agent_id")
    return agent_id if isinstance(agent_id, str) else None


def _request_digest(prepared: list[_Members]) -> str:
    """Identifies a request's events (with defaults applied) independently of where they land in the chain: an
    idempotency key, not evidence. The hashed text is the JSON array of each event's request members."""
    return hashlib.sha256(b"[" + b",".join([_REQUEST.fill(members) for members in prepared]) + b"]").hexdigest()


def _chain(
    prepared: list[_Members], previous_hash: str | None, authority_members: _Members
) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
    """ELS sections 2 and 4: link each event to the previous one and return the canonical lines and hashes."""
    lines = []
    hashes = []
    previous_member = canonicalize(previous_hash)  # each event's prev_event_hash is the previous event's event_hash
    for index, members in enumerate(prepared):  # prepared for this one call: completed in place
        members["prev_event_hash"] = previous_member
        members.update(authority_members)
        previous_hash = event_hash_of_members(members)
        members["event_hash"] = previous_member = canonicalize(previous_hash)
        line = _LINE.fill(members)
        if len(line) > MAX_EVENT_BYTES:
            raise ApiError(
                "PAYLOAD_TOO_LARGE",
                f"Event {index} is {len(line)} bytes in canonical form; the limit is {MAX_EVENT_BYTES}.",
                {"event_index": index, "limit_bytes": MAX_EVENT_BYTES, "event_bytes": len(line)},
            )
        lines.append(line)
        hashes.append(previous_hash)
    return tuple(lines), tuple(hashes)


def _head_details(next_sequence: int, last_event_hash: str | None, status: str) -> dict[str, Any]:
    return {"head": {"next_sequence_number": next_sequence, "last_event_hash": last_event_hash, "status": status}}


def _sequence_conflict(next_sequence: int, last_event_hash: str | None, status: str) -> ApiError:
    return ApiError(
        "SEQUENCE_CONFLICT",
        f"The batch does not start at the session's next sequence number ({next_sequence}).",
        _head_details(next_sequence, last_event_hash, status),
    )


def _forbidden() -> ApiError:
    return ApiError("FORBIDDEN", "The session belongs to another principal.")
