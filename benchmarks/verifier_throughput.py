"""Verifier throughput on a realistic archive against the floor (issue 2, issue 13): how much slower than merely
parsing and hashing every line?

Generates one server-authority session of ``--events`` events (default 100,000, plus a CHAIN_SEAL signed with a fresh
P-256 key when ``cryptography`` is installed, unsigned otherwise) with the content an agent's events carry: messages
drawn from the standard library's docstrings mixed with French and other non-ASCII text and an emoji, model
parameters that are whole-number floats (``temperature: 0.0``, ``top_p: 1.0``), prices such as ``9.995`` in nested
arrays, about 1.1 KB per event. It writes the session twice:

- ``canonical``: one RFC 8785 line per event (``agentops_verify.canonicalize``), as the service archives it; there
  ``1.0`` is written ``1``;
- ``producer``: one ``json.dumps(event)`` line per event, as a Python producer writes it: spaces after ``:`` and
  ``,``, members in insertion order, ``1.0`` and ``0.0`` as written, non-ASCII escaped as ``\\uXXXX`` (an emoji as
  a surrogate pair).

The verifier reads a canonical line by its envelope's text and parses only its payload; a producer's line is parsed
whole, with the hook that refuses repeated member names (``agentops_verify._eventline``).

For each file it times, in fresh subprocesses of the same Python, rounds of (one after another, so each round's
programs see the same load on a shared machine):

- ``cli``: the verifier CLI as a user runs it, ``python -m agentops_verify --format json --trusted-key <pem> FILE``,
  which verifies a large file with one process per available CPU that the load average leaves idle (at most
  four);
- ``one_process``: the same verification in one process (the library's ``verify_file`` default);
- ``floor``: parse-and-hash, the least any verifier does: ``json.loads`` and ``hashlib.sha256(...).hexdigest()`` of
  every line of the same file, in one process.

The CLI's extra processes run at the lowest priority, and none is started while the load average says no CPU is idle:
on a machine whose CPUs are busy with other work the CLI runs as one process, and wall-time ratios say more about the
neighbours than about the verifier (compare the CPU seconds).

With ``--baseline DIR`` (a folder holding another version's ``agentops_verify`` package, such as
``git archive main verifier/src`` unpacked), each round also runs that version's CLI and one-process verification
on the same file (``baseline_*`` figures), so before and after come from one run under the same load.

Wall times are medians over ``--repeat`` rounds; ratios are medians of each round's ratio (both programs measured in
the same round). CPU seconds are user + system of every process. Peak RSS is the largest ``ru_maxrss`` among the
measured program and its worker processes, read by a small wrapper process so programs never share a figure. The load
average before and after the rounds is reported with them: on a shared machine it says how much the wall times owe
to other work. Prints one JSON object. Targets: CLI <= 2.0x the floor, one process <= 3.0x, peak RSS <= 64 MB, and
the CLI no slower than one process; the top-level ``meets_targets`` is the canonical file's (the archive's own
form), and the producer file says how it compares against the same targets.

Not covered (the JSON's ``not_covered`` repeats this): files below the 8 MiB parallel threshold; JSON arrays and
export documents (read whole); tampered chains (the CLI then verifies the file again in one process); machines with
more than two CPUs; a cold page cache (the files were just written); adversarial content (deep nesting, lone
surrogate escapes, astral characters in member names), which takes the exact pure-Python path by design.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentops_verify import canonicalize, chain_event, low_s_signature, seal_signed_bytes

TARGET_CLI_RATIO = 2.0
TARGET_ONE_PROCESS_RATIO = 3.0
TARGET_RSS_MB = 64

NOT_COVERED = (
    "files below the 8 MiB parallel threshold",
    "JSON arrays and export documents (read whole)",
    "tampered chains (the CLI then verifies the whole file again in one process)",
    "machines with more than two CPUs",
    "a cold page cache",
    "adversarial content (deep nesting, lone surrogate escapes, astral characters in member names): exact path",
)

FLOOR_SCRIPT = """
import hashlib, json, sys
with open(sys.argv[1], "rb") as stream:
    for line in stream:
        json.loads(line)
        hashlib.sha256(line).hexdigest()
"""

# Runs argv[1:] as a child, then prints its wall time, exit status, CPU time and peak RSS (KiB on Linux) of the
# child and every process it waited for.
WRAPPER_SCRIPT = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
completed = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "returncode": completed.returncode, "maxrss_kib": usage.ru_maxrss}))
"""

# The same verification in one process (the library's default).
ONE_PROCESS_SCRIPT = """
import sys
from agentops_verify import TrustStore, load_pem_public_key, verify_file
trust = TrustStore([load_pem_public_key(open(sys.argv[2], "rb").read())]) if len(sys.argv) > 2 else None
sys.exit(0 if verify_file(sys.argv[1], trust=trust).passed else 1)
"""

# Text that is not English and not ASCII, as users and models write it.
_FOREIGN = (
    "Pouvez-vous vérifier la facture n° 4521 émise le 3 février ?",
    "Le client a reçu sa commande, mais l’emballage était abîmé.",
    "Merci de préparer un résumé détaillé des dépenses du trimestre.",
    "La réunion est déplacée à jeudi, 14 h 30, salle « Écureuil ».",
    "Nous avons constaté un écart de 12,50 € sur le relevé bancaire.",
    "Pourriez-vous relancer le fournisseur concernant la livraison retardée ?",
    "Ça dépend du contrat : l’échéance tombe fin décembre, après Noël.",
    "Voici les données demandées ; la dernière colonne est estimée.",
    "Déjà traité hier soir, aucune action supplémentaire n’est nécessaire.",
    "Le cœur du problème reste la synchronisation des référentiels.",
    "Bitte prüfen Sie die Größe der Lieferung für München.",
    "¿Podría confirmar el envío a Logroño antes del viernes?",
    "Отчёт за квартал готов к проверке.",
    "請確認這張發票的金額。",
    "Η παραγγελία στάλθηκε χθες το απόγευμα.",
    "東京の倉庫から明日出荷します。",
)
_EMOJI = ("🙂", "🚀", "📦", "✅", "🇫🇷", "🎉", "🤖", "📈", "⚠️", "👍🏽")
_DOCUMENTED = ("json", "textwrap", "collections", "functools", "itertools", "pathlib", "argparse", "logging")


def _docstring_sentences() -> list[str]:
    """Sentences of the standard library's own documentation: varied English prose that ships with every Python."""
    sentences: set[str] = set()
    for name in _DOCUMENTED:
        module = __import__(name)
        for _, member in [("", module), *inspect.getmembers(module)]:
            text = inspect.getdoc(member) if callable(member) or member is module else None
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join((text or "").split())):
                if 20 <= len(sentence) <= 200 and sentence.isascii():
                    sentences.add(sentence)
    return sorted(sentences)


class _Text:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._english = _docstring_sentences()

    def message(self, sentences: int, *, emoji: bool = True) -> str:
        """English docstring sentences with a foreign one among them, and an emoji."""
        parts = self._rng.sample(self._english, sentences)
        parts.insert(self._rng.randrange(len(parts) + 1), self._rng.choice(_FOREIGN))
        if emoji:
            parts.append(self._rng.choice(_EMOJI))
        return " ".join(parts)

    def short(self) -> str:
        return self._rng.choice(self._english)[:60]


def _payloads(rng: random.Random, text: _Text, sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Payloads shaped like a model-and-tools agent's."""
    kind = sequence_number % 4
    digest = hashlib.sha256(str(sequence_number).encode()).hexdigest()
    if kind == 1:
        return "MODEL_REQUEST", {
            "model": "gpt-4o-2024-08-06",
            "provider": "openai",
            "messages": [
                {"role": "system", "content": text.message(1, emoji=False)},
                {"role": "user", "content": text.message(2)},
            ],
            "parameters": {
                "temperature": rng.choice((0.0, 0.0, 0.7, 1.0)),
                "top_p": 1.0,
                "max_tokens": 1024,
                "frequency_penalty": 0.0,
            },
            "prompt_hash": digest,
        }
    if kind == 2:
        return "MODEL_RESPONSE", {
            "model": "gpt-4o-2024-08-06",
            "content": text.message(3),
            "content_hash": digest,
            "finish_reason": "tool_calls",
            "usage": {"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908, "cost_usd": 0.00731},
        }
    if kind == 3:
        return "TOOL_CALL", {
            "tool_name": "orders.create",
            "tool_id": f"call-{sequence_number}",
            "args": {
                "customer": text.short(),
                "note": text.message(1),
                "lines": [[f"SKU-{rng.randrange(10_000)}", rng.randrange(1, 5), rng.choice((9.995, 19.99, 4.5))]],
                "options": {"express": rng.random() < 0.3, "currency": "EUR"},
            },
            "args_hash": digest,
        }
    return "TOOL_RESULT", {
        "tool_name": "orders.create",
        "tool_id": f"call-{sequence_number - 1}",
        "result": {
            "order_id": f"ord-{sequence_number}",
            "prices": [[9.995, 2], [19.99, 1], [rng.randrange(100, 10_000) / 100, 3]],
            "total": {"amount": 1249.5, "currency": "EUR", "tax_rate": 0.2},
            "summary": text.message(1),
        },
        "result_hash": digest,
        "status": "success",
        "duration_ms": rng.randrange(40, 900),
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


def _session(events: int, key_path: Path) -> Iterator[dict[str, Any]]:
    """The session's events in order, the seal last (signed when ``cryptography`` is installed; then the public
    key is written to ``key_path``)."""
    rng = random.Random(13)
    text = _Text(rng)
    session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    previous: dict[str, Any] | None = None
    for sequence_number in range(events):
        payload: dict[str, Any]
        if sequence_number == 0:
            event_type, payload = "SESSION_START", {"agent_id": "bench-agent", "environment": "prod"}
        elif sequence_number == events - 1:
            event_type, payload = "SESSION_END", {"status": "success", "duration_ms": events * 250}
        else:
            event_type, payload = _payloads(rng, text, sequence_number)
        previous = chain_event(
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            session_id=session_id,
            sequence_number=sequence_number,
            timestamp_wall=(start + timedelta(milliseconds=250 * sequence_number)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            event_type=event_type,
            payload=payload,
            prev_event_hash=previous["event_hash"] if previous else None,
            chain_authority="server",
            timestamp_monotonic=sequence_number * 250_000_000,
            source_sdk_ver="agentops-replay-python/0.1.0",
            authority_id="agentops-replay-bench",
        )
        yield previous
    assert previous is not None
    seal_event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    seal: dict[str, Any] = {
        "ingestion_service_id": "agentops-replay-bench",
        "seal_timestamp": "2026-01-02T00:00:00Z",
        "event_count": events,
        "final_event_hash": previous["event_hash"],
        "session_digest": "sha256:" + previous["event_hash"],
    }
    signer = _signer()
    if signer is not None:
        sign, key_id, pem = signer
        seal["signature_algorithm"] = "ECDSA_P256_SHA256"
        seal["signer_key_id"] = key_id
        seal["signature"] = base64.b64encode(sign(seal_signed_bytes(session_id, seal_event_id, seal))).decode()
        key_path.write_text(pem)
    yield chain_event(
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


def generate_files(folder: Path, events: int) -> tuple[Path, Path, Path | None]:
    """Write the session as the archive does (``canonical.jsonl``) and as a Python producer does
    (``producer.jsonl``); returns both paths and the seal key's PEM file (None when the seal is unsigned)."""
    canonical, producer, key = folder / "canonical.jsonl", folder / "producer.jsonl", folder / "seal-key.pem"
    with canonical.open("wb") as canonical_out, producer.open("w", encoding="utf-8", newline="\n") as producer_out:
        for event in _session(events, key):
            canonical_out.write(canonicalize(event) + b"\n")
            producer_out.write(json.dumps(event) + "\n")
    return canonical, producer, key if key.exists() else None


def _measure(command: list[str], *, baseline: Path | None = None) -> dict[str, Any]:
    """Wall and CPU time, exit status and peak RSS of ``command``; with ``baseline``, the verifier imported by it
    and its workers is the one in that folder."""
    env = None if baseline is None else {**os.environ, "PYTHONPATH": str(baseline)}
    completed = subprocess.run(
        [sys.executable, "-c", WRAPPER_SCRIPT, *command], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _median_ratio(rounds: list[dict[str, dict[str, Any]]], numerator: str, denominator: str) -> float:
    return round(statistics.median(float(run[numerator]["wall"] / run[denominator]["wall"]) for run in rounds), 3)


def _file_report(
    path: Path, rounds: list[dict[str, dict[str, Any]]], cli_report: dict[str, Any], *, baseline: bool
) -> dict[str, Any]:
    def median(name: str, figure: str) -> float:
        return round(statistics.median(float(run[name][figure]) for run in rounds), 3)

    def peak_mb(name: str) -> float:
        return round(max(float(run[name]["maxrss_kib"]) for run in rounds) / 1024, 1)

    size = path.stat().st_size
    events = cli_report["event_count"]
    figures: dict[str, Any] = {
        "file_bytes": size,
        "mean_event_bytes": round(size / events),
        "verifier_status": cli_report["status"],
        "verifier_evidence_class": cli_report["evidence_class"],
        "returncodes": sorted({run[name]["returncode"] for run in rounds for name in ("cli", "one_process")}),
        "floor_wall_seconds": median("floor", "wall"),
        "cli_wall_seconds": median("cli", "wall"),
        "one_process_wall_seconds": median("one_process", "wall"),
        "floor_cpu_seconds": median("floor", "cpu"),
        "cli_cpu_seconds": median("cli", "cpu"),
        "one_process_cpu_seconds": median("one_process", "cpu"),
        "cli_ratio": _median_ratio(rounds, "cli", "floor"),
        "one_process_ratio": _median_ratio(rounds, "one_process", "floor"),
        "cli_over_one_process": _median_ratio(rounds, "cli", "one_process"),
        "cli_peak_rss_mb": peak_mb("cli"),
        "one_process_peak_rss_mb": peak_mb("one_process"),
        "floor_peak_rss_mb": peak_mb("floor"),
    }
    if baseline:
        figures.update(
            {
                "baseline_cli_wall_seconds": median("baseline_cli", "wall"),
                "baseline_one_process_wall_seconds": median("baseline_one_process", "wall"),
                "baseline_cli_ratio": _median_ratio(rounds, "baseline_cli", "floor"),
                "baseline_one_process_ratio": _median_ratio(rounds, "baseline_one_process", "floor"),
                "baseline_cli_over_one_process": _median_ratio(rounds, "baseline_cli", "baseline_one_process"),
                "baseline_cli_peak_rss_mb": peak_mb("baseline_cli"),
                "baseline_one_process_peak_rss_mb": peak_mb("baseline_one_process"),
                "baseline_returncodes": sorted(
                    {run[name]["returncode"] for run in rounds for name in ("baseline_cli", "baseline_one_process")}
                ),
            }
        )
    figures["meets_targets"] = (
        figures["cli_ratio"] <= TARGET_CLI_RATIO
        and figures["one_process_ratio"] <= TARGET_ONE_PROCESS_RATIO
        and max(figures["cli_peak_rss_mb"], figures["one_process_peak_rss_mb"]) <= TARGET_RSS_MB
        and figures["cli_over_one_process"] <= 1.0
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the generated files into this folder and leave them there")
    parser.add_argument(
        "--baseline", type=Path, help="a folder holding another agentops_verify to measure in the same rounds"
    )
    arguments = parser.parse_args()
    baseline: Path | None = arguments.baseline.resolve() if arguments.baseline else None
    with tempfile.TemporaryDirectory() as scratch:
        folder = arguments.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        canonical, producer, key = generate_files(folder, arguments.events)
        key_arguments = [str(key)] if key is not None else []
        cli = [sys.executable, "-m", "agentops_verify", "--format", "json"]
        cli += ["--trusted-key", str(key)] if key is not None else []
        rounds: dict[str, list[dict[str, dict[str, Any]]]] = {"canonical": [], "producer": []}
        load_before = os.getloadavg()
        for _ in range(arguments.repeat):
            for name, path in (("canonical", canonical), ("producer", producer)):
                one_process = [sys.executable, "-c", ONE_PROCESS_SCRIPT, str(path), *key_arguments]
                measured = {
                    "cli": _measure([*cli, str(path)]),
                    "one_process": _measure(one_process),
                    "floor": _measure([sys.executable, "-c", FLOOR_SCRIPT, str(path)]),
                }
                if baseline is not None:
                    measured["baseline_cli"] = _measure([*cli, str(path)], baseline=baseline)
                    measured["baseline_one_process"] = _measure(one_process, baseline=baseline)
                rounds[name].append(measured)
        load_after = os.getloadavg()
        files = {}
        for name, path in (("canonical", canonical), ("producer", producer)):
            cli_report = json.loads(subprocess.run([*cli, str(path)], capture_output=True, check=False).stdout)
            files[name] = _file_report(path, rounds[name], cli_report, baseline=baseline is not None)
    print(
        json.dumps(
            {
                "events": arguments.events + 1,
                "seal_signed": key is not None,
                "repeat": arguments.repeat,
                "cpus_available": len(os.sched_getaffinity(0)),
                "load_average_before": [round(load, 2) for load in load_before],
                "load_average_after": [round(load, 2) for load in load_after],
                "baseline": str(baseline) if baseline is not None else None,
                "files": files,
                "targets": {
                    "cli_ratio": TARGET_CLI_RATIO,
                    "one_process_ratio": TARGET_ONE_PROCESS_RATIO,
                    "peak_rss_mb": TARGET_RSS_MB,
                    "cli_over_one_process": 1.0,
                },
                "meets_targets": files["canonical"]["meets_targets"],
                "not_covered": NOT_COVERED,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
