"""agentops-verify: offline verification of AgentOps Replay evidence (ELS v0.6, signed-seal profile).

Standard library only. The public surface is re-exported here; everything else is private.
"""

from __future__ import annotations

from ._errors import CanonicalizationError, MalformedJSONError, VerifierError
from ._hashing import (
    EVENT_HASH_FIELDS,
    SPEC_VERSION,
    chain_event,
    event_hash,
    payload_hash,
    seal_signed_bytes,
    sha256_hex,
)
from ._jcs import canonicalize
from ._json import loads

__version__ = "0.1.0"

__all__ = [
    "EVENT_HASH_FIELDS",
    "SPEC_VERSION",
    "CanonicalizationError",
    "MalformedJSONError",
    "VerifierError",
    "__version__",
    "canonicalize",
    "chain_event",
    "event_hash",
    "loads",
    "payload_hash",
    "seal_signed_bytes",
    "sha256_hex",
]
