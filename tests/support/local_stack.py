"""Moved to ``infra.launcher`` (the demo uses it too); kept importable for suites written against this name."""

from infra.launcher import LocalStackHandle, running_local_stack

__all__ = ["LocalStackHandle", "running_local_stack"]
