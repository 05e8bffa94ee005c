"""The PDF rendering of an export document (ELS section 9): for people; the JSON document is the evidence.

The layout: a cover that says whose session it is, how it ended (a failed session says so, and why) and the evidence
class; what the agent did (``agentops_server.pdf_summary``: agent, models, tools, errors); the verification summary
and timeline; every event with a one-line summary of its payload; the seal, keys, PII findings and chain of custody.

Rendered from the export document alone (nothing else is read), with built-in fonts only, and byte-identical for the
same document and ``RENDERER_VERSION``: reportlab runs in invariant mode, the creation and modification dates are the
document's ``generated_at`` (never the clock), and the PDF's document id is derived from the document's SHA-256.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from agentops_verify import CHAIN_SEAL, LOG_DROP, SESSION_END, SESSION_START
from agentops_verify import EVENT_TYPES as ELS_EVENT_TYPES
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from agentops_server.pdf_rows import ALARM_SHADE, WITHHELD_SHADE, Column, paged_rows, plain
from agentops_server.pdf_summary import EventLine, SessionFacts, log_statement, read_export, short
from agentops_server.pii import ERROR_KINDS

RENDERER_VERSION = "agentops-replay-pdf/0.3.0"
PARTIAL_CLASS = "PARTIAL_AUTHORITATIVE_EVIDENCE"

# ELS section 9: what the rendering is not. Printed on the cover, word for word the same in every report.
EVIDENCE_SUPPORT_STATEMENT = (
    "This PDF is a rendering of the export document named below; it is not evidence. The evidence is the export "
    "document itself, which anyone can check offline with agentops-verify and the deployment's published key.",
    "It is not a compliance certification.",
    "It is not a guarantee that the agent behaved correctly: it shows what was recorded, not whether it was right.",
    "It is not legal advice.",
    "When the evidence class is PARTIAL_AUTHORITATIVE_EVIDENCE, the record is not complete: see the reasons listed.",
)

# ELS section 3's event types in the order the timeline draws its rows (top to bottom): the section's order, with the
# end of the session and its seal last.
_CLOSING_TYPES = (SESSION_END, CHAIN_SEAL)
EVENT_TYPES = (
    SESSION_START,
    *(event_type for event_type in ELS_EVENT_TYPES if event_type not in (SESSION_START, *_CLOSING_TYPES)),
    *_CLOSING_TYPES,
)
TIMELINE_MAX_BINS = 400
COVER_ERRORS = 3  # the last errors named on the cover of a session that did not succeed

_MARGIN = 15 * mm
_STYLES = getSampleStyleSheet()
_BODY = _STYLES["BodyText"]
_SMALL = ParagraphStyle("Small", parent=_BODY, fontSize=7, leading=8.5)
_MONO = ParagraphStyle("Mono", parent=_BODY, fontName="Courier", fontSize=6.5, leading=8)
_ALARM = ParagraphStyle("Alarm", parent=_STYLES["Heading1"], textColor=colors.darkred)
_ALARM_BODY = ParagraphStyle("AlarmBody", parent=_BODY, textColor=colors.darkred)
_H1 = _STYLES["Heading1"]
_H2 = _STYLES["Heading2"]
_TITLE = _STYLES["Title"]
_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 7),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
    ]
)


def render_pdf(document: bytes, *, compress: bool = True) -> bytes:
    """The PDF report for one export document (its canonical bytes). ``compress=False`` leaves the page content
    streams readable, which tests use to find the text."""
    recording = read_export(document)
    export, events, facts = recording.members, recording.events, recording.facts
    document_sha256 = hashlib.sha256(document).hexdigest()
    pdf_date = _pdf_date(export.get("generated_at"))
    session_id = str(export.get("session_id"))

    class _FixedCanvas(Canvas):  # type: ignore[misc]
        """Invariant output, the document's own dates and an id derived from the document."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setDateFormatter(lambda *_clock: pdf_date)
            # reportlab writes this as the trailer /ID; setting it replaces the digest it would compute.
            file_id = document_sha256[:32].encode("ascii")
            self._doc._ID = b"\n[<" + file_id + b"><" + file_id + b">]\n"

    def _footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(_MARGIN, 8 * mm, f"AgentOps Replay evidence report - session {session_id}")
        canvas.drawRightString(A4[0] - _MARGIN, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    output = BytesIO()
    template = SimpleDocTemplate(
        output,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=f"AgentOps Replay evidence report {session_id}",
        author=str(export.get("generator")),
        subject=f"Evidence class {export.get('evidence_class')}",
        creator=RENDERER_VERSION,
        invariant=1,
        pageCompression=1 if compress else 0,
    )
    story = [
        *_cover(export, facts, document_sha256),
        PageBreak(),
        *_what_the_agent_did(facts),
        *_summary(export, events),
        *_timeline(events),
        PageBreak(),
        *_event_table(events),
        PageBreak(),
        *_seal_annex(export),
        *_pii(export),
        *_custody(export, events, document_sha256),
    ]
    template.build(story, onFirstPage=_footer, onLaterPages=_footer, canvasmaker=_FixedCanvas)
    return output.getvalue()


def _cover(export: dict[str, Any], facts: SessionFacts, document_sha256: str) -> list[Any]:
    verification = export.get("verification") or {}
    evidence_class = str(export.get("evidence_class"))
    flowables: list[Any] = [
        Spacer(1, 12 * mm),
        Paragraph("AgentOps Replay evidence report", _TITLE),
        Spacer(1, 4 * mm),
        Paragraph(f"Session <b>{_text(export.get('session_id'))}</b>", _BODY),
        Paragraph(_text(_agent_line(facts)), _BODY),
        *_outcome(facts),
        Paragraph(f"Evidence class: <b>{_text(evidence_class)}</b>", _H1),
        Paragraph(f"Verification status at export: <b>{_text(verification.get('status'))}</b>", _BODY),
        Paragraph(f"Generated at {_text(export.get('generated_at'))} by {_text(export.get('generator'))}", _BODY),
        Paragraph(f"Export document SHA-256: <font face='Courier'>{document_sha256}</font>", _SMALL),
    ]
    if evidence_class == PARTIAL_CLASS:
        reasons = ", ".join(str(reason) for reason in verification.get("partial_reasons", []))
        flowables.append(Paragraph(f"<b>This record is partial.</b> Reasons: {_text(reasons)}", _BODY))
    flowables += [Spacer(1, 6 * mm), Paragraph("Evidence support statement", _H2)]
    flowables += [Paragraph(_text(sentence), _BODY) for sentence in EVIDENCE_SUPPORT_STATEMENT]
    return flowables


def _agent_line(facts: SessionFacts) -> str:
    if facts.start_withheld:
        return "Agent: withheld in this export (the SESSION_START payload is not disclosed)"
    start = facts.start or {}
    framework = " ".join(short(start.get(name)) for name in ("framework", "framework_version") if start.get(name))
    details = [f"environment {short(start.get('environment'))}" if start.get("environment") else "", framework]
    context = ", ".join(detail for detail in details if detail)
    return f"Agent {short(start.get('agent_id'))}" + (f" ({context})" if context else "")


def _outcome(facts: SessionFacts) -> list[Any]:
    """How the session ended, as its SESSION_END says; a session that did not succeed says so and why."""
    if facts.end_withheld:
        return [Paragraph("How the session ended is withheld in this export (SESSION_END payload not disclosed).", _H2)]
    if facts.end is None:
        return [Paragraph("The session recorded no end (no SESSION_END): how it ended is unknown.", _ALARM)]
    status, reason = facts.end_status, facts.end.get("reason")
    if not facts.failed:
        return [Paragraph(f"The session ended: <b>{_text(status)}</b>", _H2)]
    headline = {"failure": "FAILED", "timeout": "TIMED OUT", "cancelled": "was CANCELLED"}.get(str(status))
    flowables: list[Any] = [
        Paragraph(f"This session {headline or 'ended with status ' + _text(status)}", _ALARM),
        Paragraph(f"Reason: <b>{_text(short(reason, 300)) if reason else 'none recorded'}</b>", _ALARM_BODY),
    ]
    if facts.errors:
        flowables.append(Paragraph(f"Errors recorded: {len(facts.errors)}; the last:", _ALARM_BODY))
        flowables += [
            Paragraph(f"event {_text(error.sequence_number)}: {_text(error.text())}", _ALARM_BODY)
            for error in facts.errors[-COVER_ERRORS:]
        ]
    return flowables


def _what_the_agent_did(facts: SessionFacts) -> list[Any]:
    start, end = facts.start or {}, facts.end or {}
    withheld = "withheld in this export"
    rows: list[list[Any]] = [
        ["Agent", withheld if facts.start_withheld else start.get("agent_id")],
        ["Environment", withheld if facts.start_withheld else start.get("environment")],
        ["Framework", withheld if facts.start_withheld else start.get("framework")],
        ["Framework version", withheld if facts.start_withheld else start.get("framework_version")],
        ["SDK version", withheld if facts.start_withheld else start.get("sdk_version")],
        ["End status", withheld if facts.end_withheld else end.get("status", "no SESSION_END")],
        ["End reason", withheld if facts.end_withheld else end.get("reason")],
        ["Duration (ms)", withheld if facts.end_withheld else end.get("duration_ms")],
        ["Errors recorded", len(facts.errors)],
    ]
    flowables: list[Any] = [
        Paragraph("What the agent did", _H1),
        Paragraph(
            "As the agent's SDK recorded it: the chain's hashes and the seal show these payloads were not edited "
            "since, not that they are true."
            + (
                f" {facts.withheld} payloads are withheld in this export and not counted here."
                if facts.withheld
                else ""
            ),
            _SMALL,
        ),
        _table(
            [
                ["Item", "Value"],
                *[[name, "not recorded" if value is None else short(value, 120)] for name, value in rows],
            ],
            [50 * mm, 125 * mm],
        ),
        Spacer(1, 3 * mm),
        Paragraph("Models", _H2),
    ]
    models = [[name, requests, responses] for name, requests, responses in facts.models()]
    flowables.append(
        _table([["Model", "Requests", "Responses"], *models], [115 * mm, 30 * mm, 30 * mm])
        if models
        else Paragraph("No model calls recorded.", _BODY)
    )
    flowables.append(Paragraph("Tools", _H2))
    tools = [[name, calls, results] for name, calls, results in facts.tools()]
    flowables.append(
        _table([["Tool", "Calls", "Results by status"], *tools], [75 * mm, 20 * mm, 80 * mm])
        if tools
        else Paragraph("No tool calls recorded.", _BODY)
    )
    flowables.append(Paragraph("Errors", _H2))
    if not facts.errors:
        flowables.append(Paragraph("No ERROR events recorded.", _BODY))
    else:
        # Every ERROR's type and message; the same error repeated is one row with its count and events.
        columns = (
            Column("Type", 36 * mm),
            Column("Message", 94 * mm),
            Column("Fatal", 9 * mm),
            Column("Count", 10 * mm),
            Column("Events (sequence numbers)", 31 * mm),
        )
        grouped = [
            (error.error_type, error.message, "yes" if error.fatal else "no", str(len(where)), ", ".join(where))
            for error, where in facts.distinct_errors()
        ]
        flowables += paged_rows(columns, grouped, [ALARM_SHADE if row[2] == "yes" else None for row in grouped])
    return [*flowables, Spacer(1, 4 * mm)]


def _summary(export: dict[str, Any], events: Sequence[EventLine]) -> list[Any]:
    verification = export.get("verification") or {}
    types = Counter(event.event_type for event in events)
    withheld = sum(1 for event in events if event.withheld)
    rows: list[list[Any]] = [
        ["Status", verification.get("status")],
        ["Evidence class", export.get("evidence_class")],
        ["Partial reasons", ", ".join(map(str, verification.get("partial_reasons", []))) or "none"],
        ["Chain authority", export.get("chain_authority")],
        ["Sealed / seal signed", _flags(verification, "sealed", "seal_signed")],
        ["Session complete (SESSION_END present)", verification.get("complete")],
        ["Events", len(events)],
        ["Events dropped by the producer (declared)", verification.get("total_drops")],
        ["Payloads withheld in this export", withheld],
        ["PII findings", len(export.get("pii_findings") or [])],
    ]
    rows += [[f"Events of type {name}", types[name]] for name in EVENT_TYPES if types[name]]
    return [Paragraph("Executive summary", _H1), _table([["Item", "Value"], *rows], [90 * mm, 85 * mm])]


def _timeline(events: Sequence[EventLine]) -> list[Any]:
    """Event types (rows) over sequence numbers (x), binned; LOG_DROPs as red lines, declared gaps as red bands."""
    width, row_height, label_width = 180 * mm, 10.0, 34 * mm
    plot_width = width - label_width - 4
    height = row_height * len(EVENT_TYPES) + 24
    drawing = Drawing(width, height)
    count = max(len(events), 1)
    bins = min(count, TIMELINE_MAX_BINS)
    bin_width = plot_width / bins
    occupied: set[tuple[int, int]] = set()
    for position, event in enumerate(events):
        if event.event_type in EVENT_TYPES:
            occupied.add((EVENT_TYPES.index(event.event_type), position * bins // count))
    for row, name in enumerate(EVENT_TYPES):
        y = height - 12 - (row + 1) * row_height
        drawing.add(String(0, y + 2, name, fontName="Helvetica", fontSize=6))
        drawing.add(Line(label_width, y, label_width + plot_width, y, strokeColor=colors.lightgrey, strokeWidth=0.3))
    for row, column in sorted(occupied):
        y = height - 12 - (row + 1) * row_height
        colour = colors.red if EVENT_TYPES[row] == LOG_DROP else colors.darkblue
        drawing.add(
            Rect(
                label_width + column * bin_width,
                y + 1,
                max(bin_width, 1.0),
                row_height - 3,
                fillColor=colour,
                strokeWidth=0,
            )
        )
    for position, event in enumerate(events):
        if event.event_type != "LOG_DROP":
            continue
        x = label_width + (position * bins // count + 0.5) * bin_width
        drawing.add(Line(x, 10, x, height - 12, strokeColor=colors.red, strokeWidth=0.6))
        if event.declares_gap:
            drawing.add(Rect(x - 2, 10, 4, height - 22, fillColor=colors.pink, strokeWidth=0, fillOpacity=0.5))
    last = len(events) - 1
    drawing.add(String(label_width, 0, "sequence 0", fontName="Helvetica", fontSize=6))
    drawing.add(String(label_width + plot_width - 40, 0, f"sequence {max(last, 0)}", fontName="Helvetica", fontSize=6))
    return [
        KeepTogether(
            [
                Paragraph("Timeline", _H2),
                Paragraph(
                    "Each row is an event type; a mark means at least one event of that type in that stretch of "
                    "sequence numbers. Red lines mark LOG_DROP events (events the producer could not record); a red "
                    "band marks a LOG_DROP that declares the missing range.",
                    _SMALL,
                ),
                drawing,
            ]
        )
    ]


def _event_table(events: Sequence[EventLine]) -> list[Any]:
    flowables: list[Any] = [
        Paragraph("Events", _H1),
        Paragraph(
            f"All {len(events)} events in sequence order, with a summary of each disclosed payload (cut short; the "
            "export document has it in full) and its SHA-256 (payload_hash). 'redacted' counts the values the "
            "producer replaced by [REDACTED] before hashing. Red rows: errors, drops and what did not succeed; grey "
            "rows: payloads withheld in this export.",
            _SMALL,
        ),
    ]
    # 180 mm, the frame's width: the hash column holds 64 Courier digits, the others their longest usual value.
    columns = (
        Column("Seq", 10 * mm),
        Column("Time (wall, UTC)", 28 * mm),
        Column("Type", 30 * mm),
        Column("Summary", 49 * mm),
        Column("Payload hash", 63 * mm, "Courier", 4.5),
    )
    rows = [
        (event.sequence_number, event.timestamp_wall, event.event_type, event.description(), event.payload_hash)
        for event in events
    ]
    shades = [WITHHELD_SHADE if event.withheld else ALARM_SHADE if event.alarming else None for event in events]
    return flowables + paged_rows(columns, rows, shades)


def _seal_annex(export: dict[str, Any]) -> list[Any]:
    verification = export.get("verification") or {}
    seal = export.get("seal")
    flowables: list[Any] = [Paragraph("Seal and keys", _H1)]
    if not isinstance(seal, dict):
        flowables.append(Paragraph("The session has no seal (UNSEALED_SESSION).", _BODY))
    else:
        rows = [[_SEAL_LABELS.get(name, name), Paragraph(_text(seal.get(name)), _MONO)] for name in sorted(seal)]
        flowables.append(_table([["Seal field", "Value"], *rows], [45 * mm, 130 * mm]))
    flowables.append(Spacer(1, 4 * mm))
    result = [
        ["Seal signed", verification.get("seal_signed")],
        ["Seal key id (fingerprint)", Paragraph(_text(verification.get("seal_key_id")), _MONO)],
        ["Verification status", verification.get("status")],
        ["Replay fingerprint", Paragraph(_text(verification.get("replay_fingerprint")), _MONO)],
    ]
    flowables.append(_table([["Verification of the seal", ""], *result], [60 * mm, 115 * mm]))
    for key in export.get("public_keys") or []:
        # Preformatted measures every line of the PEM block, so the heading after it cannot run into it.
        flowables += [
            Paragraph("Public key", _H2),
            Paragraph(f"signer_key_id: {_text(key.get('signer_key_id'))}", _MONO),
            Paragraph(f"algorithm: {_text(key.get('algorithm'))}", _MONO),
            Preformatted(plain(key.get("public_key_pem")).strip(), _MONO),
            Spacer(1, 4 * mm),
        ]
    return flowables


_SEAL_LABELS = {"event_count": "event_count (events before the seal)"}


def _pii(export: dict[str, Any]) -> list[Any]:
    findings = export.get("pii_findings") or []
    flowables: list[Any] = [
        Paragraph("PII findings", _H1),
        Paragraph(
            "Where the disclosed payloads seem to hold personal data or secrets (location and kind only; the values "
            "are never repeated here, and withheld payloads are not listed at all). This is a review aid, not a "
            "guarantee that other payloads are free of such data, and not evidence: nothing signs it.",
            _SMALL,
        ),
    ]
    if not findings:
        flowables.append(Paragraph("No findings.", _BODY))
        return flowables
    columns = (
        Column("Seq", 11 * mm),
        Column("Pointer (JSON Pointer)", 110 * mm, "Courier", 5.5),
        Column("Kind", 42 * mm),
        Column("Severity", 17 * mm),
    )
    rows = [
        (
            plain(finding.get("sequence_number")),
            "(not disclosed)" if finding.get("pointer") is None else plain(finding.get("pointer")),
            plain(finding.get("kind")),
            "error" if finding.get("kind") in ERROR_KINDS else "warning",
        )
        for finding in findings
        if isinstance(finding, dict)
    ]
    return flowables + paged_rows(columns, rows)


def _custody(export: dict[str, Any], events: Sequence[EventLine], document_sha256: str) -> list[Any]:
    verification = export.get("verification") or {}
    seal_value = export.get("seal")
    seal: dict[str, Any] = seal_value if isinstance(seal_value, dict) else {}
    rows = [
        ["Events recorded from", events[0].timestamp_wall if events else ""],
        ["Events recorded until", events[-1].timestamp_wall if events else ""],
        ["Sealed by (ingestion service)", plain(seal.get("ingestion_service_id"))],
        ["Sealed at", plain(seal.get("seal_timestamp"))],
        ["Export generated at (not signed)", plain(export.get("generated_at"))],
        ["Export generator (not signed)", plain(export.get("generator"))],
        ["Export version", plain(export.get("export_version"))],
        ["Export document SHA-256", Paragraph(document_sha256, _MONO)],
        ["First event hash", Paragraph(_text(verification.get("first_event_hash")), _MONO)],
        ["Final event hash", Paragraph(_text(verification.get("final_event_hash")), _MONO)],
        ["Rendered by", RENDERER_VERSION],
    ]
    log = log_statement(export.get("log_proof"))
    return [
        Paragraph("Chain of custody", _H1),
        _table([["Step", "Record"], *rows, *log.rows], [55 * mm, 120 * mm]),
        Spacer(1, 4 * mm),
        Paragraph(log.sentence, _SMALL),
        Paragraph(
            "To check the evidence yourself: download the export document (JSON) and run "
            "<font face='Courier'>agentops-verify --trusted-key KEY export.json</font>, where KEY is the deployment's "
            "public key from GET /v1/keys or the signer_key_id above.",
            _SMALL,
        ),
    ]


def _table(rows: Sequence[Sequence[Any]], widths: Sequence[float]) -> Table:
    table = Table([[_cell(value) for value in row] for row in rows], colWidths=list(widths), repeatRows=1)
    table.setStyle(_GRID)
    return table


def _cell(value: Any) -> Any:
    return value if isinstance(value, Paragraph) else plain(value)


def _flags(verification: dict[str, Any], *names: str) -> str:
    return " / ".join("yes" if verification.get(name) else "no" for name in names)


def _text(value: Any) -> str:
    """``_plain`` text escaped for a Paragraph's markup."""
    return escape(plain(value))


def _pdf_date(generated_at: Any) -> str:
    """The PDF date (``D:YYYYMMDDHHmmSS+00'00'``) of the export's ``generated_at`` (RFC 3339 UTC)."""
    moment = datetime.fromisoformat(str(generated_at).replace("Z", "+00:00"))
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'")
