"""The ``agentops-replay`` command line: list, show, fetch, verify and export sessions (``python -m
agentops_replay.cli`` is the same command). Standard library and botocore only, like the SDK."""

from ._main import main

__all__ = ["main"]
