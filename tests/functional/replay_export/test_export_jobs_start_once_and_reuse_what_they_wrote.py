"""Export jobs (``agentops_server.export_jobs``) over moto S3 and the in-memory chain store: when a job starts, when it
starts again, and that a retried job reuses what an earlier attempt wrote instead of writing a second export."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.aws.s3_export_store import S3ExportStore
from agentops_server.errors import ApiError
from agentops_server.export import ExportService, Withholding
from agentops_server.export_jobs import (
    FAILED,
    JOB_EVENT_KEY,
    PENDING,
    STALE_JOB_AFTER,
    ExportJobs,
    InMemoryExportJobs,
    JobNotStartedError,
)
from agentops_server.memory import InMemoryChainStore

from tests.functional.conftest import BUCKET
from tests.functional.replay_export.conftest import published_keys, seal_into_archive
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
    def __init__(self, store: InMemoryChainStore, s3: Any) -> None:
        self.clock = Clock()
        self.starts = Starts()
        self.jobs = InMemoryExportJobs()
        self.renderer_crashes = False
        self.service = ExportJobs(
            store=store,
            jobs=self.jobs,
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


def test_withheld_sequence_numbers_beyond_the_session_are_refused_before_any_job(
    store: InMemoryChainStore, s3: Any, session_id: str
) -> None:
    rig = Rig(store, s3)

    with pytest.raises(ApiError) as refused:
        rig.service.request(session_id, "json", Withholding(sequence_numbers=frozenset({21})))

    assert (refused.value.status, refused.value.code) == (400, "VALIDATION_ERROR")
    assert rig.jobs.jobs == {}
    assert rig.starts.events == []
