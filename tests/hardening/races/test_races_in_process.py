"""Races between appenders, and between appends and the sealer, on one session (threads over the in-memory store,
whose single-item operations are atomic like DynamoDB's conditional writes).

Invariants after every round: the stored chain verifies; every acknowledged event sits at its acknowledged sequence
number with its acknowledged hash; nothing acknowledged lies after the seal; one seal, one archive version.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from agentops_server.archive import session_archive_key
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.errors import ApiError
from agentops_server.ingest import IngestService
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import Sealer
from agentops_server.store import STATUS_SEALED
from agentops_verify import TrustStore, load_pem_public_key, loads, verify_lines
from moto import mock_aws

from infra.resources import create_archive_bucket
from tests.hardening.client_events import body, client_event, opening
from tests.support.keys import TestSigner, make_signer

REGION = "us-east-1"
BUCKET = "hardening-races-archive"
OWNER = "arn:aws:iam::111122223333:user/racing-agent"
SERVICE_ID = "agentops-replay-races"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class TickingClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = T0

    def now(self) -> datetime:
        with self._lock:
            self._now += timedelta(milliseconds=1)
            return self._now


class KeySigner:
    def __init__(self, key: TestSigner) -> None:
        self.key_id = key.key_id
        self.public_key_pem = key.public_key_pem
        self._key = key

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


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


def append_until_refused(
    ingest: IngestService,
    session_id: str,
    rounds: int,
    acknowledged: dict[int, tuple[str, str]],
    rng: random.Random,
    *,
    pause: float = 0.0,
) -> list[str]:
    """One writer: appends 1-3 events at the head it believes in; on 409 SEQUENCE_CONFLICT it moves to the head the
    error reports. Stops after ``rounds`` batches or when the session refuses appends; returns the refusal codes."""
    refusals: list[str] = []
    next_sequence = 1
    for _ in range(rounds):
        while True:
            size = rng.randint(1, 3)
            batch = [client_event(next_sequence + offset) for offset in range(size)]
            try:
                accepted = ingest.append(session_id, OWNER, body(batch))
            except ApiError as refusal:
                refusals.append(refusal.code)
                if refusal.code != "SEQUENCE_CONFLICT":
                    return refusals
                next_sequence = refusal.details["head"]["next_sequence_number"]
                continue
            for row in accepted["events"]:
                acknowledged[row["sequence_number"]] = (row["event_id"], row["event_hash"])
            next_sequence = accepted["head"]["next_sequence_number"]
            break
        time.sleep(rng.uniform(0, pause))
    return refusals


def assert_chain_holds(
    store: InMemoryChainStore, session_id: str, acknowledged: dict[int, tuple[str, str]], key: TestSigner | None
) -> Any:
    lines = list(store.iter_lines(session_id))
    trust = TrustStore([load_pem_public_key(key.public_key_pem)]) if key else None
    report = verify_lines(lines, trust=trust)
    assert report.passed, report.to_dict()["violations"]
    stored = [loads(line) for line in lines]
    for sequence, (event_id, event_hash) in acknowledged.items():
        assert (stored[sequence]["event_id"], stored[sequence]["event_hash"]) == (event_id, event_hash)
    return report


@pytest.mark.parametrize("round_number", range(5))
def test_parallel_appenders_never_fork_lose_or_duplicate(round_number: int) -> None:
    store = InMemoryChainStore()
    ingest = IngestService(store, TickingClock(), SERVICE_ID)
    session_id = str(uuid.uuid4())
    ingest.append(session_id, OWNER, body(opening()))
    acknowledged: dict[int, tuple[str, str]] = {}
    writers = [
        threading.Thread(
            target=append_until_refused,
            args=(ingest, session_id, 12, acknowledged, random.Random(round_number * 100 + n)),
        )
        for n in range(6)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    report = assert_chain_holds(store, session_id, acknowledged, None)
    assert report.event_count == 1 + len(acknowledged)  # every stored event after the start was acknowledged once
    assert sorted(acknowledged) == list(range(1, report.event_count))


def test_append_racing_the_seal_either_lands_before_it_or_is_refused(s3: Any) -> None:
    """Eight rounds of an agent appending with short pauses while the sealer seals the (idle) session: whoever wins
    sequence ``n`` wins it whole. At least one round must see the seal land mid-stream."""
    interrupted = 0
    for round_number in range(8):
        key = make_signer()
        store = InMemoryChainStore(seal_idle_seconds=60)
        ingest = IngestService(store, TickingClock(), SERVICE_ID)
        session_id = str(uuid.uuid4())
        ingest.append(session_id, OWNER, body(opening(extra=2)))
        acknowledged: dict[int, tuple[str, str]] = {}
        refusals: list[str] = []
        sealer = Sealer(store, KeySigner(key), S3Archive(s3, BUCKET), SERVICE_ID)
        idle_later = T0 + timedelta(days=1)  # the session is idle as far as the sealer is concerned
        rng = random.Random(round_number)

        def appender() -> None:
            refusals.extend(append_until_refused(ingest, session_id, 60, acknowledged, rng, pause=0.004))  # noqa: B023

        def seal_until_sealed() -> None:
            for _ in range(500):
                sealer.seal_due_sessions(idle_later)  # noqa: B023
                head = store.get_head(session_id)  # noqa: B023
                if head is not None and head.status == STATUS_SEALED:
                    return

        threads = [threading.Thread(target=appender), threading.Thread(target=seal_until_sealed)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        report = assert_chain_holds(store, session_id, acknowledged, key)
        assert report.sealed
        assert report.partial_reasons == ("MISSING_SESSION_END",)
        assert max(acknowledged, default=0) < report.event_count - 1  # nothing acknowledged after the seal
        assert set(refusals) <= {"SEQUENCE_CONFLICT", "SESSION_SEALED"}
        assert "SESSION_SEALED" not in refusals[:-1]  # once refused as sealed, the agent got nothing else
        interrupted += refusals[-1:] == ["SESSION_SEALED"]
        versions = s3.list_object_versions(Bucket=BUCKET, Prefix=session_archive_key(session_id)).get("Versions", [])
        assert len(versions) == 1
    assert interrupted >= 1
