"""The event format as data (ELS sections 1, 3 and 5): fields, formats, event types and seal keys."""

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

SCHEMA_VERSION: Final = "v0.6"
LEGACY_SCHEMA_VERSION: Final = "v0.5"
AUTHORITIES: Final = ("server", "sdk")
SERVER: Final = "server"
SDK: Final = "sdk"

# ELS section 1: canonical lowercase 8-4-4-4-12. [0-9] rather than \d, which also matches non-ASCII digits.
UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# ELS section 1: RFC 3339 UTC with Z, YYYY-MM-DDTHH:MM:SS[.fraction]Z.
TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?Z"
)
KEY_ID: Final = re.compile(r"sha256:[0-9a-f]{64}")

SESSION_START: Final = "SESSION_START"
SESSION_END: Final = "SESSION_END"
CHAIN_SEAL: Final = "CHAIN_SEAL"
LOG_DROP: Final = "LOG_DROP"

# ELS section 3: the closed set of event types and the payload keys each one requires.
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

# ELS section 5.
SIGNATURE_ALGORITHM: Final = "ECDSA_P256_SHA256"
SIGNED_SEAL_KEYS: Final = (
    "ingestion_service_id",
    "seal_timestamp",
    "event_count",
    "final_event_hash",
    "session_digest",
    "signature_algorithm",
    "signer_key_id",
    "signature",
)
LEGACY_SEAL_KEYS: Final = ("ingestion_service_id", "seal_timestamp", "session_digest")
DIGEST_PREFIX: Final = "sha256:"

# ELS section 3: redaction marker and the suffix of the sibling key that must carry its hash.
REDACTED: Final = "[REDACTED]"
REDACTION_HASH_SUFFIX: Final = "_hash"

# ELS section 7: EXCESSIVE_CUMULATIVE_DROPS above this many dropped events.
EXCESSIVE_DROPS: Final = 10_000
