"""Offline verification of an archived chain, the way an auditor does it: the verifier library and a pinned key file."""

from __future__ import annotations

from agentops_verify import Report, TrustStore, parse_key_file, verify_lines


def verify_archive(archive_body: bytes, keys_file: bytes) -> Report:
    """Verify archived JSONL with every key of a ``GET /v1/keys`` document (or PEM file) trusted."""
    return verify_lines(archive_body.splitlines(), trust=TrustStore(parse_key_file(keys_file)))
