"""One session cannot hold up the others: a malformed item, a chain that keeps failing or a session too large for the
time a run has left affects only its own session, which is reported and moved behind the others (docs/architecture.md
"Sealing").

Before: one key record with a timestamp in another format made ``GET /v1/keys`` and every sealer run fail; one large
ended session, first among the due sessions, kept every other session unsealed for as long as a run could not finish
it (the time budget was checked only between sessions, and a failed session kept its place at the head of the queue).
"""

from __future__ import annotations

import lzma
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.limits import MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from agentops_server.memory import InMemoryChainStore
from agentops_server.sealing import Sealer
from agentops_server.store import STATUS_ENDED, STATUS_SEALED, StoredItemMalformedError

from tests.hardening.insider.conftest import BUCKET, SERVICE_ID, Deployment
from tests.hardening.insider.test_table_forgery import store_like_ingest
from tests.support.chains import build_chain
from tests.support.keys import TestSigner
from tests.support.stores import stored_batch

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OWNER = "arn:aws:iam::111122223333:user/agent"
SECONDS_PER_LINE = 0.001  # what reading one stored line costs the run, on the test's clock


class Run:
    """A sealer run's clock: it has ``budget`` seconds; every line read from the store spends ``SECONDS_PER_LINE``."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.spent = 0.0

    def remaining(self) -> float:
        return self.budget - self.spent


class SlowStore:
    """The in-memory store, where reading a line takes time on the run's clock."""

    def __init__(self, inner: InMemoryChainStore, run: Run) -> None:
        self.inner = inner
        self.run = run

    def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
        for line in self.inner.iter_lines(session_id, from_sequence):
            self.run.spent += SECONDS_PER_LINE
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def ended_session(store: InMemoryChainStore, n_events: int, ended_at: datetime) -> str:
    events = build_chain(n_events, end=True, seal=None, start_time=ended_at)
    session_id: str = events[0]["session_id"]
    store.create_session(session_id, OWNER, ended_at)
    for start in range(0, n_events, 500):
        batch = stored_batch(events[start : start + 500], owner=OWNER, accepted_at=ended_at)
        store.put_batch(batch)
        store.advance_head(batch)
    return session_id


def test_one_oversized_session_does_not_starve_the_others(deployment: Deployment) -> None:
    store = InMemoryChainStore()
    large = ended_session(store, 3_000, T0)  # ended first: the head of the queue
    others = [ended_session(store, 6, T0 + timedelta(seconds=n)) for n in range(1, 6)]
    run = Run(budget=3.0)  # verifying the large session alone would take 3 s of it
    archive = S3Archive(deployment.s3, BUCKET)
    sealer = Sealer(SlowStore(store, run), TestSigner(), archive, SERVICE_ID)

    assert sealer.seal_due_sessions(T0 + timedelta(minutes=1), remaining=run.remaining) == others

    head = store.get_head(large)
    assert head is not None
    assert head.status == STATUS_ENDED
    tail = store.tail(large)
    assert tail is not None
    assert not tail.is_seal  # deferred before signing: nothing half done
    assert deployment.object_versions(f"sessions/{large}") == []
    assert store.due_for_sealing(T0 + timedelta(minutes=2), 50) == []  # moved behind what is due now
    next_run = Run(budget=30.0)
    sealer = Sealer(SlowStore(store, next_run), TestSigner(), archive, SERVICE_ID)
    assert sealer.seal_due_sessions(T0 + timedelta(minutes=10), remaining=next_run.remaining) == [large]


def test_a_session_that_keeps_failing_does_not_keep_its_place_at_the_head_of_the_queue(
    deployment: Deployment,
) -> None:
    store = InMemoryChainStore()
    failing = ended_session(store, 4, T0)
    waiting = [ended_session(store, 4, T0 + timedelta(seconds=n)) for n in range(1, 4)]
    signer = TestSigner()
    archive = S3Archive(deployment.s3, BUCKET)

    class FailingStore(SlowStore):
        def get_head(self, session_id: str) -> Any:
            if session_id == failing:
                raise ValueError("cannot read this head")
            return self.inner.get_head(session_id)

    run = Run(budget=1e9)
    sealer = Sealer(FailingStore(store, run), signer, archive, SERVICE_ID, limit=2)
    assert sealer.seal_due_sessions(T0 + timedelta(minutes=1)) == waiting[:1]
    assert sealer.seal_due_sessions(T0 + timedelta(minutes=2)) == waiting[1:]


def test_malformed_item_affects_only_its_own_session(deployment: Deployment) -> None:
    table, dynamodb = deployment.table_name, deployment.dynamodb
    dynamodb.put_item(
        TableName=table,
        Item={
            "pk": {"S": "KEY"},
            "sk": {"S": TestSigner().key_id},
            "algorithm": {"S": "ECDSA_P256_SHA256"},
            "public_key_pem": {"S": TestSigner().public_key_pem},
            "first_used_at": {"S": "01/01/2026 12:00"},  # a timestamp in another format
        },
    )
    bad_head = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"S#{bad_head}"}, "sk": {"S": "HEAD"}},
        UpdateExpression="SET started_at = :other",
        ExpressionAttributeValues={":other": {"S": "2026-01-01 12:00:00"}},
    )
    bad_batch = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"S#{bad_batch}"}, "sk": {"S": "B#000000000003"}},
        UpdateExpression="SET accepted_at = :other",
        ExpressionAttributeValues={":other": {"N": "1767268800"}},
    )
    healthy = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))

    sealed, records = deployment.run_sealer()

    assert sealed == [healthy]
    failed = sorted(record["session_id"] for record in records if record.get("alarm") == "SEAL_FAILED")
    assert failed == sorted([bad_head, bad_batch])
    head = deployment.store.get_head(healthy)
    assert head is not None
    assert (head.status, head.evidence_class) == (STATUS_SEALED, "AUTHORITATIVE_EVIDENCE")
    status, keys = deployment.get("/v1/keys")
    assert status == 200
    assert len(keys["keys"]) == 1


def test_forged_due_index_entries_cannot_crowd_the_other_sessions_out_of_a_run(deployment: Deployment) -> None:
    """The ``SealDue`` index holds any item carrying ``due_shard`` and ``due_at``, not only heads. With the ingest
    role's rights, an attacker adds a run's worth of non-head items naming one session that can never be sealed (a
    batch item of another shape), each due long ago. Every run then took that session once per entry, filled its
    limit with it, and never reached an innocent session; a deferral never moved the forged entries."""
    table, dynamodb = deployment.table_name, deployment.dynamodb
    stuck = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"S#{stuck}"}, "sk": {"S": "B#000000000003"}},
        UpdateExpression="SET accepted_at = :other",
        ExpressionAttributeValues={":other": {"N": "1767268800"}},
    )
    for number in range(60):
        for shard in "0123":
            dynamodb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"S#{stuck}"},
                    "sk": {"S": f"X#{shard}#{number:04d}"},
                    "due_shard": {"S": shard},
                    "due_at": {"S": "0000-00-00T00:00:00.000000Z"},
                },
            )
    innocent = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0 + timedelta(hours=1)))

    for _ in range(2):  # the stuck session's deferral moves its head, never the forged entries
        sealed, records = deployment.run_sealer()
        failed = [record["session_id"] for record in records if record.get("alarm") == "SEAL_FAILED"]
        assert failed == [stuck]  # reported once per run, as the one session it is
        if sealed:
            break
    assert sealed == [innocent]
    head = deployment.store.get_head(innocent)
    assert head is not None
    assert head.status == STATUS_SEALED


def _bomb(inflated_mib: int) -> bytes:
    """Raw LZMA2 of ``inflated_mib`` MiB of zeros (a few hundred bytes per MiB): what the store reads as a batch."""
    compressor = lzma.LZMACompressor(
        format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 0, "dict_size": 1 << 20}]
    )
    zeros = bytes(1 << 20)
    return b"".join([*(compressor.compress(zeros) for _ in range(inflated_mib)), compressor.flush()])


def test_a_decompression_bomb_in_a_batch_item_is_refused_before_it_is_inflated(deployment: Deployment) -> None:
    """A batch item's events are compressed, and anyone with the ingest role's table rights can replace them: 300 KB
    that inflate to 2 GiB ran the seal function out of memory, which ended the whole run (no other session sealed)
    and, since a crash defers nothing, every later run too. Reading a batch now stops at the most that any batch
    ingest accepts can hold (500 events of at most 256 KiB); here 300 MiB stands for the 2 GiB."""
    bombed = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    deployment.dynamodb.update_item(
        TableName=deployment.table_name,
        Key={"pk": {"S": f"S#{bombed}"}, "sk": {"S": "B#000000000003"}},
        UpdateExpression="SET events = :bomb",
        ExpressionAttributeValues={":bomb": {"B": _bomb(300)}},
    )
    healthy = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))

    tracemalloc.start()
    try:
        with pytest.raises(StoredItemMalformedError):
            list(deployment.store.iter_lines(bombed))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_BATCH_EVENTS * (MAX_EVENT_BYTES + 1) + (16 << 20)

    sealed, records = deployment.run_sealer()
    assert sealed == [healthy]
    assert [record["session_id"] for record in records if record.get("alarm") == "SEAL_FAILED"] == [bombed]


@pytest.mark.parametrize(
    ("function", "method", "route", "body"),
    [
        ("ingest", "GET", "", None),
        ("replay", "GET", "/replay", None),
        ("export", "POST", "/exports", {"format": "json"}),
        ("chain", "GET", "/chain", None),
        ("ingest", "POST", "/events", None),  # the body is the session's next event
    ],
    ids=["session view", "replay", "export", "chain", "append"],
)
def test_a_malformed_item_gets_its_session_a_clear_error_on_every_route_and_writes_nothing(
    deployment: Deployment, function: str, method: str, route: str, body: Any
) -> None:
    """A batch item someone rewrote into another shape made every route of its session answer 500, "retry the same
    request", which no retry could ever change; its session now cannot be verified: 422 VERIFICATION_FAILED."""
    events = build_chain(5, end=False, seal=None, start_time=T0)
    session_id = store_like_ingest(deployment, events[:4])
    deployment.dynamodb.update_item(
        TableName=deployment.table_name,
        Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "B#000000000003"}},
        UpdateExpression="SET accepted_at = :other",
        ExpressionAttributeValues={":other": {"N": "1767268800"}},
    )
    if route == "/events":
        next_event = {name: events[4][name] for name in ("event_id", "sequence_number", "timestamp_wall", "event_type")}
        body = {"events": [{**next_event, "session_id": session_id, "payload": events[4]["payload"]}]}
    before = (deployment.items(), deployment.object_versions(""))

    if route == "/events":
        status, answer = deployment.post_events(session_id, body["events"], caller=OWNER)
    else:
        status, answer = deployment.call(function, method, f"/v1/sessions/{session_id}{route}", body)

    assert (status, answer["error"]["code"]) == (422, "VERIFICATION_FAILED")
    assert (deployment.items(), deployment.object_versions("")) == before


def test_a_batch_item_naming_chunks_that_are_not_there_is_reported_not_retried_as_an_outage(
    deployment: Deployment,
) -> None:
    """A batch item rewritten to name chunk items that do not exist read as a storage outage: the sealer deferred the
    session with no alarm, every run, and its routes answered 503 "retry". Reads are strongly consistent and chunks
    are written before the batch that names them, so such an item was written by someone else."""
    broken = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))
    deployment.dynamodb.update_item(
        TableName=deployment.table_name,
        Key={"pk": {"S": f"S#{broken}"}, "sk": {"S": "B#000000000003"}},
        UpdateExpression="SET chunks = :two, blob_sha = :sha REMOVE events",
        ExpressionAttributeValues={":two": {"N": "2"}, ":sha": {"S": "ab" * 32}},
    )
    healthy = store_like_ingest(deployment, build_chain(4, end=True, seal=None, start_time=T0))

    sealed, records = deployment.run_sealer()
    status, answer = deployment.call("replay", "GET", f"/v1/sessions/{broken}/replay")

    assert sealed == [healthy]
    assert [record["session_id"] for record in records if record.get("alarm") == "SEAL_FAILED"] == [broken]
    assert (status, answer["error"]["code"]) == (422, "VERIFICATION_FAILED")
