"""Moved to ``infra.api_client`` (the demo uses it too); kept importable for suites written against this name."""

from infra.api_client import REGION, ApiClient, ApiResponse

__all__ = ["REGION", "ApiClient", "ApiResponse"]
