"""Seal one 100,000-event session in a single run of the seal Lambda handler: how long it takes, how much memory.

Set-up (not measured): a moto server in this process plays DynamoDB, KMS and the Object Lock bucket; the session is
stored through the real ``DynamoDBChainStore`` (packed, compressed batches of 100 events), ended, unsealed.

Measured, each in a fresh child process that talks to moto over HTTP as a Lambda talks to AWS, so that neither moto's
data nor the benchmark's own copy of the chain is counted:

- ``idle_rss_mib``: the child after importing ``functions/seal/app.py`` (interpreter, boto3, Powertools, the core):
  the fixed cost of the runtime.
- ``baseline_read_seconds``: reading every stored line once through the store and doing nothing with it, the floor
  for any pass over the chain. The sealer makes three passes (verify before signing; verify the sealed chain with the
  key trusted while hashing it; stream it to S3), so the ratio is about three reads plus two verifications.
- ``seal_seconds``, ``seal_cpu_seconds``, ``seal_peak_rss_mib``: the handler's run (``lambda_handler`` on a scheduled
  event: verify and sign, archive, give the table copies their expiry), the CPU time the child spent in it (moto runs
  in the parent, so this is the sealer's own work) and the child's peak resident memory.
- ``cpu_seconds_per_event``: the sealer's CPU time per event, the figure of the sizing model in docs/architecture.md
  ("Sealing"): a session at the cap of ``MaxSessionEvents`` takes about that many events times this, divided by the
  function's vCPU share (1,769 MB is one vCPU), and must fit in a third of the function's timeout.
- ``small_session_peak_rss_mib``: the same run over a session a quarter the size, in the same run, so that
  ``rss_mib_per_1000_events`` shows how memory grows with the session (the passes stream; what is left is the
  verifier's set of the event ids it has seen, for DUPLICATE_EVENT_ID).

Usage: ``python benchmarks/seal_large_session.py [--events N]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from agentops_server.archive import session_archive_key
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.store import StoredBatch
from agentops_verify import chain_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infra.lambda_runtime import LocalLambdaContext
from tests.support.stores import stored_batch

REPO_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "agentops-benchmark-archive"
SERVICE_ID = "agentops-benchmark"
OWNER = "arn:aws:iam::111122223333:user/benchmark-agent"
BATCH_SIZE = 100
LAMBDA_MEMORY_MB = 1769  # the SealFunction's MemorySize in template.yaml: one full vCPU
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIB = 1024 * 1024


def build_batches(session_id: str, n_events: int) -> list[StoredBatch]:
    """A complete, ended, unsealed server-authority session of ``n_events`` events, in batches of ``BATCH_SIZE``."""
    batches: list[StoredBatch] = []
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
                authority_id=SERVICE_ID,
            )
            prev_hash = event["event_hash"]
            events.append(event)
        batches.append(stored_batch(events, owner=OWNER, accepted_at=T0))
    return batches


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


def store_session(store: DynamoDBChainStore, n_events: int) -> str:
    """An ended, unsealed session of ``n_events`` events stored as ingestion stores it; returns its id."""
    session_id = str(uuid.uuid4())
    store.create_session(session_id, OWNER, T0)
    for batch in build_batches(session_id, n_events):
        store.put_batch(batch)
        store.advance_head(batch)
    return session_id


# --- children: each prints one JSON object --------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    """This process's peak resident set. ``VmHWM`` belongs to the process image itself; ``ru_maxrss`` would also carry
    the parent's size from before the exec (Linux keeps it across exec), so it is only the fallback."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _load_seal_handler() -> Any:
    spec = importlib.util.spec_from_file_location("seal_app", REPO_ROOT / "functions" / "seal" / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child_idle() -> dict[str, Any]:
    _load_seal_handler()
    return {"rss_mib": _peak_rss_mib()}


def child_baseline(session_id: str) -> dict[str, Any]:
    _load_seal_handler()  # same imports as the sealing child, so the two are comparable
    store = DynamoDBChainStore(boto3.client("dynamodb"), os.environ["TABLE_NAME"])
    started = time.perf_counter()
    count = sum(1 for _ in store.iter_lines(session_id))
    return {"seconds": time.perf_counter() - started, "lines": count, "rss_mib": _peak_rss_mib()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_seal() -> dict[str, Any]:
    handler = _load_seal_handler()
    context = LocalLambdaContext("SealFunction", LAMBDA_MEMORY_MB, 900)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    result = handler.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_started,
        "sealed": result["sealed"],
        "rss_mib": _peak_rss_mib(),
    }


def run_child(*arguments: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", *arguments], capture_output=True, check=True, text=True, timeout=1800
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# --- the benchmark --------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        role, *rest = arguments.child
        children: dict[str, Callable[..., dict[str, Any]]] = {
            "idle": child_idle,
            "baseline": child_baseline,
            "seal": child_seal,
        }
        result = children[role](*rest)
        print(json.dumps(result))
        return 0

    # moto is imported here only: the measured children must not carry it.
    from infra.local_stack import point_boto3_at
    from infra.moto_server import SerializedMotoServer
    from infra.resources import create_archive_bucket, create_seal_key, create_table

    server = SerializedMotoServer()
    server.start()
    try:
        point_boto3_at(server.endpoint)
        dynamodb, s3, kms = boto3.client("dynamodb"), boto3.client("s3"), boto3.client("kms")
        table = create_table(dynamodb)
        create_archive_bucket(s3, BUCKET, 30)
        os.environ.update(
            {
                "TABLE_NAME": table,
                "ARCHIVE_BUCKET": BUCKET,
                "SEAL_KEY_ID": create_seal_key(kms),
                "SERVICE_ID": SERVICE_ID,
                "SEAL_IDLE_SECONDS": "3600",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        store = DynamoDBChainStore(dynamodb, table)
        small_session = store_session(store, arguments.events // 4)
        small = run_child("seal")
        if small["sealed"] != [small_session]:
            raise SystemExit(f"the small benchmark session was not sealed: {small}")
        session_id = store_session(store, arguments.events)

        idle = run_child("idle")
        baseline = run_child("baseline", session_id)
        sealed = run_child("seal")
        head = store.get_head(session_id)
        archive = s3.head_object(Bucket=BUCKET, Key=session_archive_key(session_id))
        if sealed["sealed"] != [session_id] or head is None or baseline["lines"] != arguments.events:
            raise SystemExit(f"the benchmark session was not sealed: {sealed}")
    finally:
        server.stop()

    print(
        json.dumps(
            {
                "benchmark": "seal_large_session",
                "events": arguments.events,
                "archive_mib": round(archive["ContentLength"] / MIB, 1),
                "evidence_class": head.evidence_class,
                "baseline_read_seconds": round(baseline["seconds"], 2),
                "seal_seconds": round(sealed["seconds"], 2),
                "seal_to_baseline_ratio": round(sealed["seconds"] / baseline["seconds"], 1),
                "seal_cpu_seconds": round(sealed["cpu_seconds"], 2),
                "cpu_seconds_per_event": round(sealed["cpu_seconds"] / arguments.events, 7),
                "idle_rss_mib": round(idle["rss_mib"], 1),
                "baseline_peak_rss_mib": round(baseline["rss_mib"], 1),
                "seal_peak_rss_mib": round(sealed["rss_mib"], 1),
                "small_session_events": arguments.events // 4,
                "small_session_peak_rss_mib": round(small["rss_mib"], 1),
                "rss_mib_per_1000_events": round(
                    (sealed["rss_mib"] - small["rss_mib"]) / (arguments.events - arguments.events // 4) * 1000, 3
                ),
                "lambda_memory_mib": LAMBDA_MEMORY_MB,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
