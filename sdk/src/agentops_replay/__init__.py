"""AgentOps Replay SDK: record AI agent events as tamper-evident evidence without slowing or crashing the agent."""

from ._version import VERSION
from .client import AgentOpsClient, Session
from .privacy import REDACTED, content_digest, content_hash, redact

__version__ = VERSION

__all__ = ["REDACTED", "AgentOpsClient", "Session", "__version__", "content_digest", "content_hash", "redact"]
