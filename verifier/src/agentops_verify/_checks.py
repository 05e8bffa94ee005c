"""Checks 2 to 7 of ELS section 7, in the order the spec gives, over the state one session's chain has built.

``check_envelope`` checks one event whose envelope passed check 1 (``_envelope``) against the chain's state
(``_state``) and advances it. A violation is recorded in the state and ends checking (``Stop``). No I/O and no
parsing: ``ChainVerifier`` reads the input and calls these.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._envelope import Envelope
from ._redaction import find_unbacked_redaction
from ._seal import SealEvent, SealProblem, check_seal
from ._state import ChainState, CheckOptions

_ORDER_SENSITIVE_TYPES = frozenset({rules.SESSION_START, rules.SESSION_END, rules.CHAIN_SEAL})
_REDACTED_JSON = b'"' + rules.REDACTED.encode("ascii") + b'"'
_REQUIRED_PAYLOAD_KEYS = rules.REQUIRED_PAYLOAD_KEYS

_sha256 = hashlib.sha256


def check_envelope(
    state: ChainState, options: CheckOptions, envelope: Envelope, payload_jcs: bytes | None, index: int
) -> None:
    """Checks 2 to 7 of ELS section 7 for the event at position ``index``, whose envelope passed check 1
    (``_envelope``); ``payload_jcs`` is its payload's canonical bytes (None when withheld). Raises ``Stop`` after
    recording the first violation."""
    (
        event_id,
        session_id,
        sequence_number,
        timestamp_wall,
        event_type,
        payload,
        claimed_payload_hash,
        prev_event_hash,
        claimed_event_hash,
        authority,
    ) = envelope
    withheld = payload is None

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
    # computed hex digest, so only an unknown event_type and a withheld event's unchecked payload_hash need escaping.
    if withheld or event_type not in _REQUIRED_PAYLOAD_KEYS:
        type_text, payload_hash_text = (
            encode_basestring(event_type)[1:-1],
            encode_basestring(claimed_payload_hash)[1:-1],
        )
    else:
        type_text, payload_hash_text = event_type, claimed_payload_hash
    prev_json = "null" if prev_event_hash is None else f'"{prev_event_hash}"'
    hashed_text = (
        f'{{"event_id":"{event_id}","event_type":"{type_text}","payload_hash":"{payload_hash_text}",'
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
    required = _REQUIRED_PAYLOAD_KEYS.get(event_type)
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
    if event_type in _ORDER_SENSITIVE_TYPES or index == 0 or state.has_end or state.seal.sealed:
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
    if payload is not None and payload_jcs is not None and payload_jcs.find(_REDACTED_JSON) >= 0:
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
