"""The sealer end to end over moto KMS and S3 and the in-memory store: classes, signatures, no reseal, refusal."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from agentops_server.archive import KEYS_INDEX_KEY, public_key_object_key, session_archive_key
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import ALARM_SEAL_REFUSED, Sealer
from agentops_server.signing import SigningKeyMisconfiguredError
from agentops_server.store import STATUS_ENDED, STATUS_OPEN, STATUS_SEALED, SequenceConflictError, StoredBatch
from agentops_verify import canonicalize, chain_event, loads, seal_signed_bytes
from agentops_verify._ecdsa import load_pem_public_key, verify_signature
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infra.resources import create_seal_key
from tests.functional.conftest import BUCKET
from tests.functional.seal.conftest import (
    OWNER,
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
from tests.support.chains import build_chain
from tests.support.keys import TestSigner


@pytest.fixture
def sealer(store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive) -> Sealer:
    return Sealer(store, signer, archive, SERVICE_ID)


def archived(s3: Any, session_id: str) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=session_archive_key(session_id))["Body"].read()
    return body


def published_keys(s3: Any) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=KEYS_INDEX_KEY)["Body"].read()
    return body


def seal_of(archive_body: bytes) -> dict[str, Any]:
    seal: dict[str, Any] = loads(archive_body.splitlines()[-1])
    return seal


def test_ended_session_seals_as_authoritative_evidence(
    store: InMemoryChainStore, sealer: Sealer, signer: KmsSigner, s3: Any
) -> None:
    session_id = ingest_session(store, 6)
    unsealed = stored_lines(store, session_id)

    assert sealer.seal_due_sessions(T0) == [session_id]

    body = archived(s3, session_id)
    assert body.startswith(unsealed)
    assert body == stored_lines(store, session_id)
    seal = seal_of(body)
    last = loads(unsealed.splitlines()[-1])
    assert seal["event_type"] == "CHAIN_SEAL"
    assert seal["sequence_number"] == 6
    assert seal["prev_event_hash"] == last["event_hash"]
    assert seal["chain_authority"] == "server"
    assert seal["payload"]["event_count"] == 6
    assert seal["payload"]["final_event_hash"] == last["event_hash"]
    assert seal["payload"]["session_digest"] == "sha256:" + last["event_hash"]
    assert seal["payload"]["ingestion_service_id"] == SERVICE_ID
    assert seal["payload"]["signature_algorithm"] == "ECDSA_P256_SHA256"
    assert seal["payload"]["signer_key_id"] == signer.key_id

    head = store.get_head(session_id)
    assert head is not None
    assert head.status == STATUS_SEALED
    assert (head.evidence_class, head.partial_reasons) == ("AUTHORITATIVE_EVIDENCE", ())
    assert head.archive is not None
    assert head.archive.key == session_archive_key(session_id)
    assert head.sealed_at is not None
    assert head.sealed_at == datetime.fromisoformat(seal["payload"]["seal_timestamp"])

    report = verify_archive(body, published_keys(s3))
    assert (report.status, report.evidence_class) == ("PASS", "AUTHORITATIVE_EVIDENCE")


def test_seal_signature_verifies_with_the_verifier_and_with_the_published_key(
    store: InMemoryChainStore, sealer: Sealer, s3: Any
) -> None:
    session_id = ingest_session(store)
    sealer.seal_due_sessions(T0)
    seal = seal_of(archived(s3, session_id))
    signed = seal_signed_bytes(session_id, seal["event_id"], seal["payload"])
    signature = base64.b64decode(seal["payload"]["signature"], validate=True)
    published_pem = s3.get_object(Bucket=BUCKET, Key=public_key_object_key(seal["payload"]["signer_key_id"]))[
        "Body"
    ].read()

    key = load_pem_public_key(published_pem)
    assert key.key_id == seal["payload"]["signer_key_id"]
    assert verify_signature(key, signed, signature)
    reference_key = serialization.load_pem_public_key(published_pem)
    assert isinstance(reference_key, ec.EllipticCurvePublicKey)
    reference_key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature on failure
    assert not verify_signature(key, signed.replace(b'"event_count":6', b'"event_count":5'), signature)


def test_archive_is_locked_and_its_version_cannot_be_deleted(
    store: InMemoryChainStore, sealer: Sealer, s3: Any
) -> None:
    session_id = ingest_session(store)
    sealer.seal_due_sessions(T0)
    head = store.get_head(session_id)
    assert head is not None
    assert head.archive is not None
    lock = s3.head_object(Bucket=BUCKET, Key=head.archive.key, VersionId=head.archive.version_id)
    assert lock["ObjectLockMode"] == "COMPLIANCE"
    assert lock["ObjectLockRetainUntilDate"] > head.sealed_at
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=BUCKET, Key=head.archive.key, VersionId=head.archive.version_id)
    assert len(archive_versions(s3, head.archive.key)) == 1


def test_idle_session_seals_as_partial_with_missing_session_end(
    store: InMemoryChainStore, sealer: Sealer, s3: Any
) -> None:
    session_id = ingest_session(store, 4, end=False)
    assert sealer.seal_due_sessions(T0) == []  # not idle yet: left open
    assert head_of(store, session_id).status == STATUS_OPEN

    assert sealer.seal_due_sessions(after_idle()) == [session_id]

    head = store.get_head(session_id)
    assert head is not None
    assert (head.status, head.evidence_class, head.partial_reasons) == (
        STATUS_SEALED,
        "PARTIAL_AUTHORITATIVE_EVIDENCE",
        ("MISSING_SESSION_END",),
    )
    report = verify_archive(archived(s3, session_id), published_keys(s3))
    assert (report.evidence_class, tuple(report.partial_reasons)) == (
        "PARTIAL_AUTHORITATIVE_EVIDENCE",
        ("MISSING_SESSION_END",),
    )


def test_sealing_twice_changes_nothing(store: InMemoryChainStore, sealer: Sealer, s3: Any) -> None:
    session_id = ingest_session(store)
    sealer.seal_due_sessions(T0)
    head = store.get_head(session_id)
    lines = stored_lines(store, session_id)

    assert sealer.seal_due_sessions(after_idle(T0)) == []
    assert sealer.seal_session(session_id, after_idle(T0)) is False

    assert store.get_head(session_id) == head
    assert stored_lines(store, session_id) == lines
    assert len(archive_versions(s3, session_archive_key(session_id))) == 1


def tamper_stored_line(store: InMemoryChainStore, session_id: str, sequence: int) -> None:
    """Edit one stored event's payload in place, as someone with write access to the table could."""
    for first in range(sequence, -1, -1):
        batch = store.get_batch(session_id, first)
        if batch is not None:
            break
    assert batch is not None
    index = sequence - batch.first_sequence
    event = loads(batch.lines[index])
    event["payload"]["tampered"] = True
    edited = replace(batch, lines=(*batch.lines[:index], canonicalize(event), *batch.lines[index + 1 :]))
    store._batches[session_id][batch.first_sequence] = edited  # the attack: a direct edit of the table


def test_tampered_stored_chain_is_refused_and_nothing_is_sealed_or_archived(
    store: InMemoryChainStore, sealer: Sealer, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = ingest_session(store, 6)
    tamper_stored_line(store, session_id, 2)
    lines = stored_lines(store, session_id)

    with caplog.at_level(logging.ERROR, logger="agentops_server.sealing"):
        assert sealer.seal_due_sessions(T0) == []

    head = store.get_head(session_id)
    assert head is not None
    assert head.status == STATUS_ENDED
    assert head.seal_refused_reason is not None
    assert "PAYLOAD_HASH_MISMATCH" in head.seal_refused_reason
    assert stored_lines(store, session_id) == lines  # no seal appended
    assert archive_versions(s3, session_archive_key(session_id)) == []
    alarms = [record for record in caplog.records if getattr(record, "alarm", None) == ALARM_SEAL_REFUSED]
    assert [getattr(record, "session_id", None) for record in alarms] == [session_id]
    assert sealer.seal_due_sessions(after_idle(T0)) == []  # refused sessions leave the due index


def test_chain_tampered_after_its_seal_was_persisted_is_refused_and_not_archived(
    store: InMemoryChainStore, sealer: Sealer, s3: Any
) -> None:
    session_id = ingest_session(store, 6)

    class CrashAfterPersistingSealError(BaseException):  # the process dies: no code catches it
        pass

    original_mark_sealing = store.mark_sealing

    def crash(session: str) -> None:
        original_mark_sealing(session)
        raise CrashAfterPersistingSealError

    with patch.object(store, "mark_sealing", crash), pytest.raises(CrashAfterPersistingSealError):
        sealer.seal_due_sessions(T0)
    tamper_stored_line(store, session_id, 3)

    assert sealer.seal_due_sessions(T0) == []
    head = store.get_head(session_id)
    assert head is not None
    assert head.seal_refused_reason is not None
    assert head.status != STATUS_SEALED
    assert archive_versions(s3, session_archive_key(session_id)) == []


def test_keys_are_recorded_and_published_before_they_sign(
    store: InMemoryChainStore, sealer: Sealer, signer: KmsSigner, s3: Any
) -> None:
    ingest_session(store)
    sealer.seal_due_sessions(T0)
    index = json.loads(published_keys(s3))
    assert index["keys"] == [
        {
            "signer_key_id": signer.key_id,
            "algorithm": "ECDSA_P256_SHA256",
            "public_key_pem": signer.public_key_pem,
            "first_used_at": "2026-01-01T12:00:00.000000Z",
        }
    ]


def test_after_a_key_rotation_both_keys_stay_published_and_trusted(
    store: InMemoryChainStore, sealer: Sealer, archive: S3Archive, kms: Any, s3: Any
) -> None:
    first = ingest_session(store)
    sealer.seal_due_sessions(T0)
    rotated = Sealer(store, KmsSigner(kms, create_seal_key(kms)), archive, SERVICE_ID)
    second = ingest_session(store, accepted_at=after_idle(T0))

    assert rotated.seal_due_sessions(after_idle(T0)) == [second]

    index = json.loads(published_keys(s3))
    assert len(index["keys"]) == 2
    assert (
        seal_of(archived(s3, first))["payload"]["signer_key_id"]
        != seal_of(archived(s3, second))["payload"]["signer_key_id"]
    )
    for session_id in (first, second):
        report = verify_archive(archived(s3, session_id), published_keys(s3))
        assert report.evidence_class == "AUTHORITATIVE_EVIDENCE"


class RacingAppendStore:
    """Lets an agent's append land between the sealer's verification and its conditional seal write."""

    def __init__(self, store: InMemoryChainStore, racing_batch: StoredBatch) -> None:
        self._store = store
        self._racing_batch: StoredBatch | None = racing_batch

    def put_batch(self, batch: StoredBatch) -> None:
        if batch.is_seal and self._racing_batch is not None:
            append, self._racing_batch = self._racing_batch, None
            self._store.put_batch(append)
            self._store.advance_head(append)
        self._store.put_batch(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def next_event_batch(store: InMemoryChainStore, session_id: str) -> StoredBatch:
    tail = store.tail(session_id)
    assert tail is not None
    event = chain_event(
        event_id="0d7f5a8e-1b2c-4d3e-8f4a-5b6c7d8e9f01",
        session_id=session_id,
        sequence_number=tail.last_sequence + 1,
        timestamp_wall="2026-01-01T13:05:00.000Z",
        event_type="TOOL_CALL",
        payload={"tool_name": "search"},
        prev_event_hash=tail.last_event_hash,
        chain_authority="server",
    )
    line = canonicalize(event)
    return StoredBatch(
        session_id=session_id,
        first_sequence=event["sequence_number"],
        lines=(line,),
        event_ids=(event["event_id"],),
        event_hashes=(event["event_hash"],),
        owner=OWNER,
        request_digest="a" * 64,
        accepted_at=after_idle(T0),
    )


def test_append_that_wins_the_race_is_kept_and_the_seal_waits(
    store: InMemoryChainStore, sealer: Sealer, signer: KmsSigner, archive: S3Archive, s3: Any
) -> None:
    session_id = ingest_session(store, 4, end=False)
    append = next_event_batch(store, session_id)
    racing_sealer = Sealer(RacingAppendStore(store, append), signer, archive, SERVICE_ID)

    assert racing_sealer.seal_due_sessions(after_idle(T0)) == []

    tail = store.tail(session_id)
    assert tail == append  # the append is in the chain, no seal was written
    assert head_of(store, session_id).status == STATUS_OPEN
    assert archive_versions(s3, session_archive_key(session_id)) == []
    later = after_idle(after_idle(T0))
    assert sealer.seal_due_sessions(later) == [session_id]  # idle again: sealed after the appended event
    assert seal_of(archived(s3, session_id))["payload"]["event_count"] == 5


def test_append_that_loses_the_race_sees_a_conflict_and_writes_nothing(
    store: InMemoryChainStore, sealer: Sealer
) -> None:
    session_id = ingest_session(store, 4, end=False)
    late_append = next_event_batch(store, session_id)
    sealer.seal_due_sessions(after_idle(T0))
    lines = stored_lines(store, session_id)

    with pytest.raises(SequenceConflictError):
        store.put_batch(late_append)  # the ingest core answers 409 SESSION_SEALED

    assert stored_lines(store, session_id) == lines


def test_session_without_any_event_is_refused_without_an_alarm(
    store: InMemoryChainStore, sealer: Sealer, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = "6a1d2c3b-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
    store.create_session(session_id, OWNER, T0)
    with caplog.at_level(logging.INFO, logger="agentops_server.sealing"):
        assert sealer.seal_due_sessions(after_idle()) == []
    assert head_of(store, session_id).seal_refused_reason == "EMPTY_SESSION"
    assert not [record for record in caplog.records if hasattr(record, "alarm")]
    assert archive_versions(s3, session_archive_key(session_id)) == []


def test_local_authority_session_is_never_sealed_by_the_server(
    store: InMemoryChainStore, sealer: Sealer, s3: Any
) -> None:
    events = build_chain(4, authority="sdk", seal=None)
    store_events(store, events)
    session_id = events[0]["session_id"]
    assert sealer.seal_due_sessions(T0) == []
    assert head_of(store, session_id).seal_refused_reason is not None
    assert archive_versions(s3, session_archive_key(session_id)) == []


class WrongKeySigner:
    """Publishes one key but signs with another, as a misconfigured or swapped KMS key would."""

    def __init__(self, published: TestSigner, signing: TestSigner) -> None:
        self.key_id = published.key_id
        self.public_key_pem = published.public_key_pem
        self._signing = signing

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message)


def test_signature_that_its_published_key_cannot_check_is_never_persisted(
    store: InMemoryChainStore, archive: S3Archive, s3: Any
) -> None:
    session_id = ingest_session(store)
    lines = stored_lines(store, session_id)
    sealer = Sealer(store, WrongKeySigner(TestSigner(), TestSigner()), archive, SERVICE_ID)

    with pytest.raises(SigningKeyMisconfiguredError):
        sealer.seal_due_sessions(T0)

    assert stored_lines(store, session_id) == lines
    assert head_of(store, session_id).status == STATUS_ENDED
    assert archive_versions(s3, session_archive_key(session_id)) == []


def test_run_out_of_time_leaves_the_remaining_sessions_due(store: InMemoryChainStore, sealer: Sealer) -> None:
    first = ingest_session(store)
    second = ingest_session(store, accepted_at=T0 + timedelta(seconds=1))
    run = FakeRun(budget_seconds=10.0)
    original_mark_sealed = store.mark_sealed

    def spend_the_run(session_id: str, *details: Any) -> None:
        original_mark_sealed(session_id, *details)
        run.spent = run.budget  # the first session took everything the run had

    with patch.object(store, "mark_sealed", spend_the_run):
        assert sealer.seal_due_sessions(after_idle(T0), remaining=run.remaining) == [first]
    assert head_of(store, second).status == STATUS_ENDED
    assert sealer.seal_due_sessions(after_idle(T0)) == [second]


class FakeRun:
    """The seconds a run has left, on a clock the test moves."""

    def __init__(self, budget_seconds: float) -> None:
        self.budget = budget_seconds
        self.spent = 0.0

    def remaining(self) -> float:
        return self.budget - self.spent
