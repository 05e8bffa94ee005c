"""The sealer publishing the evidence log, over moto (S3 Object Lock, KMS with real ECDSA) and in-memory tables.

``LogWorld`` holds one deployment: the chain store, the log state, the bucket's ``log/`` objects, the KMS seal key;
it seals sessions the way the scheduled sealer does and reads the bucket back the way an auditor does.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from agentops_server.aws.evidence_log_s3 import S3LogObjects
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.evidence_log import MAX_LEAVES_PER_PUBLICATION, LogObjects, LogStateStore
from agentops_server.evidence_log_memory import InMemoryLogState
from agentops_server.evidence_log_publisher import EvidenceLogPublisher
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import DEFAULT_SEAL_LIMIT, Sealer
from agentops_server.signing import Signer
from agentops_verify import Checkpoint, PublicKey, load_pem_public_key, verify_checkpoint
from agentops_verify._logaudit_cli import main as log_audit

from infra.resources import create_seal_key
from tests.functional.conftest import BUCKET, REGION
from tests.functional.seal.conftest import IDLE_SECONDS, SERVICE_ID, T0, ingest_session

ORIGIN = "agentops-replay-test/evidence-log"


class CountingSigner:
    """A ``Signer`` that counts the checkpoints it signs (note texts start with the origin line)."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self.checkpoint_signatures = 0

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    @property
    def public_key_pem(self) -> str:
        return self._signer.public_key_pem

    def sign(self, message: bytes) -> bytes:
        if message.startswith(ORIGIN.encode() + b"\n"):
            self.checkpoint_signatures += 1
        return self._signer.sign(message)


@dataclass
class LogWorld:
    s3: Any
    kms: Any
    store: InMemoryChainStore
    log_state: InMemoryLogState
    signer: CountingSigner
    objects: S3LogObjects = field(init=False)
    now: datetime = T0

    def __post_init__(self) -> None:
        self.objects = S3LogObjects(self.s3, BUCKET)

    def publisher(
        self,
        *,
        state: LogStateStore | None = None,
        objects: LogObjects | None = None,
        signer: Signer | None = None,
        max_leaves: int = MAX_LEAVES_PER_PUBLICATION,
    ) -> EvidenceLogPublisher:
        return EvidenceLogPublisher(
            state if state is not None else self.log_state,
            objects if objects is not None else self.objects,
            signer if signer is not None else self.signer,
            ORIGIN,
            max_leaves=max_leaves,
        )

    def sealer(
        self,
        publisher: EvidenceLogPublisher | None = None,
        *,
        store: Any = None,
        signer: Signer | None = None,
        limit: int = DEFAULT_SEAL_LIMIT,
    ) -> Sealer:
        return Sealer(
            store if store is not None else self.store,
            signer if signer is not None else self.signer,
            S3Archive(self.s3, BUCKET),
            SERVICE_ID,
            limit=limit,
            evidence_log=publisher if publisher is not None else self.publisher(),
        )

    def ingest(self, count: int = 1) -> list[str]:
        """``count`` ended sessions, stored and due for sealing at the next run."""
        return [ingest_session(self.store, 4 + number % 3, accepted_at=self.now) for number in range(count)]

    def run(self, sealer: Sealer | None = None) -> list[str]:
        """One scheduled sealer run, ten minutes after the previous one."""
        self.now += timedelta(minutes=10)
        return (sealer if sealer is not None else self.sealer()).seal_due_sessions(self.now)

    def keys(self) -> list[PublicKey]:
        return [load_pem_public_key(record.public_key_pem) for record in S3Archive(self.s3, BUCKET).published_keys()]

    def checkpoint(self) -> Checkpoint:
        return verify_checkpoint(self.object("log/checkpoint"), self.keys())

    def object(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def versions(self, prefix: str) -> list[dict[str, Any]]:
        listed = self.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
        return [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]

    def checkpoint_history(self) -> list[Checkpoint]:
        """Every version of ``log/checkpoint`` the bucket keeps, oldest first, each verified."""
        # S3 lists the versions of a key newest first.
        versions = [version for version in self.versions("log/checkpoint") if version["Key"] == "log/checkpoint"]
        versions.reverse()
        notes = [
            self.s3.get_object(Bucket=BUCKET, Key="log/checkpoint", VersionId=version["VersionId"])["Body"].read()
            for version in versions
        ]
        return [verify_checkpoint(note, self.keys()) for note in notes]

    def download(self, destination: Path) -> Path:
        """The bucket's ``log/``, ``sessions/`` and ``keys/`` as an auditor downloads them (latest versions)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET):
            for entry in page.get("Contents", []):
                target = destination / entry["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.object(entry["Key"]))
        return destination

    def audit(self, tmp_path: Path, *, archives: bool = True) -> tuple[int, str]:
        """``agentops-log-audit`` over a fresh download, with the published keys pinned."""
        root = self.download(tmp_path / f"download-{len(list(tmp_path.iterdir()))}")
        arguments = ["--log-key", str(root / "keys/index.json"), str(root / "log")]
        if archives:
            arguments[2:2] = ["--archives", str(root / "sessions")]
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            status = log_audit(arguments)
        return status, output.getvalue()


@pytest.fixture
def kms(aws: None) -> Any:
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def world(s3: Any, kms: Any) -> LogWorld:
    signer = CountingSigner(KmsSigner(kms, create_seal_key(kms)))
    return LogWorld(s3, kms, InMemoryChainStore(seal_idle_seconds=IDLE_SECONDS), InMemoryLogState(), signer)
