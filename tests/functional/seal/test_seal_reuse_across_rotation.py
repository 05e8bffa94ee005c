"""A seal stored but not yet archived when the seal key changes (ELS section 8 rev 2; docs/key-rotation.md).

The sealer stores a session's seal before it archives it; a run that stops in between leaves the session in SEALING
for the next run. When the next run has a new key (a rotation), it finishes the session with the seal already stored:
the previous key is in the published key set, so its seal is reused, never signed again. A seal under a key that is
not published (one the table alone could name) is still a forgery: refused, alarmed and never archived.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from agentops_server.archive import KEYS_INDEX_KEY, public_key_object_key, session_archive_key
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import ALARM_SEAL_FORGERY, Sealer
from agentops_server.store import STATUS_SEALED, ArchiveRef

from infra.resources import create_seal_key
from tests.functional.conftest import BUCKET
from tests.functional.seal.conftest import (
    SERVICE_ID,
    T0,
    after_idle,
    archive_versions,
    head_of,
    ingest_session,
    store_events,
    stored_lines,
)
from tests.functional.seal.verify import verify_archive
from tests.support.chains import build_chain, rehash_from
from tests.support.keys import TestSigner


class StopBeforeArchivingError(BaseException):
    """The sealer's run ended after the seal was stored, before the archive was written (a timeout, a crash)."""


class ArchiveThatStopsTheRun(S3Archive):
    def write_session(self, session_id: str, lines: Iterable[bytes], sha256: str) -> ArchiveRef:
        raise StopBeforeArchivingError(f"the run ended before {session_id} was archived")


def _key_objects(s3: Any) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="keys/").get("Contents", [])
    return sorted(item["Key"] for item in listing if item["Key"] != KEYS_INDEX_KEY)


def _forgery_alarms(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        getattr(record, "session_id", "")
        for record in caplog.records
        if getattr(record, "alarm", None) == ALARM_SEAL_FORGERY
    ]


def test_a_seal_stored_under_the_previous_key_is_archived_after_rotation(
    store: InMemoryChainStore, signer: KmsSigner, kms: Any, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = ingest_session(store, 7)
    with pytest.raises(StopBeforeArchivingError):
        Sealer(store, signer, ArchiveThatStopsTheRun(s3, BUCKET), SERVICE_ID).seal_due_sessions(T0)
    assert head_of(store, session_id).status == "SEALING"
    seal_under_the_previous_key = stored_lines(store, session_id).splitlines()[-1]

    rotated_signer = KmsSigner(kms, create_seal_key(kms))
    rotated = Sealer(store, rotated_signer, S3Archive(s3, BUCKET), SERVICE_ID)
    with caplog.at_level(logging.INFO, logger="agentops_server.sealing"):
        sealed = rotated.seal_due_sessions(T0 + timedelta(minutes=10))

    assert sealed == [session_id]
    assert _forgery_alarms(caplog) == []
    head = head_of(store, session_id)
    assert head.status == STATUS_SEALED
    assert head.evidence_class == "AUTHORITATIVE_EVIDENCE"
    assert head.archive is not None
    lines = stored_lines(store, session_id)
    assert lines.count(b'"event_type":"CHAIN_SEAL"') == 1
    assert lines.splitlines()[-1] == seal_under_the_previous_key  # reused, not signed again with the new key
    assert json.loads(seal_under_the_previous_key)["payload"]["signer_key_id"] == signer.key_id
    versions = archive_versions(s3, session_archive_key(session_id))
    assert [version["VersionId"] for version in versions] == [head.archive.version_id]
    body = s3.get_object(Bucket=BUCKET, Key=head.archive.key, VersionId=head.archive.version_id)["Body"].read()
    assert body == lines
    published = s3.get_object(Bucket=BUCKET, Key=KEYS_INDEX_KEY)["Body"].read()
    assert verify_archive(body, published).evidence_class == "AUTHORITATIVE_EVIDENCE"
    assert rotated.seal_due_sessions(T0 + timedelta(minutes=20)) == []


@pytest.mark.parametrize("forgery", ["signed_by_an_unpublished_key", "claims_the_previous_key_id"])
def test_a_seal_under_an_unpublished_key_is_still_refused_after_rotation(
    store: InMemoryChainStore,
    signer: KmsSigner,
    kms: Any,
    s3: Any,
    caplog: pytest.LogCaptureFixture,
    *,
    forgery: str,
) -> None:
    genuine = ingest_session(store)
    assert Sealer(store, signer, S3Archive(s3, BUCKET), SERVICE_ID).seal_due_sessions(T0) == [genuine]
    attacker = TestSigner()
    forged = build_chain(6, end=True, seal="signed", signer=attacker, start_time=after_idle(T0))
    if forgery == "claims_the_previous_key_id":  # the attacker's signature under the name of a published key
        forged[-1]["payload"]["signer_key_id"] = signer.key_id
        forged = rehash_from(forged, len(forged) - 1)
    store_events(store, forged, accepted_at=after_idle(T0))  # batches of three: the seal is a batch of its own
    victim: str = forged[0]["session_id"]
    rotated_signer = KmsSigner(kms, create_seal_key(kms))
    rotated = Sealer(store, rotated_signer, S3Archive(s3, BUCKET), SERVICE_ID)

    with caplog.at_level(logging.ERROR, logger="agentops_server.sealing"):
        sealed = rotated.seal_due_sessions(after_idle(after_idle(T0)))

    assert sealed == []
    assert _forgery_alarms(caplog) == [victim]
    head = head_of(store, victim)
    assert head.status != STATUS_SEALED
    assert head.seal_refused_reason is not None
    assert head.seal_refused_reason.startswith("SEAL_FORGERY")
    assert archive_versions(s3, session_archive_key(victim)) == []
    assert _key_objects(s3) == sorted(public_key_object_key(key.key_id) for key in (signer, rotated_signer))
    assert rotated.seal_due_sessions(after_idle(after_idle(T0)) + timedelta(minutes=10)) == []
    assert archive_versions(s3, session_archive_key(victim)) == []


def test_a_sealer_finishes_a_seal_stored_under_a_key_published_after_it_started(
    store: InMemoryChainStore, signer: KmsSigner, kms: Any, s3: Any
) -> None:
    """During a rotation both keys' sealers may run: the old one reads the key objects again for a key it has not
    seen, instead of calling the new key's seal a forgery."""
    first = ingest_session(store)
    running = Sealer(store, signer, S3Archive(s3, BUCKET), SERVICE_ID)
    assert running.seal_due_sessions(T0) == [first]  # its key set, read once: the previous key alone
    second = ingest_session(store, accepted_at=after_idle(T0))
    next_signer = KmsSigner(kms, create_seal_key(kms))
    with pytest.raises(StopBeforeArchivingError):
        Sealer(store, next_signer, ArchiveThatStopsTheRun(s3, BUCKET), SERVICE_ID).seal_due_sessions(after_idle(T0))

    assert running.seal_due_sessions(after_idle(after_idle(T0))) == [second]

    body = stored_lines(store, second)
    assert json.loads(body.splitlines()[-1])["payload"]["signer_key_id"] == next_signer.key_id
    assert head_of(store, second).evidence_class == "AUTHORITATIVE_EVIDENCE"
