"""Crash and fault injection at every write step of ingest and sealing, then rerun until done.

One scenario: an agent appends a 7-event session in three batches (retrying the same body after any 5xx, 429 or
crash, as the SDK does), then the sealer runs (a crashed run is followed by a fresh process) until the session is
sealed. For every write step the fault-free run takes, and every way a backend fails, the scenario is replayed with
that one fault and these invariants are checked:

- every batch is acknowledged (200), never a 4xx or 409 for a retried identical batch;
- no acknowledged event is lost or changed: each one sits at its acknowledged sequence number with its hash;
- no duplicate, no gap, one seal: the stored chain verifies as AUTHORITATIVE_EVIDENCE under the signing key;
- one sealed chain and one archive version per session, byte-identical to the stored chain, and the head points at it;
- the table copies get their expiry (the sealer's last step) in the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from agentops_server.archive import ArchiveError, session_archive_key
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.errors import ApiError
from agentops_server.ingest import IngestService
from agentops_server.sealing import Sealer
from agentops_server.signing import SigningError
from agentops_server.store import STATUS_SEALED, StoreError
from agentops_verify import TrustStore, load_pem_public_key, loads, verify_lines
from moto import mock_aws

from infra.resources import create_archive_bucket
from tests.hardening.client_events import body, client_event
from tests.hardening.faults.doubles import (
    FAULT_KINDS,
    FaultPlan,
    FaultyArchive,
    FaultySigner,
    FaultyStore,
    ProcessCrash,
)
from tests.support.keys import TestSigner, make_signer

REGION = "us-east-1"
BUCKET = "hardening-faults-archive"
OWNER = "arn:aws:iam::111122223333:user/faulty-agent"
SERVICE_ID = "agentops-replay-faults"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MAX_ATTEMPTS = 5


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


@dataclass(frozen=True)
class Outcome:
    session_id: str
    store: FaultyStore
    plan: FaultPlan
    acknowledged: dict[int, tuple[str, str]]  # sequence -> (event_id, event_hash) from the 200 bodies


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            client = boto3.client("s3", region_name=REGION)
            create_archive_bucket(client, BUCKET, 1)
            yield client


@pytest.fixture(scope="module")
def key() -> TestSigner:
    return make_signer()


def batches() -> list[bytes]:
    events = [
        client_event(0, "SESSION_START"),
        *(client_event(n, kind) for n, kind in enumerate(("MODEL_REQUEST", "TOOL_CALL", "TOOL_RESULT"), 1)),
        client_event(4, "MODEL_RESPONSE"),
        client_event(5, "MODEL_REQUEST"),
        client_event(6, "SESSION_END"),
    ]
    return [body(events[0:3]), body(events[3:5]), body(events[5:7])]


def run_scenario(plan: FaultPlan, s3: Any, key: TestSigner) -> Outcome:
    session_id = str(uuid.uuid4())
    store = FaultyStore(plan)
    clock = FixedClock(T0)
    ingest = IngestService(store, clock, SERVICE_ID)
    acknowledged: dict[int, tuple[str, str]] = {}
    for batch in batches():
        for _ in range(MAX_ATTEMPTS):
            clock.moment += timedelta(seconds=1)
            try:
                accepted = ingest.append(session_id, OWNER, batch)
            except (StoreError, ProcessCrash):
                continue  # 429 / 5xx / no answer: the SDK sends the same body again
            except ApiError as refusal:
                raise AssertionError(f"{plan.kind} at {plan.step}: a retry got {refusal.code}") from refusal
            for row in accepted["events"]:
                acknowledged[row["sequence_number"]] = (row["event_id"], row["event_hash"])
            break
        else:
            raise AssertionError(f"{plan.kind} at {plan.step}: batch never acknowledged")

    archive = FaultyArchive(S3Archive(s3, BUCKET), plan)
    for run in range(MAX_ATTEMPTS):
        head = store.get_head(session_id)
        if head is not None and head.status == STATUS_SEALED and session_id in store.inner.expires_at:
            break
        sealer = Sealer(store, FaultySigner(key, plan), archive, SERVICE_ID)  # a fresh process per run
        try:
            # One scheduled run every 10 minutes: a session deferred by a failed run is due again by the next.
            sealer.seal_due_sessions(T0 + timedelta(hours=2, minutes=10 * run))
        except (ProcessCrash, StoreError, ArchiveError, SigningError):
            continue  # the invocation failed; the next scheduled run starts a fresh process
    return Outcome(session_id, store, plan, acknowledged)


def check_invariants(outcome: Outcome, s3: Any, key: TestSigner) -> None:
    where = f"{outcome.plan.kind} at {outcome.plan.step}"
    lines = list(outcome.store.iter_lines(outcome.session_id))
    report = verify_lines(lines, trust=TrustStore([load_pem_public_key(key.public_key_pem)]))
    assert report.passed, f"{where}: {report.to_dict()['violations']}"
    assert report.evidence_class == "AUTHORITATIVE_EVIDENCE", f"{where}: {report.partial_reasons}"
    assert report.event_count == 8, where  # 7 events and exactly one seal, last

    assert sorted(outcome.acknowledged) == list(range(7)), where
    stored = [loads(line) for line in lines]
    for sequence, (event_id, event_hash) in outcome.acknowledged.items():
        assert (stored[sequence]["event_id"], stored[sequence]["event_hash"]) == (event_id, event_hash), where

    head = outcome.store.get_head(outcome.session_id)
    assert head is not None
    assert head.status == STATUS_SEALED, f"{where}: head is {head.status}"
    key_name = session_archive_key(outcome.session_id)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=key_name).get("Versions", [])
    assert [v["VersionId"] for v in versions] == [head.archive.version_id], where
    archived = s3.get_object(Bucket=BUCKET, Key=key_name, VersionId=head.archive.version_id)["Body"].read()
    assert archived == b"".join(line + b"\n" for line in lines), where
    assert head.evidence_class == "AUTHORITATIVE_EVIDENCE", where
    assert outcome.session_id in outcome.store.inner.expires_at, f"{where}: the table copies never got their expiry"


def fault_free_steps(s3: Any, key: TestSigner) -> list[str]:
    plan = FaultPlan()
    check_invariants(run_scenario(plan, s3, key), s3, key)
    return plan.steps


def test_the_fault_free_run_takes_every_write_step_of_ingest_and_sealing(s3: Any, key: TestSigner) -> None:
    steps = {step.split("#")[0] for step in fault_free_steps(s3, key)}
    assert steps == {
        "create_session",
        "put_batch",
        "advance_head",
        "archive.publish_key",
        "archive.publish_key_index",
        "kms.sign",
        "mark_sealing",
        "archive.write_session",
        "mark_sealed",
        "expire_archived",
    }


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_one_fault_at_any_write_step_loses_nothing_and_seals_once(kind: str, s3: Any, key: TestSigner) -> None:
    steps = fault_free_steps(s3, key)
    assert len(steps) >= 15
    for step in steps:
        plan = FaultPlan(step=step, kind=kind)
        outcome = run_scenario(plan, s3, key)
        assert plan.fired == [step], f"{kind} at {step} never fired"
        check_invariants(outcome, s3, key)
