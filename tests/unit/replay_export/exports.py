"""Export documents for the unit tests: built by the export core from chains made by ``tests.support.chains``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agentops_server.export import ExportDocument, Withholding, build_export_document
from agentops_server.replay import TrustedKeys
from agentops_server.store import SigningKeyRecord
from agentops_verify import canonicalize

from tests.support.chains import Event, build_chain, ordinary_payload
from tests.support.keys import SIGNATURE_ALGORITHM, default_signer

GENERATED_AT = "2026-01-02T08:30:00.000000Z"
DROP = {"dropped_count": 2, "cumulative_drops": 2, "drop_reason": "BUFFER_FULL", "sequence_range": [4, 5]}


def published_keys() -> list[SigningKeyRecord]:
    signer = default_signer()
    return [
        SigningKeyRecord(signer.key_id, SIGNATURE_ALGORITHM, signer.public_key_pem, datetime(2026, 1, 1, tzinfo=UTC))
    ]


def incident_payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Ordinary traffic plus the things an export has to show: a drop, a redaction, personal data."""
    if sequence_number == 3:
        return "LOG_DROP", dict(DROP)
    if sequence_number == 4:
        return "TOOL_CALL", {"tool_name": "crm", "args": {"email": "[REDACTED]", "email_hash": "a" * 64}}
    if sequence_number == 5:
        return "TOOL_RESULT", {
            "tool_name": "crm",
            "result": {"note": "call +44 20 7946 0958 about card 4111111111111111"},
        }
    return ordinary_payload(sequence_number)


def sealed_chain(n_events: int = 10, **options: Any) -> list[Event]:
    return build_chain(n_events, payload_factory=incident_payloads, **options)


def export_of(
    events: Sequence[Event],
    withhold: bool | list[int] = False,
    keys: Sequence[SigningKeyRecord] | None = None,
    log_proof: dict[str, Any] | None = None,
) -> ExportDocument:
    return build_export_document(
        session_id=events[0]["session_id"],
        lines=[canonicalize(event) for event in events],
        withholding=Withholding.from_request(withhold),
        trust=TrustedKeys.of(published_keys() if keys is None else keys),
        generated_at=GENERATED_AT,
        log_proof=log_proof,
    )
