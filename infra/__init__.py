"""Running AgentOps Replay without AWS: template reading, resource bootstrap and the local stack."""
