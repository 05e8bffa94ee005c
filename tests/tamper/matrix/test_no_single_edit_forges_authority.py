"""Property: no single-byte edit of genuine sealed evidence changes what it proves while keeping its authority.

Whatever byte of the archived JSON Lines is replaced by whatever other byte, the verifier either fails, downgrades
the class, or reports a chain that proves exactly what the genuine one did: the same events with the same hashed
content (an edit can only have touched whitespace or a field outside the hashes, ELS section 1).
"""

from __future__ import annotations

from typing import Any

from agentops_verify import EVENT_HASH_FIELDS, MalformedJSONError, loads
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tamper.matrix.evidence import AUTHORITATIVE, Evidence, jsonl, verify
from tests.tamper.matrix.world import world

GENUINE = jsonl(world().sealed)


def proven_content(data: bytes) -> list[tuple[Any, ...]] | None:
    """Per event: the hashed fields, the payload and the chain fields, i.e. everything the seal vouches for."""
    try:
        events = [loads(line) for line in data.split(b"\n") if line.strip(b" \t\r")]
    except MalformedJSONError:
        return None
    return [
        (*(event.get(name) for name in EVENT_HASH_FIELDS), event.get("payload"), event.get("event_hash"))
        for event in events
    ]


@settings(max_examples=400, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(GENUINE) - 1), replacement=st.integers(0, 255))
def test_a_single_byte_edit_never_changes_what_authoritative_evidence_proves(position: int, replacement: int) -> None:
    if GENUINE[position] == replacement:
        return
    edited = GENUINE[:position] + bytes([replacement]) + GENUINE[position + 1 :]
    report = verify(Evidence(edited, (world().current,)))
    if report.passed and report.evidence_class == AUTHORITATIVE:
        assert proven_content(edited) == proven_content(GENUINE)
        assert report.replay_fingerprint == world().sealed[-1]["event_hash"]
