"""Evidence log audit: does its memory stay flat as the log grows (LOG.md section 6)?

Publishes logs of ``--sizes`` leaves (default 10,000, 40,000 and 160,000) the way the sealer does (``TileBuilder``
tiles and entry bundles, a checkpoint signed by a P-256 key made with ``cryptography``), with realistic leaves (JCS
of the seven keys, about 330 bytes, distinct random session ids). Then it runs ``agentops-log-audit`` over each
(log only: archives are per-session files whose check is the verifier's own streaming) in a fresh subprocess and
reports wall seconds, leaves per second and peak RSS. The same-run baseline is a subprocess that only imports the
verifier package: the audit's own memory is the difference. Target: the peak RSS of the largest log within 8 MiB of
the smallest's. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from agentops_verify import Checkpoint, LogLeaf, TileBuilder, load_pem_public_key, sign_checkpoint
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

TARGET_GROWTH_MIB = 8
ORIGIN = "benchmark.example/evidence-log"
# P-256 group order, for the low-s normalization the sealer applies to KMS signatures (ELS section 5).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# Runs argv[1:] as a child, then prints its wall time, exit status and peak RSS (KiB on Linux).
WRAPPER_SCRIPT = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
completed = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "returncode": completed.returncode, "maxrss_kib": usage.ru_maxrss}))
"""
AUDIT_SCRIPT = "import sys; from agentops_verify._logaudit_cli import main; sys.exit(main())"
BASELINE_SCRIPT = "import agentops_verify._logaudit_cli"


def _leaf(index: int) -> bytes:
    digest = hashlib.sha256(index.to_bytes(8, "big")).hexdigest()
    return LogLeaf(
        session_id=str(uuid.uuid4()),
        seal_event_hash=digest,
        event_count=10 + index % 5000,
        seal_timestamp="2026-03-01T12:00:00.000Z",
        signer_key_id="sha256:" + digest[::-1],
        archive_sha256=hashlib.sha256(digest.encode()).hexdigest(),
    ).to_bytes()


def _publish(directory: Path, size: int, private_key: ec.EllipticCurvePrivateKey, public_pem: bytes) -> None:
    builder = TileBuilder()

    def write(path: str, data: bytes) -> None:
        target = directory.joinpath(*path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    for index in range(size):
        for tile in builder.append(_leaf(index)):
            write(tile.path, tile.data)
    for tile in builder.partial_tiles():
        write(tile.path, tile.data)

    def sign(message: bytes) -> bytes:
        r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
        return encode_dss_signature(r, min(s, P256_ORDER - s))

    checkpoint = Checkpoint(ORIGIN, builder.size, builder.root())
    write("checkpoint", sign_checkpoint(checkpoint, key=load_pem_public_key(public_pem), sign=sign))


def _measure(command: list[str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-c", WRAPPER_SCRIPT, *command], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    arguments = parser.parse_args()
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    baseline = _measure([sys.executable, "-c", BASELINE_SCRIPT])
    runs = []
    with tempfile.TemporaryDirectory() as temporary:
        key_file = Path(temporary) / "log-key.pem"
        key_file.write_bytes(public_pem)
        for size in sorted(arguments.sizes):
            log_dir = Path(temporary) / f"log-{size}"
            _publish(log_dir, size, private_key, public_pem)
            audit = _measure([sys.executable, "-c", AUDIT_SCRIPT, "--log-key", str(key_file), str(log_dir)])
            if audit["returncode"] != 0:
                raise SystemExit(f"the audit of {size} leaves did not pass (exit {audit['returncode']})")
            runs.append(
                {
                    "leaves": size,
                    "wall_seconds": round(audit["wall"], 2),
                    "leaves_per_second": round(size / audit["wall"]),
                    "peak_rss_mib": round(audit["maxrss_kib"] / 1024, 1),
                }
            )
    growth = runs[-1]["peak_rss_mib"] - runs[0]["peak_rss_mib"]
    print(
        json.dumps(
            {
                "benchmark": "log_audit_memory",
                "baseline_import_peak_rss_mib": round(baseline["maxrss_kib"] / 1024, 1),
                "runs": runs,
                "peak_rss_growth_mib": round(growth, 1),
                "target_growth_mib": TARGET_GROWTH_MIB,
                "meets_target": growth <= TARGET_GROWTH_MIB,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
