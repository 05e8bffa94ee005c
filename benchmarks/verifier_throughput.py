"""Verifier throughput against the floor (issue 2): how much slower than merely parsing and hashing every line?

Generates a server-authority chain of ``--events`` events (default 100,000) of about 1 KB each, sealed with a signed
seal when ``cryptography`` is installed (unsigned otherwise), then times, in fresh subprocesses of the same Python:

- the verifier CLI: ``python -m agentops_verify --format json --trusted-key <pem> FILE``;
- the floor: a script doing ``json.loads`` and ``hashlib.sha256(...).hexdigest()`` of every line of the same file;
- for reference, the same verification in one process (the library's ``verify_file`` default).

The CLI verifies a large file with one process per available CPU, so its wall time depends on idle CPUs; CPU
seconds (user + system of every process) are printed next to wall seconds. On a machine whose CPUs are busy with
other work, wall-time ratios say more about the neighbours than about the verifier.

Each is run ``--repeat`` times, in rounds (verifier, single-process verifier, floor, then again), so that each
round's programs see the same load; the best wall time of each is kept, and the median of the rounds' ratios is
printed too. Peak RSS is the child's ``ru_maxrss``, measured by a small wrapper process so the programs never share a
figure. Prints one JSON object. Targets: ratio <= 2.0 and peak RSS <= 64 MB.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentops_verify import canonicalize, chain_event, low_s_signature, seal_signed_bytes

TARGET_RATIO = 2.0
TARGET_RSS_MB = 64

FLOOR_SCRIPT = """
import hashlib, json, sys
with open(sys.argv[1], "rb") as stream:
    for line in stream:
        json.loads(line)
        hashlib.sha256(line).hexdigest()
"""

# Runs argv[1:] as a child, then prints its wall time, exit status and peak RSS (KiB on Linux).
WRAPPER_SCRIPT = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
completed = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "returncode": completed.returncode, "maxrss_kib": usage.ru_maxrss}))
"""

# The same verification in one process (the library's default), to show what the parallel CLI gains.
SERIAL_SCRIPT = """
import sys
from agentops_verify import TrustStore, load_pem_public_key, verify_file
trust = TrustStore([load_pem_public_key(open(sys.argv[2], "rb").read())]) if len(sys.argv) > 2 else None
sys.exit(0 if verify_file(sys.argv[1], trust=trust).passed else 1)
"""

_WORDS = (
    "quarterly",
    "revenue",
    "forecast",
    "risk",
    "customer",
    "churn",
    "region",
    "pipeline",
    "latency",
    "invoice",
    "contract",
    "renewal",
    "escalation",
    "compliance",
    "audit",
    "ledger",
    "reconciliation",
    "vendor",
    "shipment",
    "backlog",
    "approval",
    "threshold",
)


def _sentence(seed: int, words: int) -> str:
    return " ".join(_WORDS[(seed * 7 + index * 3) % len(_WORDS)] for index in range(words)).capitalize() + "."


def _payload(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Payloads shaped like a model-and-tools agent's, about 1 KB per event once enveloped."""
    kind = sequence_number % 4
    digest = hashlib.sha256(str(sequence_number).encode()).hexdigest()
    if kind == 1:
        return "MODEL_REQUEST", {
            "model": "gpt-4o-2024-08-06",
            "provider": "openai",
            "messages": [
                {"role": "system", "content": _sentence(sequence_number, 18)},
                {"role": "user", "content": _sentence(sequence_number + 1, 30)},
            ],
            "parameters": {"temperature": 0.2, "max_tokens": 1024, "top_p": 0.95},
            "prompt_hash": digest,
        }
    if kind == 2:
        return "MODEL_RESPONSE", {
            "model": "gpt-4o-2024-08-06",
            "content": _sentence(sequence_number, 60),
            "content_hash": digest,
            "finish_reason": "tool_calls",
            "usage": {"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908, "cost_usd": 0.00731},
        }
    if kind == 3:
        return "TOOL_CALL", {
            "tool_name": "crm.search_accounts",
            "tool_id": f"call-{sequence_number}",
            "args": {
                "query": _sentence(sequence_number, 12),
                "limit": 25,
                "filters": {"region": "emea", "active": True},
            },
            "args_hash": digest,
        }
    return "TOOL_RESULT", {
        "tool_name": "crm.search_accounts",
        "tool_id": f"call-{sequence_number - 1}",
        "result": {"accounts": [{"id": f"acct-{index}", "name": _sentence(index, 4)} for index in range(6)]},
        "result_hash": digest,
        "status": "success",
        "duration_ms": 184,
    }


def _signer() -> tuple[Any, str, str] | None:
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        return None
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = private_key.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(message: bytes) -> bytes:
        return low_s_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))

    return sign, "sha256:" + hashlib.sha256(der).hexdigest(), pem


def generate_chain(path: Path, events: int, key_path: Path) -> bool:
    """Write the chain as the archive does (one JCS line per event); returns whether the seal is signed."""
    session_id = str(uuid.uuid4())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    signer = _signer()
    previous: dict[str, Any] | None = None
    with path.open("wb") as out:
        for sequence_number in range(events):
            payload: dict[str, Any]
            if sequence_number == 0:
                event_type, payload = "SESSION_START", {"agent_id": "bench-agent", "environment": "prod"}
            elif sequence_number == events - 1:
                event_type, payload = "SESSION_END", {"status": "success", "duration_ms": events * 250}
            else:
                event_type, payload = _payload(sequence_number)
            previous = chain_event(
                event_id=str(uuid.uuid4()),
                session_id=session_id,
                sequence_number=sequence_number,
                timestamp_wall=(start + timedelta(milliseconds=250 * sequence_number)).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
                event_type=event_type,
                payload=payload,
                prev_event_hash=previous["event_hash"] if previous else None,
                chain_authority="server",
                timestamp_monotonic=sequence_number * 250_000_000,
                source_sdk_ver="agentops-replay-python/0.1.0",
                authority_id="agentops-replay-bench",
            )
            out.write(canonicalize(previous) + b"\n")
        assert previous is not None
        seal_event_id = str(uuid.uuid4())
        seal: dict[str, Any] = {
            "ingestion_service_id": "agentops-replay-bench",
            "seal_timestamp": "2026-01-02T00:00:00Z",
            "event_count": events,
            "final_event_hash": previous["event_hash"],
            "session_digest": "sha256:" + previous["event_hash"],
        }
        if signer is not None:
            sign, key_id, pem = signer
            seal["signature_algorithm"] = "ECDSA_P256_SHA256"
            seal["signer_key_id"] = key_id
            seal["signature"] = base64.b64encode(sign(seal_signed_bytes(session_id, seal_event_id, seal))).decode()
            key_path.write_text(pem)
        sealed = chain_event(
            event_id=seal_event_id,
            session_id=session_id,
            sequence_number=events,
            timestamp_wall="2026-01-02T00:00:00Z",
            event_type="CHAIN_SEAL",
            payload=seal,
            prev_event_hash=previous["event_hash"],
            chain_authority="server",
            timestamp_monotonic=events * 250_000_000,
            source_sdk_ver="agentops-replay-sealer/0.1.0",
        )
        out.write(canonicalize(sealed) + b"\n")
    return signer is not None


def _measure(command: list[str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", WRAPPER_SCRIPT, *command], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "wall_seconds": min(run["wall"] for run in runs),
        "cpu_seconds": min(run["cpu"] for run in runs),
        "returncodes": sorted({run["returncode"] for run in runs}),
        "peak_rss_mb": max(run["maxrss_kib"] for run in runs) / 1024,
    }


def _rounds(commands: dict[str, list[str]], repeat: int) -> tuple[dict[str, dict[str, Any]], list[dict[str, float]]]:
    """Run every command once per round, rounds one after another, so each round's programs share the machine's
    conditions of the moment; returns best-of summaries and each round's wall times."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}
    walls: list[dict[str, float]] = []
    for _ in range(repeat):
        walls.append({})
        for name, command in commands.items():
            run = _measure(command)
            runs[name].append(run)
            walls[-1][name] = run["wall"]
    return {name: _summary(name_runs) for name, name_runs in runs.items()}, walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="also leave the generated chain at this path")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        chain = arguments.keep or Path(folder) / "chain.jsonl"
        key = Path(folder) / "seal-key.pem"
        signed = generate_chain(chain, arguments.events, key)
        verify_command = [sys.executable, "-m", "agentops_verify", "--format", "json"]
        if signed:
            verify_command += ["--trusted-key", str(key)]
        summaries, walls = _rounds(
            {
                "verifier": [*verify_command, str(chain)],
                "serial": [sys.executable, "-c", SERIAL_SCRIPT, str(chain), *([str(key)] if signed else [])],
                "floor": [sys.executable, "-c", FLOOR_SCRIPT, str(chain)],
            },
            arguments.repeat,
        )
        verifier, serial, floor = summaries["verifier"], summaries["serial"], summaries["floor"]
        report = json.loads(subprocess.run([*verify_command, str(chain)], capture_output=True, check=False).stdout)
        size = chain.stat().st_size
    ratio = verifier["wall_seconds"] / floor["wall_seconds"]
    print(
        json.dumps(
            {
                "events": arguments.events + 1,
                "file_bytes": size,
                "mean_event_bytes": round(size / (arguments.events + 1)),
                "seal_signed": signed,
                "verifier_status": report["status"],
                "verifier_evidence_class": report["evidence_class"],
                "verifier_wall_seconds": round(verifier["wall_seconds"], 3),
                "floor_wall_seconds": round(floor["wall_seconds"], 3),
                "ratio": round(ratio, 3),
                "median_round_ratio": round(statistics.median(r["verifier"] / r["floor"] for r in walls), 3),
                "verifier_cpu_seconds": round(verifier["cpu_seconds"], 3),
                "floor_cpu_seconds": round(floor["cpu_seconds"], 3),
                "serial_verifier_wall_seconds": round(serial["wall_seconds"], 3),
                "serial_verifier_cpu_seconds": round(serial["cpu_seconds"], 3),
                "serial_ratio": round(serial["wall_seconds"] / floor["wall_seconds"], 3),
                "serial_cpu_ratio": round(serial["cpu_seconds"] / floor["cpu_seconds"], 3),
                "cpus_available": len(os.sched_getaffinity(0)),
                "verifier_peak_rss_mb": round(verifier["peak_rss_mb"], 1),
                "floor_peak_rss_mb": round(floor["peak_rss_mb"], 1),
                "target_ratio": TARGET_RATIO,
                "target_peak_rss_mb": TARGET_RSS_MB,
                "meets_targets": ratio <= TARGET_RATIO and verifier["peak_rss_mb"] <= TARGET_RSS_MB,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
