"""The sealer (ELS sections 5, 6 and 8): finds sessions due for sealing, seals each once, archives it, publishes keys.

A pure core over three interfaces (``ChainStore``, ``Signer``, ``Archive``) and the caller's clock; the Lambda
handler (``functions/seal/app.py``) only builds them from the environment.

Sealing one session, and why every step is safe to crash after (the next scheduled run picks the session up again,
because it stays in the store's due index until ``expire_archived``):

1. Decide the seal, once. If the chain's last stored batch is already a ``CHAIN_SEAL`` (an earlier run crashed after
   persisting it), reuse it, but only when a published key signed it: its ``signer_key_id`` names a key object of
   the published key set and its signature verifies under that key over the ELS section 5 bytes (ELS section 8,
   rev 2). So a seal stored under the previous key before a rotation is still finished by the new key's sealer. A key
   the table names is never enough: anything else stored where a seal belongs (a seal someone with write access to the
   table made up, under a key of their own) is refused with the ``SEAL_FORGERY`` alarm, left for a person and never
   archived. Otherwise one streaming pass re-verifies the stored chain with the verifier library and hashes it; a
   chain that does not verify is never sealed (``refuse_seal`` plus an alarm). Then sign the ELS section 5 payload
   with KMS, check the signature with the verifier's own ECDSA code, and store the seal as a one-event batch at
   sequence ``n``: the same conditional write that orders appends, so an append racing the seal and the seal cannot
   both win. Losing that race (``SequenceConflictError``) skips the session for this run.
2. ``advance_head`` + ``mark_sealing``: the session shows SEALING and ingest answers 409 SESSION_SEALED.
3. Classify: the same verifier, fed the seal line, gives the evidence class of the sealed chain (ELS section 6) with
   the published key set trusted (the keys every reader trusts; this sealer's own key is one of them). A reused seal
   is classified by a fresh pass over the whole stored chain instead.
4. Archive: one JSONL object per session, streamed from the store a second time and published only if its SHA-256 is
   the one the verified pass computed; written once, a retry finds it and returns the same version.
5. With an evidence log: the session is marked "archived, not yet logged" (``EvidenceLogPublisher``), durably,
   before it is marked SEALED, so a crash in between archives and marks it again (both idempotent).
6. ``mark_sealed`` with the archive version and the verifier's class.
7. ``expire_archived``: the session's batch items in the table get an expiry (``table_retention`` from now; DynamoDB's
   TTL deletes them then), and the session leaves the due index. Nothing else ever writes an expiry, and ingest
   refuses appends to a SEALED head before it reads any batch item, so an expired batch cannot let one through.

At the end of every run (also one that found nothing due: an earlier run may have crashed before publishing) the
evidence log publishes the marked sessions: ``agentops_server.evidence_log_publisher`` says how and why it is
crash-safe. Its checkpoints are checked against the published key objects, never anything in the table.

Never reseal: a session whose tail is a seal is only ever finished, never signed again, and a SEALED head is skipped.

Isolation (one session never holds up the others): every session's failure, of any kind but a misconfigured key, is
logged and the session moved behind the others due now (``defer_seal``); the run goes on. A session's verification
pass may use a third of the time the run has left (``run_budget``); one that cannot finish in it is deferred before
anything is signed. Memory does not grow with the session: every pass streams.

Keys (ELS section 8, rev 2): the trust anchors are KMS and the Object Lock bucket, never the table. Before it signs
anything, the sealer publishes its own key, as KMS ``GetPublicKey`` gives it, as the write-once object
``keys/<signer_key_id>.pem``, and rewrites ``keys/index.json`` from the valid key objects alone; those key objects
are the keys it trusts. Nothing here reads or writes a key record in the table.

Alarms: log records with a stable ``alarm`` field. ``SEAL_REFUSED``, ``SEAL_FORGERY`` and ``ARCHIVE_CONFLICT`` mean
the stored evidence disagrees with itself; ``SEAL_FAILED`` (a session that cannot be read or failed unexpectedly)
and ``SEAL_DEFERRED`` (a session too large for the time left) mean a session is waiting longer than it should.

Metrics (``agentops_server.metrics``, through the recorder given): every run reports the sessions it sealed and the
age, at the run's start, of the oldest due session it looked at (how long since the session ended or went idle; 0
when nothing is due); every sealed session its seal latency (end or idle deadline to ``seal_timestamp``); every
refusal and deferral one count.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentops_verify import (
    SIGNATURE_ALGORITHM,
    ChainVerifier,
    Report,
    SealSigningError,
    TrustStore,
    build_seal_event,
    canonicalize,
    load_pem_public_key,
    loads,
    sha256_hex,
    verify_lines,
)

from agentops_server.archive import Archive, ArchiveConflictError, ArchiveError
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.config import DEFAULT_SEAL_IDLE_SECONDS, DEFAULT_SEALED_BATCH_RETENTION_DAYS
from agentops_server.evidence_log_publisher import EvidenceLogPublisher
from agentops_server.metrics import (
    NO_METRICS,
    OLDEST_DUE_SESSION_AGE,
    SEAL_LATENCY,
    SEAL_REFUSALS,
    SESSIONS_DEFERRED,
    SESSIONS_SEALED,
    MetricsRecorder,
)
from agentops_server.run_budget import Deadline, OutOfTimeError, Remaining, unlimited, within
from agentops_server.seal_keys import PublishedKeySet, signed_by_a_published_key
from agentops_server.signing import Signer, SigningError, SigningKeyMisconfiguredError
from agentops_server.store import (
    STATUS_SEALED,
    ChainStore,
    ChainTip,
    SequenceConflictError,
    SessionHead,
    SigningKeyRecord,
    StoredBatch,
    StoredItemMalformedError,
    StoreError,
)

logger = logging.getLogger(__name__)

SEALER_SOURCE = "agentops-replay-sealer/0.1.0"  # source_sdk_ver of the CHAIN_SEAL event
DEFAULT_SEAL_LIMIT = 50  # sessions per run: bounds one invocation's duration; the schedule takes the rest
DEFER_SECONDS = 300  # a session that failed or ran out of time is due again this much later (one default schedule)
VERIFICATION_SHARE = 1 / 3  # of the run's time left: the most a session's verification pass may take

ALARM_SEAL_REFUSED = "SEAL_REFUSED"
ALARM_SEAL_FORGERY = "SEAL_FORGERY"
ALARM_ARCHIVE_CONFLICT = "ARCHIVE_CONFLICT"
ALARM_SEAL_FAILED = "SEAL_FAILED"
ALARM_SEAL_DEFERRED = "SEAL_DEFERRED"

EMPTY_SESSION_REASON = "EMPTY_SESSION"


@dataclass(frozen=True)
class _Classified:
    report: Report
    sha256: str  # of the archive body: every line + LF


class Sealer:
    def __init__(
        self,
        store: ChainStore,
        signer: Signer,
        archive: Archive,
        service_id: str,
        *,
        limit: int = DEFAULT_SEAL_LIMIT,
        table_retention: timedelta | None = timedelta(days=DEFAULT_SEALED_BATCH_RETENTION_DAYS),
        evidence_log: EvidenceLogPublisher | None = None,
        seal_idle: timedelta = timedelta(seconds=DEFAULT_SEAL_IDLE_SECONDS),
        metrics: MetricsRecorder = NO_METRICS,
    ) -> None:
        self._store = store
        self._signer = signer
        self._archive = archive
        self._service_id = service_id
        self._limit = limit
        self._table_retention = table_retention  # None: an archived session's table copies are kept
        self._published: PublishedKeySet | None = None  # the key objects, once this sealer's key is one
        self._evidence_log = evidence_log
        self._seal_idle = seal_idle
        self._metrics = metrics
        self._due_since: list[datetime] = []  # when each session this run looked at became due

    def seal_due_sessions(self, now: datetime, remaining: Remaining = unlimited) -> list[str]:
        """Seal every session due as of ``now`` (up to the run's limit); return the ids sealed by this run.

        ``remaining`` says how many seconds the run has left; the run stops taking sessions when it reaches 0. A
        misconfigured signing key stops the run, since no session could be sealed with it; any other failure affects
        only its own session, which is logged and deferred.
        """
        due = self._store.due_for_sealing(now, self._limit)
        self._due_since = []
        if not due:
            self._report_run(now, [])
            self._publish_evidence_log(now)
            return []
        self._publish_own_key(now)
        sealed: list[str] = []
        for session_id in due:
            if remaining() <= 0:
                logger.info("run out of time; the remaining sessions wait for the next run")
                break
            try:
                if self.seal_session(session_id, now, remaining):
                    sealed.append(session_id)
            except SigningKeyMisconfiguredError:
                raise
            except Exception as error:  # whatever one session does, the others are still sealed
                self._defer(session_id, now, error)
        self._report_run(now, sealed)
        self._publish_evidence_log(now)
        return sealed

    def _report_run(self, now: datetime, sealed: list[str]) -> None:
        self._metrics.record(SESSIONS_SEALED, len(sealed))
        oldest = min(self._due_since, default=now)
        self._metrics.record(OLDEST_DUE_SESSION_AGE, max(0.0, (now - oldest).total_seconds()))

    def seal_session(self, session_id: str, now: datetime, remaining: Remaining = unlimited) -> bool:
        """Bring one due session to SEALED; True when this call finished it. Idempotent (see module docstring).
        Raises ``OutOfTimeError`` when the session cannot be finished in the time ``remaining`` gives."""
        head = self._store.get_head(session_id)
        if head is None:
            return False
        if head.status == STATUS_SEALED:
            # An earlier run ran out of time before the table copies had their expiry. The head is only a table
            # item: expire nothing unless the session's archive is there, as the head records it.
            if head.archive is None or self._archive.archived_sha256(session_id) != head.archive.sha256:
                self._refuse_forgery(session_id, "the head says SEALED but the session's archive is not there")
                return False
            self._expire_table_copies(session_id, now, remaining)
            return False
        tip = self._store.tip(session_id)
        if tip is None:
            # Created but no batch was ever stored (the first request failed after creating the head and was never
            # retried): nothing to seal and nothing to verify.
            logger.warning("session has no events; not sealed", extra={"session_id": session_id})
            self._store.refuse_seal(session_id, EMPTY_SESSION_REASON)
            return False
        due_since = _due_since(head, tip, self._seal_idle)
        self._due_since.append(due_since)
        verification = Deadline.share_of_run(remaining, VERIFICATION_SHARE)
        if tip.is_seal:
            seal = self._store.get_batch(session_id, tip.first_sequence)
            if seal is None or not signed_by_a_published_key(seal, self._published_keys()):
                self._refuse_forgery(session_id, "the stored seal was not signed by a published key")
                return False
            classified = self._classify(session_id, seal, verification)
        else:
            decided = self._decide_seal(session_id, head.owner, now, verification)
            if decided is None:
                return False
            seal, classified = decided
        self._store.advance_head(seal)
        self._store.mark_sealing(session_id)
        if classified is None:
            return False
        lines = within(self._store.iter_lines(session_id), Deadline.end_of_run(remaining), "archiving")
        archive_ref = self._archive.write_session(session_id, lines, classified.sha256)
        if self._evidence_log is not None:
            self._evidence_log.session_archived(session_id, classified.report, seal.lines[0], archive_ref.sha256)
        self._store.mark_sealed(
            session_id,
            archive_ref,
            _seal_time(seal),
            classified.report.evidence_class,
            tuple(classified.report.partial_reasons),
        )
        self._expire_table_copies(session_id, now, remaining)
        self._metrics.record(SEAL_LATENCY, max(0.0, (_seal_time(seal) - due_since).total_seconds()))
        logger.info(
            "session sealed",
            extra={
                "session_id": session_id,
                "event_count": seal.first_sequence,
                "evidence_class": classified.report.evidence_class,
                "archive_version_id": archive_ref.version_id,
            },
        )
        return True

    def _expire_table_copies(self, session_id: str, now: datetime, remaining: Remaining) -> None:
        """Step 6, once the archive is the evidence: the session's batch items in the table get their expiry (TTL),
        in at most a third of the time left; what is not done then is done by a later run (the session stays due)."""
        expires_at = None if self._table_retention is None else now + self._table_retention
        deadline = Deadline.share_of_run(remaining, VERIFICATION_SHARE)
        if not self._store.expire_archived(session_id, expires_at, stop=deadline.passed):
            logger.info("the table copies' expiry continues in a later run", extra={"session_id": session_id})
            self._store.defer_seal(session_id, now + timedelta(seconds=DEFER_SECONDS))

    def _defer(self, session_id: str, now: datetime, error: Exception) -> None:
        """Log why a session was not sealed in this run and move it behind the sessions due now."""
        level, alarm, message = _why_deferred(error)
        extra = {"session_id": session_id, "error": type(error).__name__, "detail": str(error)}
        logger.log(level, message, extra=extra if alarm is None else {**extra, "alarm": alarm})
        self._metrics.record(SESSIONS_DEFERRED, 1)
        if alarm == ALARM_ARCHIVE_CONFLICT:
            self._metrics.record(SEAL_REFUSALS, 1, {"Alarm": alarm})
        try:
            self._store.defer_seal(session_id, now + timedelta(seconds=DEFER_SECONDS))
        except StoreError as failed:
            logger.warning("the session keeps its place: deferring it failed", extra={"detail": str(failed)})

    # --- steps --------------------------------------------------------------------------------------------------

    def _publish_own_key(self, now: datetime) -> None:
        """Publish this sealer's KMS key as a write-once key object before it signs anything, and the key index from
        the valid key objects alone (once per process)."""
        if self._published is not None:
            return
        own = SigningKeyRecord(
            signer_key_id=self._signer.key_id,
            algorithm=SIGNATURE_ALGORITHM,
            public_key_pem=self._signer.public_key_pem,
            first_used_at=now,
        )
        self._archive.publish_key(own)
        published = self._archive.published_keys()
        recorded = next((key for key in published if key.signer_key_id == own.signer_key_id), None)
        if recorded is None:
            raise ArchiveConflictError(
                f"keys/{own.signer_key_id}.pem does not hold this sealer's KMS key: no seal is signed until it does"
            )
        self._archive.publish_key_index(published)
        self._published = PublishedKeySet(self._archive, published)

    def _publish_evidence_log(self, now: datetime) -> None:
        """Publish the evidence log (at most one checkpoint signature); its failures are logged, never raised. Earlier
        checkpoints are checked against the published key objects, never anything in the table."""
        if self._evidence_log is not None:
            self._evidence_log.run(
                keys=lambda: [load_pem_public_key(record.public_key_pem) for record in self._archive.published_keys()],
                before_signing=lambda: self._publish_own_key(now),
            )

    def _decide_seal(
        self, session_id: str, owner: str, now: datetime, verification: Deadline
    ) -> tuple[StoredBatch, _Classified | None] | None:
        """Verify the unsealed chain in one streaming pass, then persist its signed seal; None when refused or an
        append won the race. With the seal, the sealed chain's classification (None when it fails)."""
        verifier = ChainVerifier(self._trusted_keys())
        digest = hashlib.sha256()
        session_bytes = 0
        for line in within(self._store.iter_lines(session_id), verification, "verification before signing"):
            verifier.add_line(line)
            digest.update(line + b"\n")
            session_bytes += len(line) + 1
        report = verifier.finish()
        final_event_hash = report.final_event_hash
        if (
            not report.passed
            or report.authority != "server"
            or report.session_id != session_id
            or final_event_hash is None
        ):
            self._refuse(session_id, report, "stored chain does not verify")
            return None
        if report.sealed:
            tip = self._store.tip(session_id)
            if tip is None or not tip.is_seal:
                self._refuse_forgery(session_id, "the chain ends with a CHAIN_SEAL that the sealer did not store")
            # Otherwise a concurrent sealer stored its seal after this run read the tip; the next run finishes it.
            return None
        seal_event = self._seal_event(session_id, report.event_count, final_event_hash, now)
        line = canonicalize(seal_event)
        batch = StoredBatch(
            session_id=session_id,
            first_sequence=report.event_count,
            lines=(line,),
            event_ids=(seal_event["event_id"],),
            event_hashes=(seal_event["event_hash"],),
            owner=owner,
            request_digest=sha256_hex(line),
            accepted_at=now,
            is_seal=True,
            session_bytes=session_bytes + len(line) + 1,
        )
        try:
            self._store.put_batch(batch)
        except SequenceConflictError:
            logger.info("an append took the seal's sequence number; sealing later", extra={"session_id": session_id})
            return None
        verifier.add_line(line)
        digest.update(line + b"\n")
        return batch, self._classified(session_id, batch, verifier.finish(), digest.hexdigest())

    def _seal_event(self, session_id: str, event_count: int, final_event_hash: str, now: datetime) -> dict[str, Any]:
        """The CHAIN_SEAL event of ELS section 5 over the verified chain, signed by KMS and checked before use."""
        try:
            return build_seal_event(
                session_id=session_id,
                seal_event_id=str(uuid.uuid4()),
                event_count=event_count,
                final_event_hash=final_event_hash,
                seal_timestamp=format_timestamp(now),
                ingestion_service_id=self._service_id,
                chain_authority="server",
                source_sdk_ver=SEALER_SOURCE,
                signer=self._signer,
                authority_id=self._service_id,
            )
        except SealSigningError as error:
            # Fail closed: a seal that its own published key cannot check would be worthless evidence forever.
            raise SigningKeyMisconfiguredError(f"KMS key {self._signer.key_id}: {error}") from error

    def _classify(self, session_id: str, seal: StoredBatch, deadline: Deadline) -> _Classified | None:
        """A reused seal: the verifier's report over the whole stored chain (the published key set trusted) and the
        archive's SHA-256, in one streaming pass."""
        digest = hashlib.sha256()
        lines = within(self._store.iter_lines(session_id), deadline, "verification of the sealed chain")
        report = verify_lines(_hashing(lines, digest), trust=self._trusted_keys())
        return self._classified(session_id, seal, report, digest.hexdigest())

    def _classified(self, session_id: str, seal: StoredBatch, report: Report, sha256: str) -> _Classified | None:
        if not report.passed or not report.sealed or report.final_event_hash != seal.last_event_hash:
            self._refuse(session_id, report, "sealed chain does not verify")
            return None
        return _Classified(report=report, sha256=sha256)

    def _trusted_keys(self) -> TrustStore:
        """The published key set: the only keys whose seals this sealer reuses or archives."""
        return self._published_keys().trust_store()

    def _published_keys(self) -> PublishedKeySet:
        assert self._published is not None, "the key is published before any session is sealed"
        return self._published

    def _refuse(self, session_id: str, report: Report, message: str) -> None:
        reason = _refusal_reason(report, session_id)
        self._store.refuse_seal(session_id, reason)
        logger.error(message, extra={"alarm": ALARM_SEAL_REFUSED, "session_id": session_id, "reason": reason})
        self._metrics.record(SEAL_REFUSALS, 1, {"Alarm": ALARM_SEAL_REFUSED})

    def _refuse_forgery(self, session_id: str, reason: str) -> None:
        """Something no published key signed stands where a seal belongs: never archived, left for a person."""
        self._store.refuse_seal(session_id, f"SEAL_FORGERY: {reason}")
        logger.error(
            "a seal no published key signed is stored; the session is left for a person",
            extra={"alarm": ALARM_SEAL_FORGERY, "session_id": session_id, "reason": reason},
        )
        self._metrics.record(SEAL_REFUSALS, 1, {"Alarm": ALARM_SEAL_FORGERY})


def _why_deferred(error: Exception) -> tuple[int, str | None, str]:
    """How a session's failure is logged: level, alarm (None for a transient failure, which pages nobody), message."""
    if isinstance(error, OutOfTimeError):
        return logging.WARNING, ALARM_SEAL_DEFERRED, "the session needs more time than this run has left"
    if isinstance(error, ArchiveConflictError):
        return logging.ERROR, ALARM_ARCHIVE_CONFLICT, "archive object disagrees with the sealed chain; not overwritten"
    if isinstance(error, StoredItemMalformedError):
        return logging.ERROR, ALARM_SEAL_FAILED, "a stored item of the session cannot be read"
    if isinstance(error, StoreError | SigningError | ArchiveError):
        return logging.WARNING, None, "a service failed; the session is sealed later"
    return logging.ERROR, ALARM_SEAL_FAILED, "sealing the session failed unexpectedly"


def _due_since(head: SessionHead, tip: ChainTip, seal_idle: timedelta) -> datetime:
    """When the session became due: its end, else its idle deadline (the last batch, or the head's last activity,
    plus the idle time). A stored seal's own batch is no activity of the session."""
    if head.ended_at is not None:
        return head.ended_at
    if tip.ends_session:
        return tip.accepted_at  # the head missed the end (a crash after the write)
    last_activity = head.last_activity_at if tip.is_seal else max(head.last_activity_at, tip.accepted_at)
    return last_activity + seal_idle


def _refusal_reason(report: Report, session_id: str) -> str:
    """``CODE at sequence N (event ID): message`` for a failed report; the unmet expectation otherwise."""
    violation = report.first_violation
    if violation is not None:
        return f"{violation.type} {violation.location()}: {violation.message}".replace("  ", " ")
    if report.session_id != session_id:
        return f"the stored events belong to session {report.session_id}"
    if report.authority != "server":
        return f"chain authority is {report.authority!r}, not 'server'"
    if not report.sealed:
        return "the chain read back has no seal"
    return "the chain read back does not end with the stored seal"


def _hashing(lines: Iterable[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for line in lines:
        digest.update(line)
        digest.update(b"\n")
        yield line


def _seal_time(seal: StoredBatch) -> datetime:
    """The seal's own ``seal_timestamp``: the moment the seal was decided, identical on every retry."""
    event = loads(seal.lines[0])
    sealed_at: datetime = parse_timestamp(event["payload"]["seal_timestamp"])
    return sealed_at
