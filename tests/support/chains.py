"""Build valid ELS chains for tests, and re-hash or re-seal them the way an attacker with the tools would.

Every hash comes from ``agentops_verify`` (the one implementation of ELS sections 2 and 5); nothing here hashes on
its own. The functions return fresh lists of fresh dicts and never modify their arguments, so a test can keep the
original chain next to the tampered one.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agentops_verify import canonicalize, chain_event, event_hash, payload_hash, seal_signed_bytes

from tests.support.keys import SIGNATURE_ALGORITHM, TestSigner, default_signer

Event = dict[str, Any]
# Gets the sequence number of an ordinary event (neither start, end nor seal) and returns its type and payload.
PayloadFactory = Callable[[int], tuple[str, dict[str, Any]]]

DEFAULT_START_TIME = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SDK_VERSION = "agentops-replay-python/0.1.0"
SEALER_VERSION = "agentops-replay-sealer/0.1.0"
INGESTION_SERVICE_ID = "agentops-replay-test"
AGENT_ID = "test-agent"

# ELS section 3: one valid payload (required keys plus a few optional ones) per ordinary event type, used in turn.
# LOG_DROP is left out on purpose: it changes the evidence class (ELS section 6), so tests add it explicitly.
_ORDINARY_PAYLOADS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "MODEL_REQUEST",
        {"model": "test-model-1", "provider": "test", "messages": [{"role": "user", "content": "What is 2+2?"}]},
    ),
    ("MODEL_RESPONSE", {"model": "test-model-1", "content": "4", "finish_reason": "stop", "usage": {"tokens": 7}}),
    ("TOOL_CALL", {"tool_name": "calculator", "tool_id": "call-1", "args": {"expression": "2+2"}}),
    ("TOOL_RESULT", {"tool_name": "calculator", "tool_id": "call-1", "result": 4, "status": "success"}),
    (
        "DECISION_TRACE",
        {"decision_id": "d-1", "inputs": {"answer": 4}, "outputs": {"reply": "4"}, "justification": "tool result"},
    ),
    ("AGENT_STATE_SNAPSHOT", {"state": {"step": 3}, "checkpoint_id": "cp-1"}),
    ("ANNOTATION", {"annotator_id": "reviewer-1", "annotation_type": "comment", "content": "looks right"}),
    ("ERROR", {"error_type": "TimeoutError", "message": "tool took too long", "fatal": False}),
)


def ordinary_payload(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """The default ``PayloadFactory``: cycles through the ordinary event types of ELS section 3."""
    event_type, payload = _ORDINARY_PAYLOADS[(sequence_number - 1) % len(_ORDINARY_PAYLOADS)]
    return event_type, copy.deepcopy(payload)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond fraction and ``Z`` (ELS section 1)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_chain(
    n_events: int = 5,
    *,
    session_id: str | None = None,
    authority: Literal["server", "sdk"] = "server",
    end: bool = True,
    seal: Literal["signed", "unsigned"] | None = "signed",
    signer: TestSigner | None = None,
    payload_factory: PayloadFactory | None = None,
    start_time: datetime = DEFAULT_START_TIME,
) -> list[Event]:
    """A valid chain of ``n_events`` events, plus a ``CHAIN_SEAL`` when ``seal`` is not None.

    ``n_events`` counts everything before the seal (so it equals the seal's ``event_count``): ``SESSION_START`` at
    sequence 0, ordinary events from ``payload_factory``, and ``SESSION_END`` last when ``end`` is true. A signed
    seal is signed by ``signer`` (default: ``default_signer()``). Events are one second apart from ``start_time``.
    """
    minimum = 2 if end else 1
    if n_events < minimum:
        raise ValueError(f"n_events must be at least {minimum} (SESSION_START{' and SESSION_END' if end else ''})")
    session_id = session_id if session_id is not None else str(uuid.uuid4())
    factory = payload_factory if payload_factory is not None else ordinary_payload
    events: list[Event] = []
    for sequence_number in range(n_events):
        payload: dict[str, Any]
        if sequence_number == 0:
            event_type, payload = "SESSION_START", {"agent_id": AGENT_ID, "environment": "dev", "framework": "test"}
        elif end and sequence_number == n_events - 1:
            event_type, payload = "SESSION_END", {"status": "success", "duration_ms": 1000 * sequence_number}
        else:
            event_type, payload = factory(sequence_number)
        events.append(
            chain_event(
                event_id=str(uuid.uuid4()),
                session_id=session_id,
                sequence_number=sequence_number,
                timestamp_wall=format_timestamp(start_time + timedelta(seconds=sequence_number)),
                event_type=event_type,
                payload=payload,
                prev_event_hash=events[-1]["event_hash"] if events else None,
                chain_authority=authority,
                timestamp_monotonic=sequence_number * 1_000_000_000,
                source_sdk_ver=SDK_VERSION,
            )
        )
    if seal is not None:
        seal_time = start_time + timedelta(seconds=n_events)
        events.append(_seal_event(events, signer=_signer_for(seal, signer), seal_time=format_timestamp(seal_time)))
    return events


def seal_payload(
    session_id: str,
    seal_event_id: str,
    events_before_seal: Sequence[Event],
    *,
    signer: TestSigner | None,
    seal_timestamp: str,
    ingestion_service_id: str = INGESTION_SERVICE_ID,
) -> dict[str, Any]:
    """The ``CHAIN_SEAL`` payload of ELS section 5 over ``events_before_seal``; signed when ``signer`` is given."""
    final_event_hash = events_before_seal[-1]["event_hash"]
    payload: dict[str, Any] = {
        "ingestion_service_id": ingestion_service_id,
        "seal_timestamp": seal_timestamp,
        "event_count": len(events_before_seal),
        "final_event_hash": final_event_hash,
        "session_digest": "sha256:" + final_event_hash,
    }
    if signer is not None:
        signature = signer.sign(seal_signed_bytes(session_id, seal_event_id, payload))
        payload["signature_algorithm"] = SIGNATURE_ALGORITHM
        payload["signer_key_id"] = signer.key_id
        payload["signature"] = base64.b64encode(signature).decode("ascii")
    return payload


def to_jsonl(events: Sequence[Event]) -> bytes:
    """The archive form of ELS section 8: one JCS line per event, each LF-terminated."""
    return b"".join(canonicalize(event) + b"\n" for event in events)


def rehash_from(events: Sequence[Event], index: int) -> list[Event]:
    """A copy of ``events`` whose hashes and links are recomputed from ``index`` on, as an attacker would redo them.

    For every event at ``index`` or later: ``payload_hash`` from its payload (kept when the payload is withheld),
    ``prev_event_hash`` from the previous event's ``event_hash`` (the event at sequence 0 keeps its own), then
    ``event_hash``. Sequence numbers and the seal payload are left as they are (see ``reseal``).
    """
    rebuilt = copy.deepcopy(list(events))
    for position in range(index, len(rebuilt)):
        event = rebuilt[position]
        if "payload" in event:
            event["payload_hash"] = payload_hash(event["payload"])
        if position > 0:
            event["prev_event_hash"] = rebuilt[position - 1]["event_hash"]
        event["event_hash"] = event_hash(event)
    return rebuilt


def reseal(events: Sequence[Event], signer: TestSigner | None) -> list[Event]:
    """A copy of ``events`` with its last-event ``CHAIN_SEAL`` rebuilt over the events before it.

    With ``signer`` the new seal is signed by it (a "re-signed with another key" forgery); with None it is an
    unsigned legacy seal (a "seal forged unsigned"). The seal keeps its envelope (id, sequence, time).
    """
    if not events or events[-1].get("event_type") != "CHAIN_SEAL":
        raise ValueError("reseal needs a chain whose last event is a CHAIN_SEAL")
    rebuilt = copy.deepcopy(list(events))
    old_seal = rebuilt[-1]
    old_seal["payload"] = seal_payload(
        old_seal["session_id"],
        old_seal["event_id"],
        rebuilt[:-1],
        signer=signer,
        seal_timestamp=old_seal["payload"]["seal_timestamp"],
        ingestion_service_id=old_seal["payload"]["ingestion_service_id"],
    )
    return rehash_from(rebuilt, len(rebuilt) - 1)


def _signer_for(seal: Literal["signed", "unsigned"], signer: TestSigner | None) -> TestSigner | None:
    if seal == "unsigned":
        return None
    return signer if signer is not None else default_signer()


def _seal_event(events: Sequence[Event], *, signer: TestSigner | None, seal_time: str) -> Event:
    last = events[-1]
    seal_event_id = str(uuid.uuid4())
    return chain_event(
        event_id=seal_event_id,
        session_id=last["session_id"],
        sequence_number=len(events),
        timestamp_wall=seal_time,
        event_type="CHAIN_SEAL",
        payload=seal_payload(last["session_id"], seal_event_id, events, signer=signer, seal_timestamp=seal_time),
        prev_event_hash=last["event_hash"],
        chain_authority=last["chain_authority"],
        timestamp_monotonic=last["timestamp_monotonic"] + 1_000_000_000,
        source_sdk_ver=SEALER_VERSION,
    )
