"""Asynchronous exports (API.md, POST /v1/sessions/{id}/exports, rev 2 "Large sessions").

A session with at least ``EXPORT_ASYNC_MIN_EVENTS`` events cannot be exported well inside API Gateway's 29 s (a PDF
costs about 20 s of CPU per 100,000 events), so the request is answered 202 ``{"export_id", "format", "status":
"PENDING"}`` and an asynchronous invocation of the export function writes the export. ``GET .../exports/{export_id}``
answers 200 with the 201 body once it is written, 202 while pending, and the error the synchronous export would have
answered (its status and code, ``details.status`` ``FAILED``) when the job failed; 404 ``EXPORT_NOT_FOUND`` otherwise.

Idempotence: the export id is a name-based UUID of the request (session, format, withheld set) and of the session's
state (its archive version when sealed, else its head), so the same request over the same session names the same job
and the same objects (``exports/<session_id>/<export_id>.<format>``, written once). A second request while the job is
pending or done starts nothing; one after a failure, or after a pending job outlived the function's timeout (its
invocation was lost), starts it again, and the retry reuses whatever the failed attempt already wrote.

Trust: a job item is attacker-writable like every DynamoDB item. Its fields must hash to its export id (else it is
not found, as is an item this service could not have written), the object key is derived, never read from the item,
and what a finished job shows (the version, the SHA-256 of its bytes, its class) is read from the locked object,
never from the item's recorded result: a job said DONE with nothing written under its id is not found by the status
route and started again by the same request.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from agentops_verify import canonicalize

from agentops_server.clock import Clock
from agentops_server.config import DEFAULT_EXPORT_ASYNC_MIN_EVENTS
from agentops_server.errors import STATUS_BY_CODE, ApiError
from agentops_server.export import ExportService, Withholding
from agentops_server.replay import session_not_found
from agentops_server.store import ChainStore, SessionHead, StoredItemMalformedError, StoreUnavailableError

logger = logging.getLogger(__name__)

# The export function's timeout (template.yaml): a job still PENDING after it lost its invocation.
STALE_JOB_AFTER = timedelta(seconds=900)
# Fixed namespace of the name-based export ids (uuid5): changing it would give every request new ids.
EXPORT_ID_NAMESPACE = uuid.UUID("5b0f3e0a-3c38-4a4e-8f2f-0b6f7f0e6a51")

PENDING = "PENDING"
DONE = "DONE"
FAILED = "FAILED"
JOB_EVENT_KEY = "export_job"  # the asynchronous invocation's event: {"export_job": {"session_id", "export_id"}}


def withheld_form(withholding: Withholding) -> str:
    """The withheld set in one canonical text: ``true``, ``false`` or the sorted sequence numbers."""
    value: bool | list[int] = (
        sorted(withholding.sequence_numbers) if withholding.sequence_numbers else withholding.all_payloads
    )
    return canonicalize(value).decode("ascii")


def withholding_of(form: str) -> Withholding:
    value = json.loads(form)
    if isinstance(value, bool):
        return Withholding(all_payloads=value)
    if isinstance(value, list) and all(isinstance(number, int) and number >= 0 for number in value):
        return Withholding(sequence_numbers=frozenset(value))
    raise ValueError(f"not a withheld set: {form[:80]!r}")


def source_state(head: SessionHead) -> str:
    """What the export is made from: the archive version of a sealed session, else the open chain's head."""
    if head.archive is not None:
        return f"archive:{head.archive.version_id}:{head.archive.sha256}"
    return f"head:{head.next_sequence_number}:{head.last_event_hash or ''}"


def export_id_for(session_id: str, file_format: str, withheld: str, source: str) -> str:
    name = canonicalize({"format": file_format, "session_id": session_id, "source": source, "withheld": withheld})
    return str(uuid.uuid5(EXPORT_ID_NAMESPACE, name.decode("utf-8")))


@dataclass(frozen=True)
class ExportJob:
    session_id: str
    export_id: str
    file_format: str
    withheld: str  # withheld_form
    source: str  # source_state
    status: str  # PENDING, DONE or FAILED
    requested_at: datetime
    result: dict[str, Any] | None = None  # DONE: version_id, sha256, evidence_class
    error: dict[str, Any] | None = None  # FAILED: code, message, details

    @property
    def names_itself(self) -> bool:
        """Whether the job's fields hash to its id (an item someone rewrote does not)."""
        return self.export_id == export_id_for(self.session_id, self.file_format, self.withheld, self.source)

    def pending_body(self) -> dict[str, Any]:
        return {"export_id": self.export_id, "format": self.file_format, "status": PENDING}


class JobNotStartedError(StoreUnavailableError):
    """The asynchronous invocation was refused (503; the same request made again starts the job)."""


class ExportJobExistsError(Exception):
    def __init__(self, job: ExportJob) -> None:
        super().__init__(f"export job {job.export_id} exists")
        self.job = job


class ExportJobStore(Protocol):
    def create(self, job: ExportJob) -> None:
        """Store a new job; ``ExportJobExistsError`` (with the stored one) when its id is taken."""

    def get(self, session_id: str, export_id: str) -> ExportJob | None: ...

    def restart(self, job: ExportJob, requested_at: datetime) -> bool:
        """Set a job read as ``job`` (FAILED, or stale PENDING) back to PENDING at ``requested_at``; False when it
        changed since it was read (another request restarted it)."""

    def finish(self, job: ExportJob, result: dict[str, Any]) -> None: ...

    def fail(self, job: ExportJob, error: dict[str, Any]) -> None: ...


class ExportJobs:
    """Chooses between the synchronous export and a job; runs jobs; answers the status route."""

    def __init__(
        self,
        *,
        store: ChainStore,
        jobs: ExportJobStore,
        exporter: ExportService,
        start_job: Callable[[dict[str, Any]], None],
        clock: Clock,
        min_events: int = DEFAULT_EXPORT_ASYNC_MIN_EVENTS,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._exporter = exporter
        self._start_job = start_job
        self._clock = clock
        self._min_events = min_events

    def request(self, session_id: str, file_format: str, withholding: Withholding) -> tuple[int, dict[str, Any]]:
        """201 and the export, or 202 and the pending job (or 201 when the same request's job is already done)."""
        head = self._store.get_head(session_id)
        if head is None:
            raise session_not_found(session_id)
        if head.next_sequence_number < self._min_events:
            return 201, self._exporter.export(session_id, file_format, withholding)
        _check_withheld_numbers(withholding, head.next_sequence_number)
        withheld, source = withheld_form(withholding), source_state(head)
        now = self._clock.now()
        job = ExportJob(
            session_id=session_id,
            export_id=export_id_for(session_id, file_format, withheld, source),
            file_format=file_format,
            withheld=withheld,
            source=source,
            status=PENDING,
            requested_at=now,
        )
        try:
            self._jobs.create(job)
        except ExportJobExistsError as exists:
            return self._existing(exists.job, now)
        self._start(job)
        return 202, job.pending_body()

    def _existing(self, job: ExportJob, now: datetime) -> tuple[int, dict[str, Any]]:
        if job.status == DONE:
            written = self._exporter.presented(job.session_id, job.export_id, job.file_format)
            if written is not None:
                return 201, written
        # A job said DONE with nothing written under its id is as good as lost: someone wrote its item.
        lost = job.status == DONE or (job.status == PENDING and now - job.requested_at > STALE_JOB_AFTER)
        if (job.status == FAILED or lost) and self._jobs.restart(job, now):
            self._start(job)
        return 202, job.pending_body()

    def _start(self, job: ExportJob) -> None:
        try:
            self._start_job({JOB_EVENT_KEY: {"session_id": job.session_id, "export_id": job.export_id}})
        except JobNotStartedError as error:
            # Marked failed, so the same request made again starts it rather than waiting for a job nobody runs.
            logger.error("export job not started", extra={"export_id": job.export_id, "reason": str(error)})
            self._jobs.fail(job, _retry_error("SERVICE_UNAVAILABLE", "The export could not be started; retry."))
            raise

    def status(self, session_id: str, export_id: str) -> tuple[int, dict[str, Any]]:
        """200 and the 201 body, 202 while pending, the job's error when it failed; 404 EXPORT_NOT_FOUND."""
        not_found = ApiError(
            "EXPORT_NOT_FOUND", "No such export of this session.", {"session_id": session_id, "export_id": export_id}
        )
        job = self._readable_job(session_id, export_id)
        if job is None or not job.names_itself:
            raise not_found
        if job.status == DONE:
            written = self._exporter.presented(session_id, export_id, job.file_format)
            if written is None:
                raise not_found  # the item says DONE, the bucket holds nothing under its id
            return 200, written
        if job.status == FAILED:
            raise _job_error(job)
        return 202, job.pending_body()

    def _readable_job(self, session_id: str, export_id: str) -> ExportJob | None:
        """The job, or None when there is none or its item holds what this service never writes (someone else
        wrote it: it names no export)."""
        try:
            return self._jobs.get(session_id, export_id)
        except StoredItemMalformedError as error:
            logger.error("export job item cannot be read", extra={"export_id": export_id, "reason": str(error)})
            return None

    def run(self, session_id: str, export_id: str) -> None:
        """The asynchronous invocation: write the job's export and record how it ended."""
        job = self._readable_job(session_id, export_id)
        if job is None or not job.names_itself or job.status == DONE:
            logger.warning("export job not run", extra={"session_id": session_id, "export_id": export_id})
            return
        try:
            body = self._exporter.export(session_id, job.file_format, withholding_of(job.withheld), export_id=export_id)
        except ApiError as error:
            self._jobs.fail(job, {"code": error.code, "message": error.message, "details": error.details})
            return
        except StoreUnavailableError as error:
            logger.error("export job failed: storage unavailable", extra={"export_id": export_id, "reason": str(error)})
            self._jobs.fail(job, _retry_error("SERVICE_UNAVAILABLE", "Storage was unavailable; request it again."))
            return
        except Exception:
            logger.exception("export job failed", extra={"export_id": export_id})
            self._jobs.fail(job, _retry_error("INTERNAL_ERROR", "The export failed; request it again."))
            return
        self._jobs.finish(job, {name: body[name] for name in ("version_id", "sha256", "evidence_class")})


def _check_withheld_numbers(withholding: Withholding, event_count: int) -> None:
    """The one check of the export's withheld set that needs no read of the chain, made before any job exists."""
    missing = sorted(number for number in withholding.sequence_numbers if number >= event_count)
    if missing:
        raise ApiError(
            "VALIDATION_ERROR",
            "withhold_payloads names sequence numbers the session does not have.",
            {"errors": [{"field": "withhold_payloads", "problem": f"not in the session: {missing[:100]}"}]},
        )


def _retry_error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": {}}


def _job_error(job: ExportJob) -> ApiError:
    error = job.error or {}
    code = error.get("code")
    details = error.get("details")
    if not isinstance(code, str) or code not in STATUS_BY_CODE or STATUS_BY_CODE[code] < 400:
        code = "INTERNAL_ERROR"
    message = error.get("message")
    return ApiError(
        code,
        message if isinstance(message, str) else "The export failed; request it again.",
        {**(details if isinstance(details, dict) else {}), "export_id": job.export_id, "status": FAILED},
    )


class InMemoryExportJobs:
    """``ExportJobStore`` in a dict (tests and the in-process harnesses)."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], ExportJob] = {}

    def create(self, job: ExportJob) -> None:
        stored = self.jobs.get((job.session_id, job.export_id))
        if stored is not None:
            raise ExportJobExistsError(stored)
        self.jobs[(job.session_id, job.export_id)] = job

    def get(self, session_id: str, export_id: str) -> ExportJob | None:
        return self.jobs.get((session_id, export_id))

    def restart(self, job: ExportJob, requested_at: datetime) -> bool:
        if self.jobs.get((job.session_id, job.export_id)) != job:
            return False
        self.jobs[(job.session_id, job.export_id)] = replace(job, status=PENDING, requested_at=requested_at, error=None)
        return True

    def finish(self, job: ExportJob, result: dict[str, Any]) -> None:
        self.jobs[(job.session_id, job.export_id)] = replace(job, status=DONE, result=result, error=None)

    def fail(self, job: ExportJob, error: dict[str, Any]) -> None:
        self.jobs[(job.session_id, job.export_id)] = replace(job, status=FAILED, error=error)
