"""Crash injection: the sealer dies before or after each step; the next run finishes the job exactly once.

Steps of one seal (agentops_server.sealing): persist the seal batch, fold it into the head, mark SEALING, write the
archive, mark SEALED. Whatever step the process dies at, a rerun must leave one seal in the chain, one archive object
version holding exactly the stored chain, and the seal that was persisted before the crash (never a second signature).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from agentops_server.archive import session_archive_key
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import Sealer
from agentops_server.store import STATUS_SEALED

from tests.functional.conftest import BUCKET
from tests.functional.seal.conftest import SERVICE_ID, T0, archive_versions, head_of, ingest_session, stored_lines
from tests.functional.seal.verify import verify_archive

STORE_STEPS = ("put_batch", "advance_head", "mark_sealing", "mark_sealed")
ARCHIVE_STEPS = ("write_session",)


class CrashError(BaseException):
    """The sealer's process died here: not an exception any code can catch, so not an ``Exception``."""


class CrashAt:
    """Wraps a store or an archive; the named method dies just before or just after doing its work."""

    def __init__(self, target: Any, method: str, when: str) -> None:
        self._target = target
        self._method = method
        self._when = when

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute

        def dying(*arguments: Any, **keywords: Any) -> Any:
            if self._when == "before":
                raise CrashError(f"died before {name}")
            attribute(*arguments, **keywords)
            raise CrashError(f"died after {name}")

        return dying


def crashing_sealer(store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive, step: str, when: str) -> Sealer:
    crashing_store: Any = CrashAt(store, step, when) if step in STORE_STEPS else store
    crashing_archive: Any = CrashAt(archive, step, when) if step in ARCHIVE_STEPS else archive
    return Sealer(crashing_store, signer, crashing_archive, SERVICE_ID)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", [*STORE_STEPS[:3], *ARCHIVE_STEPS, STORE_STEPS[3]])
def test_crash_at_any_step_then_rerun_seals_once_with_identical_bytes(
    store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive, s3: Any, *, step: str, when: str
) -> None:
    session_id = ingest_session(store, 7)
    with pytest.raises(CrashError):
        crashing_sealer(store, signer, archive, step, when).seal_due_sessions(T0)
    tail = store.tail(session_id)
    assert tail is not None
    seal_before_rerun = tail.lines[0] if tail.is_seal else None

    rerun = Sealer(store, signer, archive, SERVICE_ID).seal_due_sessions(T0 + timedelta(minutes=10))

    finished_before_rerun = (step, when) == ("mark_sealed", "after")
    assert rerun == ([] if finished_before_rerun else [session_id])
    head = store.get_head(session_id)
    assert head is not None
    assert head.status == STATUS_SEALED
    assert head.archive is not None
    lines = stored_lines(store, session_id)
    assert lines.count(b'"event_type":"CHAIN_SEAL"') == 1
    if seal_before_rerun is not None:
        assert lines.splitlines()[-1] == seal_before_rerun  # the persisted seal was reused, not signed again
    versions = archive_versions(s3, session_archive_key(session_id))
    assert [version["VersionId"] for version in versions] == [head.archive.version_id]
    body = s3.get_object(Bucket=BUCKET, Key=head.archive.key, VersionId=head.archive.version_id)["Body"].read()
    assert body == lines
    assert verify_archive(body, signer.public_key_pem.encode()).evidence_class == "AUTHORITATIVE_EVIDENCE"
    assert head.evidence_class == "AUTHORITATIVE_EVIDENCE"


def test_session_stuck_in_sealing_is_finished_by_the_next_run_and_only_once(
    store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive, s3: Any
) -> None:
    session_id = ingest_session(store)
    with pytest.raises(CrashError):
        crashing_sealer(store, signer, archive, "write_session", "before").seal_due_sessions(T0)
    assert head_of(store, session_id).status == "SEALING"

    sealer = Sealer(store, signer, archive, SERVICE_ID)
    assert sealer.seal_due_sessions(T0 + timedelta(minutes=5)) == [session_id]
    assert sealer.seal_due_sessions(T0 + timedelta(minutes=10)) == []
    assert len(archive_versions(s3, session_archive_key(session_id))) == 1
