"""The export use case (API.md, POST /v1/sessions/{id}/exports; ELS section 9).

The export document is one JSON object in canonical (JCS) form with exactly the members of ELS section 9 (rev 2):
``export_version``, ``session_id``, ``evidence_class``, ``chain_authority``, ``verification``, ``seal``, ``events``,
``public_keys``, ``generated_at``, ``generator`` and ``pii_findings``, and nothing after it. Events are copied as the
stored canonical lines, so their bytes are exactly what was hashed and archived; a withheld event keeps every envelope
field except ``payload`` and says ``"payload_withheld": true`` (selective disclosure), which leaves every hash intact.
The seal's payload is never withheld: it is the document's ``seal`` member anyway and holds no agent data.

``verification`` is the verifier library's report over the events exactly as the document carries them, reduced to
the members ELS section 7 lists for an export (each of which the verifier recomputes and compares), and
``evidence_class`` is that report's class: an auditor who runs the verifier on the document (pinning the key)
recomputes the same. A chain that does not verify is not exported.

Keys: the report trusts the deployment's published keys (a ``KeySource``), and ``public_keys`` lists the one the seal
names, written from the parsed key itself (its own fingerprint and PEM), never from what a key record claims.

``pii_findings`` (``{sequence_number, kind, pointer}``, ``agentops_server.pii``) covers every payload. A withheld
payload's findings say which kinds of data it holds with ``pointer: null`` (ELS section 9, rev 2): a pointer would name
its members, themselves possibly personal data.

Nothing holds the whole session (DESIGN.md, Scale): a first pass over the chain verifies it, scans it and collects
the members that come after ``events`` in canonical order; a second pass streams the events into the upload. The
second pass must reproduce the first byte for byte (a SHA-256 over the event lines), else the upload is abandoned.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agentops_verify import EXPORT_VERIFICATION_KEYS, SIGNATURE_ALGORITHM, ChainVerifier, canonicalize

from agentops_server import pdf
from agentops_server.archive_reader import ArchiveLines, ArchiveReader
from agentops_server.clock import Clock, format_timestamp
from agentops_server.errors import ApiError
from agentops_server.export_store import ExportExistsError, ExportStore, StoredExport
from agentops_server.pii import scan_event, withheld_findings
from agentops_server.replay import (
    KeySource,
    TrustedKeys,
    archive_mismatch,
    session_mismatch,
    session_not_found,
    verification_failed,
)
from agentops_server.store import ChainStore, SessionHead, StoreUnavailableError
from agentops_server.viewer import viewer_chunks

EXPORT_VERSION = "1.0"
PRESIGNED_URL_SECONDS = 900  # API.md: the link lasts 15 minutes
GENERATOR = "agentops-replay-export/0.2.0"
PII_FINDINGS_KEY = "pii_findings"
WITHHELD_FLAG = "payload_withheld"
# ELS section 7 (rev 2): the members of an export's ``verification``; the verifier states them once.
VERIFICATION_MEMBERS = EXPORT_VERIFICATION_KEYS


class ExportSourceChangedError(StoreUnavailableError):
    """The second read of the chain differs from the first: nothing is published (503, retry)."""


@dataclass(frozen=True)
class Withholding:
    """Which payloads to leave out: none, all, or the listed sequence numbers (``withhold_payloads``)."""

    all_payloads: bool = False
    sequence_numbers: frozenset[int] = frozenset()

    @classmethod
    def from_request(cls, withhold_payloads: bool | Sequence[int]) -> Withholding:
        if isinstance(withhold_payloads, bool):
            return cls(all_payloads=withhold_payloads)
        return cls(sequence_numbers=frozenset(withhold_payloads))

    @property
    def withholds_any(self) -> bool:
        return self.all_payloads or bool(self.sequence_numbers)

    def applies_to(self, event: dict[str, Any]) -> bool:
        return event.get("event_type") != "CHAIN_SEAL" and (
            self.all_payloads or event.get("sequence_number") in self.sequence_numbers
        )


def export_form(line: bytes, withholding: Withholding) -> tuple[bytes, dict[str, Any]]:
    """One stored line as the document carries it, and the parsed event (with its payload, for the scan)."""
    # The standard parser is enough here: the verifier reads every line strictly, and a chain it fails is never
    # exported, so nothing parsed differently can reach a document.
    event: dict[str, Any] = json.loads(line)
    if not withholding.applies_to(event):
        return line, event
    withheld = {name: value for name, value in event.items() if name != "payload"}
    withheld[WITHHELD_FLAG] = True
    return canonicalize(withheld), event


def _export_lines(lines: Iterable[bytes], withholding: Withholding) -> Iterator[bytes]:
    if not withholding.withholds_any:
        return iter(lines)  # nothing to change: no need to parse
    return (export_form(line, withholding)[0] for line in lines)


@dataclass(frozen=True)
class ExportSurvey:
    """What the first pass over the chain learns: everything of the document but the events themselves."""

    report: dict[str, Any]  # the verifier's whole report
    event_count: int
    events_sha256: str  # over the document's event lines, each followed by LF
    seal: dict[str, Any] | None
    chain_authority: str | None
    findings: list[dict[str, Any]]

    @property
    def evidence_class(self) -> str:
        return str(self.report["evidence_class"])

    @property
    def verification(self) -> dict[str, Any]:
        """The document's ``verification`` member."""
        return {name: self.report[name] for name in VERIFICATION_MEMBERS}


def survey_chain(lines: Iterable[bytes], withholding: Withholding, trust: TrustedKeys) -> ExportSurvey:
    """Verify the events as the document will carry them (withheld payloads allowed, ELS section 9), scan the
    disclosed payloads and collect the seal; ``ApiError`` VALIDATION_ERROR when a withheld sequence number is not in
    the chain."""
    verifier = ChainVerifier(trust.trust_store(), allow_withheld_payloads=True)
    digest = hashlib.sha256()
    findings: list[dict[str, Any]] = []
    seal: dict[str, Any] | None = None
    chain_authority: str | None = None
    count = 0
    for line in lines:
        document_line, event = export_form(line, withholding)
        verifier.add_line(document_line)
        digest.update(document_line + b"\n")
        count += 1
        chain_authority = chain_authority or event.get("chain_authority")
        if event.get("event_type") == "CHAIN_SEAL":
            seal = event.get("payload")
        if withholding.applies_to(event):
            findings.extend(withheld_findings(scan_event(event)))
        else:
            findings.extend(scan_event(event))
    missing = sorted(number for number in withholding.sequence_numbers if number >= count)
    if missing:
        raise ApiError(
            "VALIDATION_ERROR",
            "withhold_payloads names sequence numbers the session does not have.",
            {"errors": [{"field": "withhold_payloads", "problem": f"not in the session: {missing}"}]},
        )
    report = verifier.finish().to_dict()
    return ExportSurvey(report, count, digest.hexdigest(), seal, chain_authority, findings)


def document_chunks(
    *,
    session_id: str,
    survey: ExportSurvey,
    event_lines: Iterable[bytes],
    trust: TrustedKeys,
    generated_at: str,
    log_proof: dict[str, Any] | None = None,
) -> Iterator[bytes]:
    """The document's canonical bytes in pieces, the events streamed from ``event_lines`` (the second pass), which
    must be exactly the lines the survey saw (``ExportSourceChangedError`` otherwise, after the last piece but one)."""
    members: dict[str, bytes] = {
        "chain_authority": canonicalize(survey.chain_authority),
        "evidence_class": canonicalize(survey.evidence_class),
        "export_version": canonicalize(EXPORT_VERSION),
        "generated_at": canonicalize(generated_at),
        "generator": canonicalize(GENERATOR),
        PII_FINDINGS_KEY: canonicalize(survey.findings),
        "public_keys": canonicalize(_public_keys(survey.seal, trust)),
        "seal": canonicalize(survey.seal),
        "session_id": canonicalize(session_id),
        "verification": canonicalize(survey.verification),
    }
    if log_proof is not None:
        # LOG.md section 5: the session's inclusion in the evidence log, absent while it is not yet published.
        members["log_proof"] = canonicalize(log_proof)
    # RFC 8785 section 3.2.3: members sorted by the UTF-16 code units of their names (all ASCII here: plain order).
    names = sorted([*members, "events"])
    for position, name in enumerate(names):
        yield (b"{" if position == 0 else b",") + canonicalize(name) + b":"
        if name == "events":
            yield from _event_array(event_lines, survey)
        else:
            yield members[name]
    yield b"}"


def _event_array(event_lines: Iterable[bytes], survey: ExportSurvey) -> Iterator[bytes]:
    digest = hashlib.sha256()
    count = 0
    yield b"["
    for line in itertools.islice(event_lines, survey.event_count):
        digest.update(line + b"\n")
        yield line if count == 0 else b"," + line
        count += 1
    if count != survey.event_count or digest.hexdigest() != survey.events_sha256:
        raise ExportSourceChangedError("the chain read for the document differs from the chain that was verified")
    yield b"]"


@dataclass(frozen=True)
class ExportDocument:
    body: bytes  # canonical JCS bytes
    evidence_class: str
    report: dict[str, Any]


def build_export_document(
    *,
    session_id: str,
    lines: Sequence[bytes],
    withholding: Withholding,
    trust: TrustedKeys,
    generated_at: str,
    log_proof: dict[str, Any] | None = None,
) -> ExportDocument:
    """The whole document in memory, from the session's canonical event lines (for small chains and tests)."""
    survey = survey_chain(lines, withholding, trust)
    body = b"".join(
        document_chunks(
            session_id=session_id,
            survey=survey,
            event_lines=_export_lines(lines, withholding),
            trust=trust,
            generated_at=generated_at,
            log_proof=log_proof,
        )
    )
    return ExportDocument(body, survey.evidence_class, survey.report)


def _public_keys(seal: dict[str, Any] | None, trust: TrustedKeys) -> list[dict[str, str]]:
    """The trusted key the seal names (``GET /v1/keys`` entry form); none for an unsealed or unsigned chain, or a seal
    whose key is not trusted."""
    key_id = seal.get("signer_key_id") if seal else None
    key = trust.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        return []
    return [{"signer_key_id": key.key_id, "algorithm": SIGNATURE_ALGORITHM, "public_key_pem": key.pem}]


def untrusted_seal(report: dict[str, Any]) -> dict[str, Any]:
    """Why a chain sealed under a key the deployment does not trust is not exported: a document states its class as
    if the seal's key were trusted (ELS section 7), so it would either claim a class its own report denies, and fail
    verification, or print a class nothing supports."""
    return {
        **report,
        "violations": [
            {
                "type": "UNTRUSTED_SEAL_KEY",
                "message": "the seal is signed by a key this deployment does not trust",
                "event_sequence": report.get("event_count", 1) - 1,
                "event_id": None,
                "context": {"signer_key_id": report.get("seal_key_id")},
            }
        ],
    }


class ExportService:
    """Reads the session twice (the archive version when sealed, the chain store otherwise), streams the document
    to the exports area (and for ``pdf`` or ``html`` its rendering beside it) and answers with a presigned link."""

    def __init__(
        self,
        *,
        store: ChainStore,
        archive_reader: ArchiveReader,
        exports: ExportStore,
        clock: Clock,
        trusted_keys: KeySource,
        new_export_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        render_pdf: Callable[[bytes], bytes] = pdf.render_pdf,
        log_proofs: Callable[[str], dict[str, Any] | None] = lambda _session_id: None,
    ) -> None:
        self._store = store
        self._archive = archive_reader
        self._exports = exports
        self._clock = clock
        self._trusted_keys = trusted_keys
        self._new_export_id = new_export_id
        self._render_pdf = render_pdf
        self._log_proofs = log_proofs

    def export(
        self, session_id: str, file_format: str, withholding: Withholding, export_id: str | None = None
    ) -> dict[str, Any]:
        """The 201 body of API.md; ``ApiError`` SESSION_NOT_FOUND, VALIDATION_ERROR or VERIFICATION_FAILED (the
        chain does not verify, as replay answers it, or its seal is signed by a key that is not trusted); nothing is
        written on any of them. Without ``export_id`` every call is a fresh export; with one (an asynchronous job,
        ``agentops_server.export_jobs``) the objects that id already names are reused, never written twice."""
        head = self._store.get_head(session_id)
        if head is None:
            raise session_not_found(session_id)
        trust = TrustedKeys.of(self._trusted_keys())
        survey = survey_chain(self._chain(head), withholding, trust)
        if survey.report.get("status") != "PASS":
            raise verification_failed(survey.report)
        if survey.report.get("session_id") != session_id:
            raise verification_failed(session_mismatch(session_id, survey.report))
        if survey.report.get("seal_signed") and not survey.report.get("seal_key_trusted"):
            raise verification_failed(untrusted_seal(survey.report))
        reuse = export_id is not None
        export_id = export_id or self._new_export_id()

        def document() -> Iterator[bytes]:
            return document_chunks(
                session_id=session_id,
                survey=survey,
                event_lines=_export_lines(self._chain(head), withholding),
                trust=trust,
                generated_at=format_timestamp(self._clock.now()),
                log_proof=self._log_proofs(session_id) if head.archive is not None else None,
            )

        evidence_class = survey.evidence_class
        stored = self._put(session_id, export_id, "json", document, reuse=reuse, evidence_class=evidence_class)
        if file_format == "pdf":
            # Rendered from the stored export document alone (ELS section 9), which is read back for it.
            stored = self._put(
                session_id,
                export_id,
                "pdf",
                lambda: iter([self._render_pdf(self._exports.read(stored))]),
                reuse=reuse,
                evidence_class=evidence_class,
            )
        elif file_format == "html":
            # The replay viewer: the stored document itself, embedded, re-verified by the reader's browser.
            stored = self._put(
                session_id,
                export_id,
                "html",
                lambda: viewer_chunks([self._exports.read(stored)]),
                reuse=reuse,
                evidence_class=evidence_class,
            )
        return self._body(export_id, file_format, stored, evidence_class)

    def presented(self, session_id: str, export_id: str, file_format: str) -> dict[str, Any] | None:
        """The 201 body of an export written earlier, as the bucket holds it (its version, the SHA-256 of its bytes,
        the class written with it), with a fresh link; None when nothing is written under its id. A job item is
        attacker-writable, so nothing it records is shown."""
        stored = self._exports.find(session_id, export_id, file_format)
        return None if stored is None else self._body(export_id, file_format, stored, stored.evidence_class)

    def _put(
        self,
        session_id: str,
        export_id: str,
        file_format: str,
        chunks: Callable[[], Iterable[bytes]],
        *,
        reuse: bool,
        evidence_class: str,
    ) -> StoredExport:
        existing = self._exports.find(session_id, export_id, file_format) if reuse else None
        if existing is not None:
            return existing
        try:
            return self._exports.put(session_id, export_id, file_format, chunks(), evidence_class)
        except ExportExistsError:
            found = self._exports.find(session_id, export_id, file_format) if reuse else None
            if found is None:
                raise
            return found  # a concurrent run of the same job wrote it first

    def _body(self, export_id: str, file_format: str, stored: StoredExport, evidence_class: Any) -> dict[str, Any]:
        return {
            "export_id": export_id,
            "format": file_format,
            "bucket": stored.bucket,
            "key": stored.key,
            "version_id": stored.version_id,
            "sha256": stored.sha256,
            "url": self._exports.presigned_url(stored, PRESIGNED_URL_SECONDS),
            "expires_in": PRESIGNED_URL_SECONDS,
            "evidence_class": evidence_class,
        }

    def _chain(self, head: SessionHead) -> Iterator[bytes]:
        """The session's lines: the archive version when sealed (its SHA-256 checked at the end), else the store."""
        if head.archive is None:
            yield from self._store.iter_lines(head.session_id)
            return
        lines = ArchiveLines(self._archive.iter_chunks(head.archive))
        yield from lines
        if lines.sha256 != head.archive.sha256:
            raise verification_failed(archive_mismatch(head.archive, head.session_id))
