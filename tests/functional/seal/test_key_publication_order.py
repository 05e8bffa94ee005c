"""A key is published before it signs (ELS section 8 rev 2; docs/key-rotation.md): a sealer whose key object or key
index cannot be written signs nothing, seals nothing and archives nothing, and a rotated sealer's first signature
comes after its key object and the grown key index are in the bucket."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from agentops_server.archive import KEYS_INDEX_KEY, ArchiveUnavailableError, public_key_object_key
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import Sealer
from agentops_server.store import STATUS_SEALED, SigningKeyRecord

from infra.resources import create_seal_key
from tests.functional.conftest import BUCKET
from tests.functional.seal.conftest import SERVICE_ID, T0, after_idle, head_of, ingest_session


class RecordingSigner:
    """The KMS signer, with every signature noted in ``steps``."""

    def __init__(self, inner: KmsSigner, steps: list[str]) -> None:
        self._inner = inner
        self._steps = steps

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def public_key_pem(self) -> str:
        return self._inner.public_key_pem

    def sign(self, message: bytes) -> bytes:
        self._steps.append(f"sign {self.key_id}")
        return self._inner.sign(message)


class RecordingArchive(S3Archive):
    """The S3 archive, with key publications noted in ``steps``; ``refuse`` names the publication that fails."""

    def __init__(self, s3: Any, steps: list[str], refuse: str | None = None) -> None:
        super().__init__(s3, BUCKET)
        self._steps = steps
        self._refuse = refuse

    def publish_key(self, key: SigningKeyRecord) -> None:
        self._step("publish_key", key.signer_key_id)
        super().publish_key(key)

    def publish_key_index(self, keys: Sequence[SigningKeyRecord]) -> None:
        self._step("publish_key_index", ",".join(sorted(key.signer_key_id for key in keys)))
        super().publish_key_index(keys)

    def _step(self, name: str, what: str) -> None:
        if self._refuse == name:
            raise ArchiveUnavailableError(f"injected: {name} refused")
        self._steps.append(f"{name} {what}")


def _objects(s3: Any, prefix: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


@pytest.mark.parametrize("refused", ["publish_key", "publish_key_index"])
def test_a_sealer_whose_key_cannot_be_published_signs_nothing(
    store: InMemoryChainStore, signer: KmsSigner, s3: Any, refused: str
) -> None:
    steps: list[str] = []
    session_id = ingest_session(store)
    sealer = Sealer(store, RecordingSigner(signer, steps), RecordingArchive(s3, steps, refuse=refused), SERVICE_ID)

    with pytest.raises(ArchiveUnavailableError):
        sealer.seal_due_sessions(T0)

    assert not [step for step in steps if step.startswith("sign ")]
    assert head_of(store, session_id).status != STATUS_SEALED
    assert _objects(s3, "sessions/") == []


def test_a_rotated_sealer_publishes_its_key_and_the_grown_index_before_its_first_signature(
    store: InMemoryChainStore, signer: KmsSigner, kms: Any, s3: Any
) -> None:
    steps: list[str] = []
    first = ingest_session(store)
    Sealer(store, signer, S3Archive(s3, BUCKET), SERVICE_ID).seal_due_sessions(T0)
    new_signer = KmsSigner(kms, create_seal_key(kms))
    second = ingest_session(store, accepted_at=after_idle(T0))
    rotated = Sealer(store, RecordingSigner(new_signer, steps), RecordingArchive(s3, steps), SERVICE_ID)

    assert rotated.seal_due_sessions(after_idle(T0)) == [second]

    both = ",".join(sorted([signer.key_id, new_signer.key_id]))
    first_signature = steps.index(f"sign {new_signer.key_id}")
    assert steps[:first_signature] == [f"publish_key {new_signer.key_id}", f"publish_key_index {both}"]
    index = json.loads(s3.get_object(Bucket=BUCKET, Key=KEYS_INDEX_KEY)["Body"].read())
    assert sorted(key["signer_key_id"] for key in index["keys"]) == sorted([signer.key_id, new_signer.key_id])
    for key_id in (signer.key_id, new_signer.key_id):
        assert public_key_object_key(key_id) in _objects(s3, "keys/")
    assert head_of(store, first).status == STATUS_SEALED
