"""Export jobs (``agentops_server.export_jobs``) over moto S3 and the in-memory chain store: when a job starts, when it
starts again, and that a retried job reuses what an earlier attempt wrote instead of writing a second export."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.export_jobs_dynamodb import DynamoDBExportJobs
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.aws.s3_export_store import S3ExportStore
from agentops_server.errors import ApiError
from agentops_server.export import ExportService, Withholding
from agentops_server.export_jobs import (
    DONE,
    FAILED,
    JOB_EVENT_KEY,
    PENDING,
    STALE_JOB_AFTER,
    ExportJobs,
    ExportJobStore,
    InMemoryExportJobs,
    JobNotStartedError,
)
from agentops_server.memory import InMemoryChainStore
from agentops_server.store import ChainStore

from tests.functional.conftest import BUCKET
from tests.functional.replay_export.conftest import published_keys, seal_into_archive, store_events
from tests.support.chains import build_chain

T0 = datetime(2026, 1, 3, 9, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = T0

    def now(self) -> datetime:
        return self.moment


class Starts:
    """The asynchronous invocations requested; ``refuse`` makes Lambda refuse them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refuse = False

    def __call__(self, event: dict[str, Any]) -> None:
        if self.refuse:
            raise JobNotStartedError("injected: Lambda refused the invocation")
        self.events.append(event)


class Rig:
    def __init__(self, store: ChainStore, s3: Any, jobs: ExportJobStore | None = None) -> None:
        self.clock = Clock()
        self.starts = Starts()
        self.jobs = InMemoryExportJobs()
        self.renderer_crashes = False
        self.service = ExportJobs(
            store=store,
            jobs=self.jobs if jobs is None else jobs,
            exporter=ExportService(
                store=store,
                archive_reader=S3ArchiveReader(s3),
                exports=S3ExportStore(s3, BUCKET),
                clock=self.clock,
                trusted_keys=published_keys(s3),
                render_pdf=self._render,
            ),
            start_job=self.starts,
            clock=self.clock,
            min_events=10,
        )

    def _render(self, document: bytes) -> bytes:
        if self.renderer_crashes:
            raise RuntimeError("injected: the renderer crashed")
        return b"%PDF-1.4 rendering of " + str(len(document)).encode()

    def run_started_jobs(self) -> None:
        while self.starts.events:
            job = self.starts.events.pop(0)[JOB_EVENT_KEY]
            self.service.run(job["session_id"], job["export_id"])


def _export_objects(s3: Any) -> list[str]:
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix="exports/")
    return sorted(version["Key"] for version in listing.get("Versions", []))


@pytest.fixture
def session_id(store: InMemoryChainStore, s3: Any) -> str:
    events = build_chain(20)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    return str(events[0]["session_id"])


def test_a_session_below_the_threshold_is_exported_at_once(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(5)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    rig = Rig(store, s3)

    status, body = rig.service.request(str(events[0]["session_id"]), "json", Withholding())

    assert status == 201
    assert body["evidence_class"] == "AUTHORITATIVE_EVIDENCE"
    assert rig.starts.events == []
    assert rig.jobs.jobs == {}


def test_a_job_refused_by_lambda_is_marked_failed_and_the_same_request_starts_it(
    store: InMemoryChainStore, s3: Any, session_id: str
) -> None:
    rig = Rig(store, s3)
    rig.starts.refuse = True

    with pytest.raises(JobNotStartedError):
        rig.service.request(session_id, "json", Withholding())
    ((_, export_id),) = rig.jobs.jobs
    with pytest.raises(ApiError) as failed:
        rig.service.status(session_id, export_id)
    rig.starts.refuse = False
    status, body = rig.service.request(session_id, "json", Withholding())

    assert (failed.value.status, failed.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert failed.value.details == {"export_id": export_id, "status": FAILED}
    assert (status, body) == (202, {"export_id": export_id, "format": "json", "status": PENDING})
    assert len(rig.starts.events) == 1


def test_a_pending_job_starts_again_only_once_it_outlived_the_function_timeout(
    store: InMemoryChainStore, s3: Any, session_id: str
) -> None:
    rig = Rig(store, s3)
    rig.service.request(session_id, "json", Withholding())
    rig.starts.events.clear()  # the invocation was lost

    rig.clock.moment = T0 + STALE_JOB_AFTER
    rig.service.request(session_id, "json", Withholding())
    restarted_early = list(rig.starts.events)
    rig.clock.moment = T0 + STALE_JOB_AFTER + timedelta(seconds=1)
    rig.service.request(session_id, "json", Withholding())

    assert restarted_early == []
    assert len(rig.starts.events) == 1
    rig.run_started_jobs()
    ((_, export_id),) = rig.jobs.jobs
    assert rig.service.status(session_id, export_id)[0] == 200


def test_a_retried_job_reuses_the_document_an_earlier_attempt_wrote(
    store: InMemoryChainStore, s3: Any, session_id: str
) -> None:
    """The first attempt wrote the document, then its PDF rendering failed; the retry renders from that document
    and writes the PDF, never a second document."""
    rig = Rig(store, s3)
    rig.renderer_crashes = True
    status, pending = rig.service.request(session_id, "pdf", Withholding())
    export_id = pending["export_id"]
    rig.run_started_jobs()
    with pytest.raises(ApiError) as failed:
        rig.service.status(session_id, export_id)
    objects_after_failure = _export_objects(s3)

    rig.renderer_crashes = False
    rig.service.request(session_id, "pdf", Withholding())
    rig.run_started_jobs()

    assert status == 202
    assert (failed.value.status, failed.value.code) == (500, "INTERNAL_ERROR")
    assert objects_after_failure == [f"exports/{session_id}/{export_id}.json"]
    assert _export_objects(s3) == [f"exports/{session_id}/{export_id}.json", f"exports/{session_id}/{export_id}.pdf"]
    done_status, done = rig.service.status(session_id, export_id)
    assert done_status == 200
    body = s3.get_object(Bucket=BUCKET, Key=done["key"], VersionId=done["version_id"])["Body"].read()
    assert body.startswith(b"%PDF-")


def test_a_job_whose_item_was_rewritten_is_neither_run_nor_reported(
    store: InMemoryChainStore, s3: Any, session_id: str
) -> None:
    rig = Rig(store, s3)
    _, pending = rig.service.request(session_id, "pdf", Withholding())
    key = (session_id, pending["export_id"])
    rig.jobs.jobs[key] = replace(rig.jobs.jobs[key], withheld="true")  # someone with table access

    rig.run_started_jobs()

    assert _export_objects(s3) == []
    with pytest.raises(ApiError) as answer:
        rig.service.status(session_id, pending["export_id"])
    assert (answer.value.status, answer.value.code) == (404, "EXPORT_NOT_FOUND")


def _forge_done(rig: Rig, session_id: str, export_id: str, result: Any) -> None:
    """Someone with table access marks the job DONE with a result of their own; its fields still hash to its id."""
    key = (session_id, export_id)
    rig.jobs.jobs[key] = replace(rig.jobs.jobs[key], status=DONE, result=result)


def test_a_forged_done_job_cannot_present_an_export_that_was_never_written(store: InMemoryChainStore, s3: Any) -> None:
    """A job item claimed DONE, with a version, digest and class of the attacker's choosing, for an unsealed session
    whose export was never written: the status route answered 200 with that class and a link to nothing."""
    events = build_chain(20, seal=None)
    store_events(store, events)
    session_id = str(events[0]["session_id"])
    rig = Rig(store, s3)
    _, pending = rig.service.request(session_id, "json", Withholding())
    forged = {"version_id": "forged", "sha256": "0" * 64, "evidence_class": "AUTHORITATIVE_EVIDENCE"}
    _forge_done(rig, session_id, pending["export_id"], forged)

    with pytest.raises(ApiError) as answer:
        rig.service.status(session_id, pending["export_id"])

    assert (answer.value.status, answer.value.code) == (404, "EXPORT_NOT_FOUND")
    assert _export_objects(s3) == []


def test_a_forged_done_job_result_cannot_change_what_a_written_export_is_said_to_be(
    store: InMemoryChainStore, s3: Any
) -> None:
    """The job ran and wrote its export; then its recorded result was edited to claim another class and digest, or
    replaced by a value of another shape (which made the status route answer 500)."""
    events = build_chain(20, seal=None)
    store_events(store, events)
    session_id = str(events[0]["session_id"])
    rig = Rig(store, s3)
    _, pending = rig.service.request(session_id, "json", Withholding())
    export_id = pending["export_id"]
    rig.run_started_jobs()
    _, written = rig.service.status(session_id, export_id)
    document = s3.get_object(Bucket=BUCKET, Key=written["key"])["Body"].read()
    truth = {"evidence_class": json.loads(document)["evidence_class"], "sha256": hashlib.sha256(document).hexdigest()}
    assert truth["evidence_class"] != "AUTHORITATIVE_EVIDENCE"

    for forged in (
        {"version_id": written["version_id"], "sha256": "0" * 64, "evidence_class": "AUTHORITATIVE_EVIDENCE"},
        ["not", "a", "result"],
        {"version_id": 7},
    ):
        _forge_done(rig, session_id, export_id, forged)
        status, shown = rig.service.status(session_id, export_id)
        assert status == 200
        assert {name: shown[name] for name in truth} == truth
        assert shown["version_id"] == written["version_id"]
        assert _export_objects(s3) == [f"exports/{session_id}/{export_id}.json"]


ZLIB_BOMB_MIB = 300


def _zlib_bomb() -> bytes:
    """zlib of ``ZLIB_BOMB_MIB`` MiB of ASCII zeros: about 300 KB, small enough for one item."""
    compressor = zlib.compressobj(9)
    chunk = b"0" * (1 << 20)
    return b"".join([*(compressor.compress(chunk) for _ in range(ZLIB_BOMB_MIB)), compressor.flush()])


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("result", {"N": "1"}),
        ("error", {"N": "1"}),
        ("requested_at", {"N": "1"}),
        ("withheld", {"B": b"not zlib"}),
    ],
    ids=["result", "error", "requested_at", "withheld not zlib"],
)
def test_a_job_item_of_another_shape_is_not_found_rather_than_a_500(
    dynamodb_store: DynamoDBChainStore, s3: Any, attribute: str, value: dict[str, Any]
) -> None:
    """A job item whose recorded result, error, time or withheld set someone replaced with a value the service never
    writes made the status route answer 500 (an unexpected failure, "retry the same request"); it is no export of
    the session."""
    rig, session_id, export_id = _pending_dynamodb_job(dynamodb_store, s3)
    _set_job_attribute(dynamodb_store, session_id, export_id, attribute, value)

    with pytest.raises(ApiError) as answer:
        rig.service.status(session_id, export_id)

    assert (answer.value.status, answer.value.code) == (404, "EXPORT_NOT_FOUND")


def test_a_zlib_bomb_in_a_job_item_is_refused_before_it_is_inflated(
    dynamodb_store: DynamoDBChainStore, s3: Any
) -> None:
    """A job item's withheld set is compressed: 300 KB of it inflated to 300 MiB (600 MiB held while read) on every
    status request. It now stops at the largest set a request body can carry."""
    rig, session_id, export_id = _pending_dynamodb_job(dynamodb_store, s3)
    _set_job_attribute(dynamodb_store, session_id, export_id, "withheld", {"B": _zlib_bomb()})

    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as answer:
            rig.service.status(session_id, export_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (answer.value.status, answer.value.code) == (404, "EXPORT_NOT_FOUND")
    assert peak < 16 << 20


def _pending_dynamodb_job(dynamodb_store: DynamoDBChainStore, s3: Any) -> tuple[Rig, str, str]:
    events = build_chain(20, seal=None)
    store_events(dynamodb_store, events)
    session_id = str(events[0]["session_id"])
    rig = Rig(dynamodb_store, s3, jobs=DynamoDBExportJobs(dynamodb_store.table.client, dynamodb_store.table.name))
    _, pending = rig.service.request(session_id, "json", Withholding())
    return rig, session_id, str(pending["export_id"])


def _set_job_attribute(
    dynamodb_store: DynamoDBChainStore, session_id: str, export_id: str, attribute: str, value: dict[str, Any]
) -> None:
    dynamodb_store.table.call(
        "update_item",
        Key={"pk": {"S": f"EXPORT#{session_id}"}, "sk": {"S": export_id}},
        UpdateExpression="SET #attribute = :other",
        ExpressionAttributeNames={"#attribute": attribute},
        ExpressionAttributeValues={":other": value},
    )


def test_withheld_sequence_numbers_beyond_the_session_are_refused_before_any_job(
    store: InMemoryChainStore, s3: Any, session_id: str
) -> None:
    rig = Rig(store, s3)

    with pytest.raises(ApiError) as refused:
        rig.service.request(session_id, "json", Withholding(sequence_numbers=frozenset({21})))

    assert (refused.value.status, refused.value.code) == (400, "VALIDATION_ERROR")
    assert rig.jobs.jobs == {}
    assert rig.starts.events == []
