"""The export use case (API.md, POST /v1/sessions/{id}/exports; ELS section 9).

The export document is one JSON object in canonical (JCS) form with the keys of ELS section 9 plus ``pii_findings``
(the PII scan of the disclosed payloads: location and kind only, never the matched text). Events are copied as the
stored canonical lines, so their bytes are exactly what was hashed and archived; a withheld event keeps every envelope
field except ``payload`` and says ``"payload_withheld": true`` (selective disclosure), which leaves every hash intact.

``verification`` is the verifier library's report over the events exactly as the document carries them, with every
key this deployment ever signed with trusted, and ``evidence_class`` is that report's class. An auditor who runs the
verifier on the document (pinning the key) recomputes the same. The document is held in memory while it is built:
it is as large as the archived chain.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agentops_verify import Report, TrustStore, canonicalize, load_pem_public_key, verify_lines

from agentops_server import pdf
from agentops_server.archive_reader import ArchiveLines
from agentops_server.clock import Clock, format_timestamp
from agentops_server.errors import ApiError
from agentops_server.export_store import ExportStore
from agentops_server.pii import scan_event
from agentops_server.replay import (
    ArchiveReader,
    archive_mismatch,
    session_mismatch,
    session_not_found,
    verification_failed,
)
from agentops_server.store import ChainStore, SigningKeyRecord

EXPORT_VERSION = "1.0"
PRESIGNED_URL_SECONDS = 900  # API.md: the link lasts 15 minutes
GENERATOR = "agentops-replay-export/0.1.0"
PII_FINDINGS_KEY = "pii_findings"
WITHHELD_FLAG = "payload_withheld"


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

    def applies_to(self, sequence_number: Any) -> bool:
        return self.all_payloads or sequence_number in self.sequence_numbers


@dataclass(frozen=True)
class ExportDocument:
    body: bytes  # canonical JCS bytes
    evidence_class: str
    report: dict[str, Any]


def verify_export_events(lines: Iterable[bytes], trusted_pems: list[str]) -> Report:
    """The verifier library's report over an export's events (withheld payloads allowed, ELS section 9)."""
    trust = TrustStore(load_pem_public_key(pem) for pem in trusted_pems)
    return verify_lines(lines, trust=trust, allow_withheld_payloads=True)


class VerificationReport(Protocol):
    """What the export needs of a verifier report (``agentops_verify``'s ``Report``)."""

    @property
    def evidence_class(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


Verify = Callable[[Iterable[bytes], list[str]], VerificationReport]


def build_export_document(
    *,
    session_id: str,
    lines: Iterable[bytes],
    withholding: Withholding,
    verify: Verify,
    signing_keys: Sequence[SigningKeyRecord],
    generated_at: str,
) -> ExportDocument:
    """Build the ELS section 9 document from the session's canonical event lines (in sequence order)."""
    events: list[bytes] = []
    findings: list[dict[str, Any]] = []
    seal: dict[str, Any] | None = None
    chain_authority: str | None = None
    for line in lines:
        # The standard parser is enough here: the verifier reads every line strictly below, and a chain it fails is
        # never exported (ExportService), so nothing parsed differently can reach a document.
        event = json.loads(line)
        sequence_number = event.get("sequence_number")
        chain_authority = chain_authority or event.get("chain_authority")
        if event.get("event_type") == "CHAIN_SEAL":
            seal = event.get("payload")
        # The seal's payload is never withheld: it is the document's "seal" member anyway and holds no agent data.
        withheld_here = event.get("event_type") != "CHAIN_SEAL" and withholding.applies_to(sequence_number)
        if isinstance(sequence_number, int) and withheld_here:
            withheld = {name: value for name, value in event.items() if name != "payload"}
            withheld[WITHHELD_FLAG] = True
            events.append(canonicalize(withheld))
        else:
            findings.extend(scan_event(event))
            events.append(line)
    missing = sorted(number for number in withholding.sequence_numbers if number >= len(events))
    if missing:
        raise ApiError(
            "VALIDATION_ERROR",
            "withhold_payloads names sequence numbers the session does not have.",
            {"errors": [{"field": "withhold_payloads", "problem": f"not in the session: {missing}"}]},
        )
    pems = [record.public_key_pem for record in signing_keys]
    report = verify(events, pems)
    report_dict = report.to_dict()
    members: dict[str, bytes] = {
        "export_version": canonicalize(EXPORT_VERSION),
        "session_id": canonicalize(session_id),
        "evidence_class": canonicalize(report.evidence_class),
        "chain_authority": canonicalize(chain_authority),
        "verification": canonicalize(report_dict),
        "seal": canonicalize(seal),
        "events": b"[" + b",".join(events) + b"]",
        "public_keys": canonicalize(_public_keys(seal, signing_keys)),
        "generated_at": canonicalize(generated_at),
        "generator": canonicalize(GENERATOR),
        PII_FINDINGS_KEY: canonicalize(findings),
    }
    return ExportDocument(_jcs_object(members), report.evidence_class, report_dict)


def _public_keys(seal: dict[str, Any] | None, signing_keys: Sequence[SigningKeyRecord]) -> list[dict[str, str]]:
    """The key the seal names, as published (``GET /v1/keys`` entry form); none for an unsealed or unsigned chain."""
    key_id = seal.get("signer_key_id") if seal else None
    return [
        {"signer_key_id": record.signer_key_id, "algorithm": record.algorithm, "public_key_pem": record.public_key_pem}
        for record in signing_keys
        if record.signer_key_id == key_id
    ]


def _jcs_object(members: dict[str, bytes]) -> bytes:
    """A JCS object from members whose values are already canonical bytes (RFC 8785 section 3.2.3: names sorted by
    UTF-16 code units; every name here is ASCII, where that is plain sorting)."""
    parts = [canonicalize(name) + b":" + members[name] for name in sorted(members)]
    return b"{" + b",".join(parts) + b"}"


class ExportService:
    """Reads the session (the archive version when sealed, the chain store otherwise), builds the document, writes
    it (and for ``pdf`` its rendering beside it) to the exports area and answers with a presigned link."""

    def __init__(
        self,
        *,
        store: ChainStore,
        archive_reader: ArchiveReader,
        exports: ExportStore,
        clock: Clock,
        verify: Verify = verify_export_events,
        new_export_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        render_pdf: Callable[[bytes], bytes] = pdf.render_pdf,
    ) -> None:
        self._store = store
        self._archive = archive_reader
        self._exports = exports
        self._clock = clock
        self._verify = verify
        self._new_export_id = new_export_id
        self._render_pdf = render_pdf

    def export(self, session_id: str, file_format: str, withholding: Withholding) -> dict[str, Any]:
        """The 201 body of API.md; ``ApiError`` SESSION_NOT_FOUND, VALIDATION_ERROR or VERIFICATION_FAILED (the
        chain does not verify, as replay answers it: nothing is written)."""
        head = self._store.get_head(session_id)
        if head is None:
            raise session_not_found(session_id)
        archive_lines = ArchiveLines(self._archive.iter_chunks(head.archive)) if head.archive else None
        document = build_export_document(
            session_id=session_id,
            lines=archive_lines if archive_lines is not None else self._store.iter_lines(session_id),
            withholding=withholding,
            verify=self._verify,
            signing_keys=self._store.signing_keys(),
            generated_at=format_timestamp(self._clock.now()),
        )
        if head.archive is not None and archive_lines is not None and archive_lines.sha256 != head.archive.sha256:
            raise verification_failed(
                {"session_id": session_id, "status": "FAIL", "violations": [archive_mismatch(head.archive)]}
            )
        if document.report.get("status") != "PASS":
            raise verification_failed(document.report)  # evidence that does not verify is not exported
        if document.report.get("session_id") != session_id:
            raise verification_failed(session_mismatch(session_id, document.report))
        export_id = self._new_export_id()
        stored = self._exports.put(session_id, export_id, "json", document.body)
        if file_format == "pdf":
            stored = self._exports.put(session_id, export_id, "pdf", self._render_pdf(document.body))
        return {
            "export_id": export_id,
            "format": file_format,
            "bucket": stored.bucket,
            "key": stored.key,
            "version_id": stored.version_id,
            "sha256": stored.sha256,
            "url": self._exports.presigned_url(stored, PRESIGNED_URL_SECONDS),
            "expires_in": PRESIGNED_URL_SECONDS,
            "evidence_class": document.evidence_class,
        }
