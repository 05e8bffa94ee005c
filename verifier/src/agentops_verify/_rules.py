"""The evidence format as data (ELS sections 1, 3, 5 and 9): fields, formats, event types, seal keys and the
members of an export document. Each rule is written here once; the verifier, the service and the SDK import it."""

from __future__ import annotations

import re
from typing import Final

# ELS section 1, in table order (the order fields are checked and reported in).
ENVELOPE_FIELDS: Final = (
    "event_id",
    "session_id",
    "sequence_number",
    "timestamp_wall",
    "timestamp_monotonic",
    "event_type",
    "source_sdk_ver",
    "schema_ver",
    "payload",
    "payload_hash",
    "prev_event_hash",
    "event_hash",
    "chain_authority",
)
OPTIONAL_FIELDS: Final = ("authority_id",)
# ELS section 4: the fields the chain authority computes; a producer under server authority sends the others.
CHAIN_FIELDS: Final = ("payload_hash", "prev_event_hash", "event_hash", "chain_authority")
PRODUCER_FIELDS: Final = tuple(field for field in ENVELOPE_FIELDS if field not in CHAIN_FIELDS)
# ELS section 9: only an export document may mark an event this way (and then it has no payload).
WITHHELD_MARK: Final = "payload_withheld"

# The spec version: every event's schema_ver, and the spec_version inside the seal's signed bytes (ELS sections 1, 5).
SPEC_VERSION: Final = "v0.6"
SCHEMA_VERSION: Final = SPEC_VERSION
LEGACY_SCHEMA_VERSION: Final = "v0.5"
AUTHORITIES: Final = ("server", "sdk")
SERVER: Final = "server"
SDK: Final = "sdk"

# ELS section 1: canonical lowercase 8-4-4-4-12. [0-9] rather than \d, which also matches non-ASCII digits. The
# pattern is unanchored: match it whole (``UUID.fullmatch``, or ``^...$`` in a schema).
UUID_PATTERN: Final = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID: Final = re.compile(UUID_PATTERN)


def is_canonical_uuid(value: object) -> bool:
    """Whether ``value`` is a string in the canonical UUID form of ELS section 1."""
    return type(value) is str and UUID.fullmatch(value) is not None


# ELS section 1: RFC 3339 UTC with Z, YYYY-MM-DDTHH:MM:SS[.fraction]Z.
TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?Z"
)
# ELS section 2: a SHA-256 digest as the chain writes it (payload_hash, event_hash), 64 lowercase hex digits.
HEX_DIGEST_PATTERN: Final = "[0-9a-f]{64}"
# ELS section 5: signer_key_id, "sha256:" + 64 lowercase hex digits.
KEY_ID: Final = re.compile("sha256:" + HEX_DIGEST_PATTERN)

SESSION_START: Final = "SESSION_START"
SESSION_END: Final = "SESSION_END"
CHAIN_SEAL: Final = "CHAIN_SEAL"
LOG_DROP: Final = "LOG_DROP"

# ELS section 3: the closed set of event types, in table order, and the payload keys each one requires.
REQUIRED_PAYLOAD_KEYS: Final[dict[str, tuple[str, ...]]] = {
    SESSION_START: ("agent_id",),
    SESSION_END: ("status",),
    "MODEL_REQUEST": ("model",),
    "MODEL_RESPONSE": ("model",),
    "TOOL_CALL": ("tool_name",),
    "TOOL_RESULT": ("tool_name",),
    "AGENT_STATE_SNAPSHOT": (),
    "DECISION_TRACE": ("decision_id", "inputs", "outputs", "justification"),
    "ERROR": ("error_type", "message"),
    "ANNOTATION": ("annotator_id", "annotation_type", "content"),
    LOG_DROP: ("dropped_count", "cumulative_drops", "drop_reason"),
    CHAIN_SEAL: (),  # checked by the seal rules of section 5
}
EVENT_TYPES: Final = tuple(REQUIRED_PAYLOAD_KEYS)
# ELS section 4: what a producer may send under server authority; only the sealer writes a CHAIN_SEAL there.
PRODUCER_EVENT_TYPES: Final = tuple(event_type for event_type in EVENT_TYPES if event_type != CHAIN_SEAL)

# ELS section 5: the seal payload. The summary of the chain is the unsigned (legacy) form; a signed seal adds the
# signature keys and has exactly the eight (rev 2). The signed bytes cover the summary (``seal_signed_bytes``).
SIGNATURE_ALGORITHM: Final = "ECDSA_P256_SHA256"
SEAL_SUMMARY_KEYS: Final = (
    "ingestion_service_id",
    "seal_timestamp",
    "event_count",
    "final_event_hash",
    "session_digest",
)
SEAL_SIGNATURE_KEYS: Final = ("signature_algorithm", "signer_key_id", "signature")
SIGNED_SEAL_KEYS: Final = SEAL_SUMMARY_KEYS + SEAL_SIGNATURE_KEYS
# What a legacy unsigned seal must at least hold (its other summary keys are only compared when present).
LEGACY_SEAL_KEYS: Final = ("ingestion_service_id", "seal_timestamp", "session_digest")
DIGEST_PREFIX: Final = "sha256:"

# ELS section 3: redaction marker and the suffix of the sibling key that must carry its hash.
REDACTED: Final = "[REDACTED]"
REDACTION_HASH_SUFFIX: Final = "_hash"

# ELS section 7: EXCESSIVE_CUMULATIVE_DROPS above this many dropped events.
EXCESSIVE_DROPS: Final = 10_000

# ELS section 9 (rev 2): an export document has exactly these members. The optional metadata members are not evidence
# (no hash or signature covers them); a verifier repeats them, labelled unverified.
EXPORT_REQUIRED_MEMBERS: Final = (
    "export_version",
    "session_id",
    "evidence_class",
    "chain_authority",
    "verification",
    "seal",
    "events",
    "public_keys",
)
EXPORT_METADATA_MEMBERS: Final = ("generated_at", "generator", "pii_findings")
EXPORT_OPTIONAL_MEMBERS: Final = (*EXPORT_METADATA_MEMBERS, "log_proof")
# ELS section 7: the members of an export's ``verification``, each equal to the verifier's recomputation. The rest of
# a report (whether the key is trusted, warnings, versions) depends on who verifies, so an export does not state it.
EXPORT_VERIFICATION_KEYS: Final = (
    "session_id",
    "status",
    "evidence_class",
    "partial_reasons",
    "authority",
    "sealed",
    "seal_signed",
    "seal_key_id",
    "complete",
    "event_count",
    "total_drops",
    "first_event_hash",
    "final_event_hash",
    "replay_fingerprint",
)
# ELS section 9: one entry of an export's ``public_keys`` (a ``GET /v1/keys`` entry adds ``first_used_at``).
PUBLISHED_KEY_MEMBERS: Final = ("signer_key_id", "algorithm", "public_key_pem")
# ELS section 9: one entry of an export's ``pii_findings``; ``pointer`` is null for a withheld payload (rev 2).
PII_FINDING_MEMBERS: Final = ("sequence_number", "kind", "pointer")
