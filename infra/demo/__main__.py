"""`make demo`: record a real agent run, seal it, export it and verify everything offline, then show a tamper.

Runs entirely on this machine: the local stack (moto + the real Lambda handlers) in a subprocess, the demo agent in
this process with the SDK's LangChain handler, and the verifier CLI as an auditor would run it. Exit status 0 only
when the genuine evidence verifies as AUTHORITATIVE_EVIDENCE and its inclusion in the evidence log checks out, the log
audit passes over a download of the bucket and names a session whose archive is left out, and the tampered copy
fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from agentops_replay import AgentOpsClient
from agentops_replay.integrations.langchain import AgentOpsCallbackHandler

from infra.api_client import ApiClient
from infra.demo.support_agent import run_support_agent
from infra.launcher import running_local_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT_ACCESS_KEY = "AKIDDEMOSUPPORTAGENT"
AUDITOR_ACCESS_KEY = "AKIDDEMOAUDITOR00001"
SECRET_KEY = "local-demo-secret"  # noqa: S105 - the local stack reads the identity from the access key id only
REGION = "us-east-1"


def _step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}", flush=True)


def _download(url: str, target: Path) -> Path:
    with urllib.request.urlopen(url, timeout=60) as response:  # presigned URL of the local moto server
        target.write_bytes(response.read())
    return target


def _expect(response: Any, status: int, what: str) -> Any:
    if response.status != status:
        raise RuntimeError(f"{what}: HTTP {response.status}: {response.body.decode(errors='replace')}")
    return response.json()


def _verify(arguments: list[str], keys_file: Path) -> subprocess.CompletedProcess[str]:
    arguments = ["--trusted-key", _relative(keys_file), *arguments]
    print("$ agentops-verify " + " ".join(arguments), flush=True)
    command = [sys.executable, "-m", "agentops_verify", *arguments]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    print(result.stdout.rstrip(), flush=True)
    if result.stderr.strip():
        print(result.stderr.rstrip(), file=sys.stderr, flush=True)
    return result


def _audit(bucket_copy: Path, keys_file: Path) -> subprocess.CompletedProcess[str]:
    arguments = ["--log-key", _relative(keys_file), "--archives", _relative(bucket_copy / "sessions")]
    arguments.append(_relative(bucket_copy / "log"))
    print("$ agentops-log-audit " + " ".join(arguments), flush=True)
    command = [str(Path(sys.executable).parent / "agentops-log-audit"), *arguments]  # installed with the verifier
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    print(result.stdout.rstrip(), flush=True)
    if result.stderr.strip():
        print(result.stderr.rstrip(), file=sys.stderr, flush=True)
    return result


def _download_bucket(info: dict[str, Any], target: Path) -> Path:
    """What an auditor with read access fetches from the archive bucket (``aws s3 sync``): ``log/`` and
    ``sessions/``."""
    s3 = boto3.client(
        "s3",
        endpoint_url=info["aws_endpoint"],
        region_name=info["region"],
        aws_access_key_id="local-demo",
        aws_secret_access_key="local-demo",  # noqa: S106 - moto accepts any credentials
    )
    shutil.rmtree(target, ignore_errors=True)
    for prefix in ("log/", "sessions/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=info["archive_bucket"], Prefix=prefix):
            for entry in page.get("Contents", []):
                path = target / entry["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=info["archive_bucket"], Key=entry["Key"])["Body"].read())
    return target


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _record_agent_run(base_url: str) -> str:
    # The SDK signs with the default AWS credential chain; these stand in for the agent's IAM role.
    os.environ.update(
        AWS_ACCESS_KEY_ID=AGENT_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
    )
    client = AgentOpsClient(base_url, region=REGION, flush_interval=0.2)
    with client.session("customer-support-agent", tags=["demo"], environment="dev", framework="langchain") as session:
        answer = run_support_agent([AgentOpsCallbackHandler(session)])
        session_id = session.session_id
    print(f"agent answered: {answer}")
    if not client.flush(timeout=30):
        raise RuntimeError(f"the SDK could not deliver every event: {client.stats()}")
    stats = client.stats()
    client.close(timeout=5)
    print(f"session {session_id}: {stats['sent']} events delivered, {stats['dropped']} dropped")
    return session_id


def _print_auditor_commands(endpoint: str, session_id: str, key_id: str, output_dir: Path) -> None:
    """The commands that list, show, verify and export this session; any running stack takes the same commands."""
    viewer = _relative(output_dir / "viewer-cli.html")
    for line in (
        f"export AGENTOPS_ENDPOINT={endpoint}",
        f"export AWS_ACCESS_KEY_ID={AUDITOR_ACCESS_KEY} AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION={REGION}",
        "agentops-replay sessions --agent-id customer-support-agent",
        f"agentops-replay show {session_id}",
        f"agentops-replay verify {session_id} --trusted-key {key_id} --require-authoritative",
        f"agentops-replay export {session_id} --format html --out {viewer}",
    ):
        print(f"$ {line}")
    print("(the demo's stack stops when the demo ends; against `make dev` or a deployment, set its endpoint)")


def _tamper(chain: Path, target: Path) -> int:
    """Change one tool result in a copy of the chain, the way someone covering their tracks would."""
    lines = chain.read_bytes().split(b"\n")
    for index, line in enumerate(lines):
        if not line:
            continue
        event = json.loads(line)
        if event["event_type"] == "TOOL_RESULT":
            event["payload"]["status"] = "error" if event["payload"].get("status") != "error" else "success"
            lines[index] = json.dumps(event, separators=(",", ":")).encode()
            target.write_bytes(b"\n".join(lines))
            sequence: int = event["sequence_number"]
            return sequence
    raise RuntimeError("the chain holds no TOOL_RESULT to tamper with")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "demo-output", help="where the evidence goes")
    output_dir: Path = parser.parse_args(argv).output.resolve()
    started = time.monotonic()
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        _step(1, "Starting the local stack (moto + the real Lambda handlers)")
        with running_local_stack(Path(scratch) / "local_stack.log") as stack:
            print(f"local stack ready at {stack.base_url}")
            _step(2, "Running the customer-support agent (langchain-core, instrumented with the SDK)")
            session_id = _record_agent_run(stack.base_url)

            _step(3, "Sealing the session (KMS-signed CHAIN_SEAL, archived under S3 Object Lock)")
            sealed = stack.seal_now()
            if session_id not in sealed:
                raise RuntimeError(f"the sealer did not seal {session_id}: {sealed}")
            auditor = ApiClient(stack.base_url, access_key_id=AUDITOR_ACCESS_KEY)
            view = _expect(auditor.get(f"/v1/sessions/{session_id}"), 200, "session view")
            print(f"status {view['status']}, {view['event_count']} events, class {view['evidence_class']}")

            _step(4, "Downloading the evidence as an auditor would")
            chain_ref = _expect(auditor.get(f"/v1/sessions/{session_id}/chain"), 200, "chain")
            chain = _download(chain_ref["url"], output_dir / "chain.jsonl")
            keys = _expect(auditor.get("/v1/keys"), 200, "keys")
            keys_file = output_dir / "keys.json"
            keys_file.write_text(json.dumps(keys, indent=2) + "\n")
            exports = {
                "export.json": {"format": "json", "withhold_payloads": False},
                "export-selective.json": {"format": "json", "withhold_payloads": True},
                "report.pdf": {"format": "pdf", "withhold_payloads": False},
                "viewer.html": {"format": "html", "withhold_payloads": False},
            }
            written = [chain, keys_file]
            for name, body in exports.items():
                created = _expect(auditor.post(f"/v1/sessions/{session_id}/exports", body), 201, f"export {name}")
                written.append(_download(created["url"], output_dir / name))
            for path in written:
                print(f"  {_relative(path)}  ({path.stat().st_size} bytes)")
            log_proof = _expect(auditor.get(f"/v1/sessions/{session_id}/log-proof"), 200, "log proof")
            log_proof_file = output_dir / "log-proof.json"
            log_proof_file.write_text(json.dumps(log_proof, indent=2) + "\n")
            bucket_copy = _download_bucket(stack.info, output_dir / "bucket")
            print(f"  {_relative(log_proof_file)}, and the bucket's log/ and sessions/ in {_relative(bucket_copy)}/")
            key_id = str(keys["keys"][0]["signer_key_id"])
            print(f"open {_relative(output_dir / 'viewer.html')} in a browser and pin {key_id} to re-verify it there")

            _step(5, "What an auditor runs with the agentops-replay CLI (here against the demo's stack)")
            _print_auditor_commands(stack.base_url, session_id, key_id, output_dir)

        _step(6, "Verifying offline with the key published at /v1/keys (the stack is stopped now)")
        evidence = [chain, output_dir / "export.json", output_dir / "export-selective.json"]
        # --require-authoritative: exit 0 only if every file is AUTHORITATIVE_EVIDENCE under the pinned key.
        genuine_ok = _verify(["--require-authoritative", *map(_relative, evidence)], keys_file).returncode == 0
        # The chain is in the deployment's evidence log: its leaf and inclusion proof check against the signed
        # checkpoint, under the same pinned key.
        log_arguments = ["--log-key", _relative(keys_file), "--log-proof", _relative(log_proof_file)]
        included = _verify(["--require-log-inclusion", *log_arguments, _relative(chain)], keys_file)
        genuine_ok = genuine_ok and included.returncode == 0

        _step(7, "Tampering: one tool result edited in a copy of the chain")
        tampered = output_dir / "chain-tampered.jsonl"
        sequence = _tamper(chain, tampered)
        print(f"edited the payload of event {sequence} in {_relative(tampered)}")
        forged = _verify([_relative(tampered)], keys_file)
        tamper_caught = forged.returncode == 1 and f"sequence {sequence}" in forged.stdout

        _step(8, "Auditing the evidence log over the downloaded bucket: every sealed session present and intact")
        audit_ok = _audit(bucket_copy, keys_file).returncode == 0
        missing_copy = output_dir / "bucket-missing"
        shutil.rmtree(missing_copy, ignore_errors=True)
        shutil.copytree(bucket_copy, missing_copy)
        (missing_copy / "sessions" / f"{session_id}.jsonl").unlink()
        print(f"removed sessions/{session_id}.jsonl from a copy, as if the deployment had withheld it")
        missing = _audit(missing_copy, keys_file)
        missing_caught = missing.returncode == 1 and "MISSING" in missing.stdout and session_id in missing.stdout

    print()
    print(f"genuine evidence verified: {'yes' if genuine_ok else 'NO'}")
    print(f"tampered copy rejected at event {sequence}: {'yes' if tamper_caught else 'NO'}")
    print(f"evidence log audit passed: {'yes' if audit_ok else 'NO'}")
    print(f"withheld archive reported MISSING: {'yes' if missing_caught else 'NO'}")
    print(f"demo finished in {time.monotonic() - started:.1f}s; files are in {_relative(output_dir)}/")
    return 0 if genuine_ok and tamper_caught and audit_ok and missing_caught else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as failure:  # a step of the demo failed: say which, without a traceback
        print(f"\ndemo failed: {failure}", file=sys.stderr)
        sys.exit(1)
