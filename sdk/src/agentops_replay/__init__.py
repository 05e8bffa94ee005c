"""AgentOps Replay SDK: record AI agent events as tamper-evident evidence without slowing or crashing the agent."""

from agentops_verify import REDACTED

from ._version import VERSION
from .client import AgentOpsClient, Session
from .privacy import content_digest, content_hash, redact

__version__ = VERSION

__all__ = ["REDACTED", "AgentOpsClient", "Session", "__version__", "content_digest", "content_hash", "redact"]
