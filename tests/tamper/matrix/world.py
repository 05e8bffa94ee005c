"""The genuine evidence every matrix case starts from, built once per test run.

``current`` is the deployment's seal key (the auditor trusts it), ``rotated_out`` the key it replaced, ``attacker``
a key the attacker controls. ``sealed`` is a complete, signed session of 7 events plus its seal; ``other`` is a
second genuine session sealed by the same key.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from agentops_verify import chain_event

from tests.support.chains import Event, build_chain, format_timestamp, ordinary_payload, reseal
from tests.support.keys import TestSigner, make_signer

SESSION_ID = "6c1b0a7e-3d55-4f0e-9a41-0c2f5e8d9b10"
OTHER_SESSION_ID = "0a9e8d7c-6b5a-4e3d-8c1b-2a3f4e5d6c7b"
# Seal at sequence 7: 0 SESSION_START, 1-5 ordinary (2 holds non-ASCII text), 6 SESSION_END.
N_EVENTS = 7
SEAL = N_EVENTS


def payloads_with_unicode(sequence_number: int) -> tuple[str, dict[str, Any]]:
    if sequence_number == 2:
        # Non-ASCII, astral and U+2028 characters: re-serializing them with \\u escapes must change nothing.
        return "MODEL_RESPONSE", {"model": "m-1", "content": "naïve café ✓ 😀 \u2028 done", "usage": {"tokens": 9}}
    return ordinary_payload(sequence_number)


@dataclass(frozen=True)
class World:
    current: TestSigner
    rotated_out: TestSigner
    attacker: TestSigner
    sealed: list[Event]  # signed by ``current``
    sealed_by_rotated_out: list[Event]  # the same events, sealed by the key used before the rotation
    other: list[Event]  # another session, signed by ``current``
    unsealed_sdk: list[Event]  # local authority, no seal
    with_log_drop: list[Event]  # signed by ``current``; sequence 3 is a LOG_DROP

    def chain(self) -> list[Event]:
        return copy.deepcopy(self.sealed)


@functools.cache
def world() -> World:
    current, rotated_out, attacker = make_signer(), make_signer(), make_signer()
    sealed = build_chain(N_EVENTS, session_id=SESSION_ID, signer=current, payload_factory=payloads_with_unicode)

    def with_drop(sequence_number: int) -> tuple[str, dict[str, Any]]:
        if sequence_number == 3:
            return "LOG_DROP", {"dropped_count": 2, "cumulative_drops": 2, "drop_reason": "BUFFER_FULL"}
        return ordinary_payload(sequence_number)

    return World(
        current=current,
        rotated_out=rotated_out,
        attacker=attacker,
        sealed=sealed,
        sealed_by_rotated_out=reseal(sealed, rotated_out),
        other=build_chain(N_EVENTS, session_id=OTHER_SESSION_ID, signer=current),
        unsealed_sdk=build_chain(N_EVENTS, authority="sdk", seal=None),
        with_log_drop=build_chain(N_EVENTS, signer=current, payload_factory=with_drop),
    )


def event_like(template: Event, **changes: Any) -> Event:
    """A correctly hashed event built from ``template``'s envelope with ``changes`` applied (links not redone)."""
    fields = {
        "event_id": template["event_id"],
        "session_id": template["session_id"],
        "sequence_number": template["sequence_number"],
        "timestamp_wall": template["timestamp_wall"],
        "event_type": template["event_type"],
        "payload": copy.deepcopy(template["payload"]),
        "prev_event_hash": template["prev_event_hash"],
        "chain_authority": template["chain_authority"],
        "timestamp_monotonic": template["timestamp_monotonic"],
        "source_sdk_ver": template["source_sdk_ver"],
    }
    fields.update(changes)
    return chain_event(**fields)


__all__ = ["SEAL", "SESSION_ID", "World", "event_like", "format_timestamp", "world"]
