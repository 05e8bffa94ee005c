"""The hashing rules of ELS sections 2 and 5: the only implementation in the repository.

The SDK (local authority mode), the ingestion service and the sealer build chains with these functions; the
verifier checks chains with them. Keep them pure: values in, hex digests or bytes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ._jcs import ObjectTemplate, canonicalize
from ._rules import SEAL_SUMMARY_KEYS, SPEC_VERSION

# ELS section 2: exactly these seven keys are hashed into event_hash, prev_event_hash present even when null.
EVENT_HASH_FIELDS = (
    "event_id",
    "session_id",
    "sequence_number",
    "timestamp_wall",
    "event_type",
    "payload_hash",
    "prev_event_hash",
)


_EVENT_HASH_INPUT = ObjectTemplate(EVENT_HASH_FIELDS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_hash(payload: Any) -> str:
    """ELS section 2: hex(SHA-256(JCS(payload)))."""
    return sha256_hex(canonicalize(payload))


def event_hash(event: Mapping[str, Any]) -> str:
    """ELS section 2: hex(SHA-256(JCS of the seven hashed envelope fields))."""
    return event_hash_of_members({name: canonicalize(event[name]) for name in EVENT_HASH_FIELDS})


def event_hash_of_members(member_values: Mapping[str, bytes]) -> str:
    """``event_hash`` from the canonical bytes of each envelope member's value, for writers that put the same bytes
    into the event's line (``ObjectTemplate``); members that are not hashed are ignored."""
    return sha256_hex(_EVENT_HASH_INPUT.fill(member_values))


def seal_signed_bytes(session_id: str, seal_event_id: str, seal_payload: Mapping[str, Any]) -> bytes:
    """ELS section 5: the exact bytes a CHAIN_SEAL signature covers, the seal event's own ``event_id`` included
    (rev 2), so a seal's event cannot be re-identified and re-hashed under the same signature."""
    signed = {name: seal_payload[name] for name in SEAL_SUMMARY_KEYS}
    signed["spec_version"] = SPEC_VERSION
    signed["session_id"] = session_id
    signed["seal_event_id"] = seal_event_id
    return canonicalize(signed)


def chain_event(
    *,
    event_id: str,
    session_id: str,
    sequence_number: int,
    timestamp_wall: str,
    event_type: str,
    payload: Mapping[str, Any],
    prev_event_hash: str | None,
    chain_authority: str,
    timestamp_monotonic: int = 0,
    source_sdk_ver: str = "unknown",
    schema_ver: str = SPEC_VERSION,
    authority_id: str | None = None,
) -> dict[str, Any]:
    """Build a complete ELS section 1 envelope with its payload hash and event hash computed."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "session_id": session_id,
        "sequence_number": sequence_number,
        "timestamp_wall": timestamp_wall,
        "timestamp_monotonic": timestamp_monotonic,
        "event_type": event_type,
        "source_sdk_ver": source_sdk_ver,
        "schema_ver": schema_ver,
        "payload": dict(payload),
        "payload_hash": payload_hash(payload),
        "prev_event_hash": prev_event_hash,
        "chain_authority": chain_authority,
    }
    if authority_id is not None:
        event["authority_id"] = authority_id
    event["event_hash"] = event_hash(event)
    return event
