"""AgentOps Replay SDK."""
