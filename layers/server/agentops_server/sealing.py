"""The sealer (ELS sections 5, 6 and 8): finds sessions due for sealing, seals each once, archives it, publishes keys.

A pure core over three interfaces (``ChainStore``, ``Signer``, ``Archive``) and the caller's clock; the Lambda
handler (``functions/seal/app.py``) only builds them from the environment.

Sealing one session, and why every step is safe to crash after (the next scheduled run picks the session up again,
because it stays in the store's due index until ``mark_sealed``):

1. Decide the seal, once. If the chain's last stored batch is already a ``CHAIN_SEAL`` (an earlier run crashed after
   persisting it), reuse it. Otherwise re-verify the stored chain with the verifier library; a chain that does not
   verify is never sealed (``refuse_seal`` plus an alarm). Then sign the ELS section 5 payload with KMS, check the
   signature with the verifier's own ECDSA code, and store the seal as a one-event batch at sequence ``n``: the same
   conditional write that orders appends, so an append racing the seal and the seal cannot both win. Losing that race
   (``SequenceConflictError``) skips the session for this run; it is due again later.
2. ``advance_head`` + ``mark_sealing``: the session shows SEALING and ingest answers 409 SESSION_SEALED.
3. Classify: the verifier library reads the sealed chain with every key this deployment ever signed with trusted, and
   gives the evidence class (ELS section 6), while the same pass computes the archive's SHA-256.
4. Archive: one JSONL object per session, written once; a retry finds it and returns the same version.
5. With an evidence log: the session is marked "archived, not yet logged" (``EvidenceLogPublisher``), durably,
   before it leaves the due index, so a crash in between archives and marks it again (both idempotent).
6. ``mark_sealed`` with the archive version and the verifier's class: the session leaves the due index.

At the end of every run (also one that found nothing due: an earlier run may have crashed before publishing) the
evidence log publishes the marked sessions: ``agentops_server.evidence_log`` says how and why it is crash-safe.

Never reseal: a session whose tail is a seal is only ever finished, never signed again, and a SEALED head is skipped.
The signing key is recorded in the store and published to the archive before it signs anything, so no seal can exist
whose key was not published (ELS section 8).

Alarms: log records with a stable ``alarm`` field (``SEAL_REFUSED``, ``ARCHIVE_CONFLICT``) so a metric filter can
page someone; both mean the stored evidence disagrees with itself.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentops_verify import (
    Report,
    TrustStore,
    canonicalize,
    chain_event,
    load_pem_public_key,
    loads,
    low_s_signature,
    seal_signed_bytes,
    sha256_hex,
    verify_lines,
    verify_signature,
)

from agentops_server.archive import Archive, ArchiveConflictError, ArchiveError
from agentops_server.clock import format_timestamp, parse_timestamp
from agentops_server.evidence_log import EvidenceLogPublisher
from agentops_server.signing import SIGNATURE_ALGORITHM, Signer, SigningError, SigningKeyMisconfiguredError
from agentops_server.store import (
    STATUS_SEALED,
    ChainStore,
    SequenceConflictError,
    SigningKeyRecord,
    StoredBatch,
    StoreError,
)

logger = logging.getLogger(__name__)

SEALER_SOURCE = "agentops-replay-sealer/0.1.0"  # source_sdk_ver of the CHAIN_SEAL event
DEFAULT_SEAL_LIMIT = 50  # sessions per run: bounds one invocation's duration; the schedule takes the rest

ALARM_SEAL_REFUSED = "SEAL_REFUSED"
ALARM_ARCHIVE_CONFLICT = "ARCHIVE_CONFLICT"

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
        limit: int = DEFAULT_SEAL_LIMIT,
        *,
        evidence_log: EvidenceLogPublisher | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._archive = archive
        self._service_id = service_id
        self._limit = limit
        self._key_published = False
        self._evidence_log = evidence_log

    def seal_due_sessions(self, now: datetime, time_left: Callable[[], bool] = lambda: True) -> list[str]:
        """Seal every session due as of ``now`` (up to the run's limit); return the ids sealed by this run.

        ``time_left`` is asked before each session; when it says no, the rest wait for the next run (a session cut
        off by the Lambda timeout is only a crash, which the next run recovers from, but stopping early is cleaner).
        A session that fails for a transient reason (KMS, S3 or DynamoDB down) is logged and left due; a misconfigured
        signing key stops the run, since no session could be sealed with it.
        """
        due = self._store.due_for_sealing(now, self._limit)
        if not due:
            self._publish_evidence_log(now)
            return []
        self._publish_signing_key(now)
        sealed: list[str] = []
        for session_id in due:
            if not time_left():
                logger.info("run out of time; the remaining sessions wait for the next run")
                break
            try:
                if self.seal_session(session_id, now):
                    sealed.append(session_id)
            except SigningKeyMisconfiguredError:
                raise
            except ArchiveConflictError as error:
                logger.error(
                    "archive object disagrees with the sealed chain; not overwritten, session left SEALING",
                    extra={"alarm": ALARM_ARCHIVE_CONFLICT, "session_id": session_id, "detail": str(error)},
                )
            except (StoreError, SigningError, ArchiveError) as error:
                logger.warning(
                    "sealing deferred to the next run",
                    extra={"session_id": session_id, "error": type(error).__name__, "detail": str(error)},
                )
        self._publish_evidence_log(now)
        return sealed

    def seal_session(self, session_id: str, now: datetime) -> bool:
        """Bring one due session to SEALED; True when this call finished it. Idempotent (see module docstring)."""
        head = self._store.get_head(session_id)
        if head is None or head.status == STATUS_SEALED:
            return False
        tip = self._store.tip(session_id)
        if tip is None:
            # Created but no batch was ever stored (the first request failed after creating the head and was never
            # retried): nothing to seal and nothing to verify.
            logger.warning("session has no events; not sealed", extra={"session_id": session_id})
            self._store.refuse_seal(session_id, EMPTY_SESSION_REASON)
            return False
        seal = self._store.get_batch(session_id, tip.first_sequence) if tip.is_seal else None
        if seal is None:
            seal = self._decide_seal(session_id, head.owner, now)
        if seal is None:
            return False
        self._store.advance_head(seal)
        self._store.mark_sealing(session_id)

        classified = self._classify(session_id, seal)
        if classified is None:
            return False
        archive_ref = self._archive.write_session(session_id, self._store.iter_lines(session_id), classified.sha256)
        if self._evidence_log is not None:
            self._evidence_log.session_archived(session_id, classified.report, seal.lines[0], archive_ref.sha256)
        self._store.mark_sealed(
            session_id,
            archive_ref,
            _seal_time(seal),
            classified.report.evidence_class,
            tuple(classified.report.partial_reasons),
        )
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

    # --- steps --------------------------------------------------------------------------------------------------

    def _publish_signing_key(self, now: datetime) -> None:
        """Record and publish this deployment's key before it signs anything (once per process)."""
        if self._key_published:
            return
        self._store.record_signing_key(
            SigningKeyRecord(
                signer_key_id=self._signer.key_id,
                algorithm=SIGNATURE_ALGORITHM,
                public_key_pem=self._signer.public_key_pem,
                first_used_at=now,
            )
        )
        self._archive.publish_keys(self._store.signing_keys())
        self._key_published = True

    def _publish_evidence_log(self, now: datetime) -> None:
        """Publish the evidence log (at most one checkpoint signature); its failures are logged, never raised."""
        if self._evidence_log is not None:
            self._evidence_log.run(
                keys=lambda: [load_pem_public_key(record.public_key_pem) for record in self._store.signing_keys()],
                before_signing=lambda: self._publish_signing_key(now),
            )

    def _decide_seal(self, session_id: str, owner: str, now: datetime) -> StoredBatch | None:
        """Verify the unsealed chain, then persist its signed seal; None when refused or an append won the race."""
        report = verify_lines(self._store.iter_lines(session_id), trust=self._trusted_keys())
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
            # A concurrent sealer stored the seal after this run read the tail; the next run finishes it.
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
        )
        try:
            self._store.put_batch(batch)
        except SequenceConflictError:
            logger.info("an append took the seal's sequence number; sealing later", extra={"session_id": session_id})
            return None
        return batch

    def _seal_event(self, session_id: str, event_count: int, final_event_hash: str, now: datetime) -> dict[str, Any]:
        """The CHAIN_SEAL event of ELS section 5 over the verified chain, signed by KMS and checked before use."""
        seal_timestamp = format_timestamp(now)
        payload: dict[str, object] = {
            "ingestion_service_id": self._service_id,
            "seal_timestamp": seal_timestamp,
            "event_count": event_count,
            "final_event_hash": final_event_hash,
            "session_digest": "sha256:" + final_event_hash,
        }
        seal_event_id = str(uuid.uuid4())
        signed_bytes = seal_signed_bytes(session_id, seal_event_id, payload)
        signature = low_s_signature(self._signer.sign(signed_bytes))
        if not verify_signature(load_pem_public_key(self._signer.public_key_pem), signed_bytes, signature):
            # Fail closed: a seal that its own published key cannot check would be worthless evidence forever.
            raise SigningKeyMisconfiguredError(f"KMS signature does not verify under key {self._signer.key_id}")
        payload["signature_algorithm"] = SIGNATURE_ALGORITHM
        payload["signer_key_id"] = self._signer.key_id
        payload["signature"] = base64.b64encode(signature).decode("ascii")
        return chain_event(
            event_id=seal_event_id,
            session_id=session_id,
            sequence_number=event_count,
            timestamp_wall=seal_timestamp,
            event_type="CHAIN_SEAL",
            payload=payload,
            prev_event_hash=final_event_hash,
            chain_authority="server",
            source_sdk_ver=SEALER_SOURCE,
            authority_id=self._service_id,
        )

    def _classify(self, session_id: str, seal: StoredBatch) -> _Classified | None:
        """The verifier's report over the sealed chain (every deployment key trusted) and the archive's SHA-256."""
        digest = hashlib.sha256()
        report = verify_lines(_hashing(self._store.iter_lines(session_id), digest), trust=self._trusted_keys())
        if not report.passed or not report.sealed or report.final_event_hash != seal.last_event_hash:
            self._refuse(session_id, report, "sealed chain does not verify")
            return None
        return _Classified(report=report, sha256=digest.hexdigest())

    def _trusted_keys(self) -> TrustStore:
        """Every key this deployment ever signed with (recorded before first use), so old seals stay AUTHORITATIVE
        after a key rotation."""
        return TrustStore(load_pem_public_key(record.public_key_pem) for record in self._store.signing_keys())

    def _refuse(self, session_id: str, report: Report, message: str) -> None:
        reason = _refusal_reason(report, session_id)
        self._store.refuse_seal(session_id, reason)
        logger.error(message, extra={"alarm": ALARM_SEAL_REFUSED, "session_id": session_id, "reason": reason})


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
