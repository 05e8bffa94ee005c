"""Seal one 100,000-event session in a single sealer run, and say how long it took and how much memory it used.

Everything runs in this process: moto plays KMS and the Object Lock bucket, the chain sits in the in-memory store (the
DynamoDB adapter streams the same lines page by page). Figures, printed as one JSON object:

- ``baseline_read_seconds``: reading every stored line once, doing nothing with it: the floor for any pass over the
  chain. The sealer reads the chain three times (verify, classify and hash, upload), so a ratio near 3 plus the
  verifier's per-event cost is expected.
- ``seal_seconds`` and ``seal_to_baseline_ratio``.
- ``seal_peak_traced_mib``: the peak of Python allocations made during sealing (tracemalloc, measured in a second,
  separate run because tracing slows the code down), which includes moto's copy of the uploaded parts.
- ``process_peak_rss_mib``: the whole process (the stored chain, moto and the interpreter included): an upper bound
  for the sealer's own footprint, and the number to compare with the 256 MB Lambda.

Usage: ``python benchmarks/seal_large_session.py [--events N]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from agentops_server.archive import S3Archive, session_archive_key
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import Sealer
from agentops_server.signing import KmsSigner
from agentops_server.store import StoredBatch
from agentops_verify import canonicalize, chain_event, sha256_hex
from moto import mock_aws

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from infra.resources import create_archive_bucket, create_seal_key

BUCKET = "agentops-benchmark-archive"
OWNER = "arn:aws:iam::111122223333:user/benchmark-agent"
BATCH_SIZE = 100
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIB = 1024 * 1024


def build_store(session_id: str, n_events: int) -> InMemoryChainStore:
    """A stored, ended, unsealed server-authority session of ``n_events`` events, in batches of ``BATCH_SIZE``."""
    store = InMemoryChainStore()
    store.create_session(session_id, OWNER, T0)
    prev_hash: str | None = None
    for first in range(0, n_events, BATCH_SIZE):
        events = []
        for sequence in range(first, min(first + BATCH_SIZE, n_events)):
            event_type, payload = _event(sequence, n_events)
            event = chain_event(
                event_id=str(uuid.uuid4()),
                session_id=session_id,
                sequence_number=sequence,
                timestamp_wall=(T0 + timedelta(milliseconds=sequence)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                event_type=event_type,
                payload=payload,
                prev_event_hash=prev_hash,
                chain_authority="server",
                timestamp_monotonic=sequence * 1_000_000,
                source_sdk_ver="agentops-replay-python/0.1.0",
                authority_id="agentops-benchmark",
            )
            prev_hash = event["event_hash"]
            events.append(event)
        lines = tuple(canonicalize(event) for event in events)
        batch = StoredBatch(
            session_id=session_id,
            first_sequence=first,
            lines=lines,
            event_ids=tuple(event["event_id"] for event in events),
            event_hashes=tuple(event["event_hash"] for event in events),
            owner=OWNER,
            request_digest=sha256_hex(b"\n".join(lines)),
            accepted_at=T0,
            ends_session=events[-1]["event_type"] == "SESSION_END",
        )
        store.put_batch(batch)
        store.advance_head(batch)
    return store


def _event(sequence: int, n_events: int) -> tuple[str, dict[str, Any]]:
    """A mix of model and tool traffic of realistic size (a few hundred bytes per event)."""
    if sequence == 0:
        return "SESSION_START", {"agent_id": "benchmark-agent", "environment": "prod", "framework": "langchain"}
    if sequence == n_events - 1:
        return "SESSION_END", {"status": "success", "duration_ms": n_events}
    kind = sequence % 4
    if kind == 1:
        return "MODEL_REQUEST", {
            "model": "model-large-1",
            "provider": "example",
            "messages": [{"role": "user", "content": f"step {sequence}: summarise the open tickets " * 3}],
        }
    if kind == 2:
        return "MODEL_RESPONSE", {
            "model": "model-large-1",
            "content": f"ticket {sequence} is waiting for the customer; nothing to do yet. " * 2,
            "usage": {"input_tokens": 180, "output_tokens": 42},
        }
    if kind == 3:
        return "TOOL_CALL", {"tool_name": "ticket_search", "tool_id": f"call-{sequence}", "args": {"page": sequence}}
    return "TOOL_RESULT", {"tool_name": "ticket_search", "tool_id": f"call-{sequence}", "result": {"hits": 3}}


def seal_once(n_events: int, *, trace: bool) -> dict[str, Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        kms = boto3.client("kms", region_name="us-east-1")
        create_archive_bucket(s3, BUCKET, 30)
        signer = KmsSigner(kms, create_seal_key(kms))
        session_id = str(uuid.uuid4())
        store = build_store(session_id, n_events)
        sealer = Sealer(store, signer, S3Archive(s3, BUCKET), "agentops-benchmark")

        started = time.perf_counter()
        line_count = sum(1 for _ in store.iter_lines(session_id))
        baseline = time.perf_counter() - started

        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        sealed = sealer.seal_due_sessions(T0 + timedelta(hours=1))
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()

        head = store.get_head(session_id)
        archive_size = s3.head_object(Bucket=BUCKET, Key=session_archive_key(session_id))["ContentLength"]
        if sealed != [session_id] or head is None or line_count != n_events:
            raise SystemExit(f"benchmark session was not sealed: {sealed}, {head}")
        return {
            "baseline_read_seconds": baseline,
            "seal_seconds": elapsed,
            "peak_traced_bytes": peak,
            "archive_bytes": archive_size,
            "evidence_class": head.evidence_class,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    arguments = parser.parse_args()

    timed = seal_once(arguments.events, trace=False)
    traced = seal_once(arguments.events, trace=True)
    # ru_maxrss is in KiB on Linux.
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "benchmark": "seal_large_session",
                "events": arguments.events,
                "archive_mib": round(timed["archive_bytes"] / MIB, 2),
                "evidence_class": timed["evidence_class"],
                "baseline_read_seconds": round(timed["baseline_read_seconds"], 3),
                "seal_seconds": round(timed["seal_seconds"], 2),
                "seal_to_baseline_ratio": round(timed["seal_seconds"] / timed["baseline_read_seconds"], 1),
                "seal_peak_traced_mib": round(traced["peak_traced_bytes"] / MIB, 1),
                "process_peak_rss_mib": round(peak_rss_mib, 1),
                "lambda_memory_mib": 256,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
