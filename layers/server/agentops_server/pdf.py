"""The PDF rendering of an export document (ELS section 9): for people; the JSON document is the evidence.

Rendered from the export document alone (nothing else is read), with built-in fonts only, and byte-identical for the
same document and ``RENDERER_VERSION``: reportlab runs in invariant mode, the creation and modification dates are the
document's ``generated_at`` (never the clock), and the PDF's document id is derived from the document's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from agentops_server.pii import ERROR_KINDS

RENDERER_VERSION = "agentops-replay-pdf/0.2.0"
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

# ELS section 3, in the order the timeline draws its rows (top to bottom).
EVENT_TYPES = (
    "SESSION_START",
    "MODEL_REQUEST",
    "MODEL_RESPONSE",
    "TOOL_CALL",
    "TOOL_RESULT",
    "AGENT_STATE_SNAPSHOT",
    "DECISION_TRACE",
    "ANNOTATION",
    "ERROR",
    "LOG_DROP",
    "SESSION_END",
    "CHAIN_SEAL",
)
ROWS_PER_PAGE = 80  # rows of the long tables per page: 81 lines of 8.5 pt fit the A4 frame
TIMELINE_MAX_BINS = 400

_MARGIN = 15 * mm
_STYLES = getSampleStyleSheet()
_BODY = _STYLES["BodyText"]
_SMALL = ParagraphStyle("Small", parent=_BODY, fontSize=7, leading=8.5)
_MONO = ParagraphStyle("Mono", parent=_BODY, fontName="Courier", fontSize=6.5, leading=8)
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
    export, events = _read_export(document)
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
        *_cover(export, document_sha256),
        PageBreak(),
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


@dataclass(frozen=True)
class _EventLine:
    """What the report shows of one event; the payload itself is never kept."""

    sequence_number: str
    timestamp_wall: str
    event_type: str
    payload_hash: str
    withheld: bool
    redacted: int
    drop: str | None  # "dropped N (REASON)" for a LOG_DROP
    declares_gap: bool

    @classmethod
    def of(cls, event: Any) -> _EventLine:
        event = event if isinstance(event, dict) else {}
        payload = event.get("payload")
        is_drop = event.get("event_type") == "LOG_DROP" and isinstance(payload, dict)
        return cls(
            sequence_number=_plain(event.get("sequence_number")),
            timestamp_wall=_plain(event.get("timestamp_wall")),
            event_type=_plain(event.get("event_type")),
            payload_hash=_plain(event.get("payload_hash")),
            withheld=event.get("payload_withheld") is True,
            redacted=_count_redacted(payload),
            drop=f"dropped {payload.get('dropped_count')} ({payload.get('drop_reason')})" if is_drop else None,
            declares_gap=is_drop and "sequence_range" in payload,
        )

    def row(self) -> tuple[str, ...]:
        notes = ["payload withheld"] if self.withheld else []
        if self.redacted:
            notes.append(f"redacted: {self.redacted}")
        if self.drop:
            notes.append(self.drop)
        return (
            self.sequence_number,
            self.timestamp_wall,
            self.event_type,
            self.payload_hash,
            _plain("; ".join(notes)),
        )


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _read_export(document: bytes) -> tuple[dict[str, Any], list[_EventLine]]:
    """The document's members, except ``events``, which is read one event at a time and reduced to ``_EventLine``s:
    a 100,000-event document never becomes 100,000 parsed payloads at once."""
    text = document.decode("utf-8")
    members: dict[str, Any] = {}
    events: list[_EventLine] = []
    index = _expect(text, 0, "{")
    while text[index] != "}":
        name, index = _DECODER.raw_decode(text, index)
        index = _expect(text, index, ":")
        if name == "events" and text[index] == "[":
            index = _expect(text, index, "[")
            while text[index] != "]":
                event, index = _DECODER.raw_decode(text, index)
                events.append(_EventLine.of(event))
                index = _skip(text, index)
                if text[index] == ",":
                    index = _skip(text, index + 1)
            index += 1
        else:
            members[name], index = _DECODER.raw_decode(text, index)
        index = _skip(text, index)
        if text[index] == ",":
            index = _skip(text, index + 1)
    return members, events


def _skip(text: str, index: int) -> int:
    match = _JSON_WHITESPACE.match(text, index)
    return match.end() if match else index


def _expect(text: str, index: int, token: str) -> int:
    index = _skip(text, index)
    if text[index] != token:
        raise ValueError(f"the export document is not a JSON object as expected: {token!r} missing at {index}")
    return _skip(text, index + 1)


def _cover(export: dict[str, Any], document_sha256: str) -> list[Any]:
    verification = export.get("verification") or {}
    evidence_class = str(export.get("evidence_class"))
    flowables: list[Any] = [
        Spacer(1, 20 * mm),
        Paragraph("AgentOps Replay evidence report", _TITLE),
        Spacer(1, 6 * mm),
        Paragraph(f"Session <b>{_text(export.get('session_id'))}</b>", _BODY),
        Paragraph(f"Evidence class: <b>{_text(evidence_class)}</b>", _H1),
        Paragraph(f"Verification status at export: <b>{_text(verification.get('status'))}</b>", _BODY),
        Paragraph(f"Generated at {_text(export.get('generated_at'))} by {_text(export.get('generator'))}", _BODY),
        Paragraph(f"Export document SHA-256: <font face='Courier'>{document_sha256}</font>", _SMALL),
    ]
    if evidence_class == PARTIAL_CLASS:
        reasons = ", ".join(str(reason) for reason in verification.get("partial_reasons", []))
        flowables.append(Paragraph(f"<b>This record is partial.</b> Reasons: {_text(reasons)}", _BODY))
    flowables += [Spacer(1, 8 * mm), Paragraph("Evidence support statement", _H2)]
    flowables += [Paragraph(_text(sentence), _BODY) for sentence in EVIDENCE_SUPPORT_STATEMENT]
    return flowables


def _summary(export: dict[str, Any], events: Sequence[_EventLine]) -> list[Any]:
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


def _timeline(events: Sequence[_EventLine]) -> list[Any]:
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
        colour = colors.red if EVENT_TYPES[row] == "LOG_DROP" else colors.darkblue
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
        Paragraph("Timeline", _H2),
        Paragraph(
            "Each row is an event type; a mark means at least one event of that type in that stretch of sequence "
            "numbers. Red lines mark LOG_DROP events (events the producer could not record); a red band marks a "
            "LOG_DROP that declares the missing range.",
            _SMALL,
        ),
        drawing,
    ]


def _event_table(events: Sequence[_EventLine]) -> list[Any]:
    flowables: list[Any] = [
        Paragraph("Events", _H1),
        Paragraph(
            f"All {len(events)} events in sequence order. Payloads are shown by their SHA-256 (payload_hash); "
            "'redacted' counts the values the producer replaced by [REDACTED] before hashing.",
            _SMALL,
        ),
    ]
    # 180 mm, the frame's width: the hash column holds 64 Courier digits, the others their longest usual value.
    columns = (
        _Column("Seq", 11 * mm),
        _Column("Time (wall, UTC)", 31 * mm),
        _Column("Type", 30 * mm),
        _Column("Payload hash", 70 * mm, "Courier", 5),
        _Column("Notes", 38 * mm),
    )
    rows = [event.row() for event in events]
    flowables += [_Rows(columns, rows[start : start + ROWS_PER_PAGE]) for start in range(0, len(rows), ROWS_PER_PAGE)]
    return flowables


@dataclass(frozen=True)
class _Column:
    title: str
    width: float
    font: str = "Helvetica"
    size: float = 6


class _Rows(Flowable):  # type: ignore[misc]
    """One page of a long table, drawn straight on the canvas: a platypus ``Table`` costs about 1 ms per row, which
    a 100,000-event session cannot afford. Rows are one line each; a cell too wide for its column is cut short with
    "..." (the export document has every value in full)."""

    ROW_HEIGHT = 8.5

    def __init__(self, columns: Sequence[_Column], rows: Sequence[Sequence[str]]) -> None:
        super().__init__()
        self._columns = columns
        self._rows = rows
        self._width = sum(column.width for column in columns)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self._width, (len(self._rows) + 1) * self.ROW_HEIGHT

    def draw(self) -> None:
        canvas = self.canv
        top = (len(self._rows) + 1) * self.ROW_HEIGHT
        canvas.setFillColor(colors.lightgrey)
        canvas.rect(0, top - self.ROW_HEIGHT, self._width, self.ROW_HEIGHT, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        canvas.setStrokeColor(colors.grey)
        canvas.setLineWidth(0.2)
        for index in range(1, len(self._rows) + 2):
            canvas.line(0, top - index * self.ROW_HEIGHT, self._width, top - index * self.ROW_HEIGHT)
        # One text object per column, a line per row: far fewer PDF operators than positioning every cell.
        x = 0.0
        for position, column in enumerate(self._columns):
            text = canvas.beginText(x + 1.5, top - self.ROW_HEIGHT + 2.2)
            text.setFont("Helvetica-Bold", column.size, leading=self.ROW_HEIGHT)
            text.textLine(_fit(column.title, "Helvetica-Bold", column.size, column.width - 3))
            text.setFont(column.font, column.size, leading=self.ROW_HEIGHT)
            for row in self._rows:
                text.textLine(_fit(row[position], column.font, column.size, column.width - 3))
            canvas.drawText(text)
            x += column.width


def _fit(text: str, font: str, size: float, width: float) -> str:
    # No glyph of the built-in fonts is wider than 1.02 em (Courier: 0.6 em), so short text needs no measuring.
    if len(text) * size * (0.6 if font == "Courier" else 1.02) <= width or stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "...", font, size) > width:
        text = text[:-1]
    return text + "..."


def _count_redacted(value: Any) -> int:
    if value == "[REDACTED]":
        return 1
    if isinstance(value, dict):
        return sum(_count_redacted(child) for child in value.values())
    if isinstance(value, list):
        return sum(_count_redacted(child) for child in value)
    return 0


def _seal_annex(export: dict[str, Any]) -> list[Any]:
    verification = export.get("verification") or {}
    seal = export.get("seal")
    flowables: list[Any] = [Paragraph("Seal and keys", _H1)]
    if not isinstance(seal, dict):
        flowables.append(Paragraph("The session has no seal (UNSEALED_SESSION).", _BODY))
    else:
        rows = [[name, Paragraph(_text(seal.get(name)), _MONO)] for name in sorted(seal)]
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
        flowables += [
            Paragraph("Public key", _H2),
            Paragraph(f"signer_key_id: {_text(key.get('signer_key_id'))}", _MONO),
            Paragraph(f"algorithm: {_text(key.get('algorithm'))}", _MONO),
            Paragraph(_text(key.get("public_key_pem")).replace("\n", "<br/>"), _MONO),
        ]
    return flowables


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
        _Column("Seq", 11 * mm),
        _Column("Pointer (JSON Pointer)", 110 * mm, "Courier", 5.5),
        _Column("Kind", 42 * mm),
        _Column("Severity", 17 * mm),
    )
    rows = [
        (
            _plain(finding.get("sequence_number")),
            "(not disclosed)" if finding.get("pointer") is None else _plain(finding.get("pointer")),
            _plain(finding.get("kind")),
            "error" if finding.get("kind") in ERROR_KINDS else "warning",
        )
        for finding in findings
        if isinstance(finding, dict)
    ]
    flowables += [_Rows(columns, rows[start : start + ROWS_PER_PAGE]) for start in range(0, len(rows), ROWS_PER_PAGE)]
    return flowables


def _custody(export: dict[str, Any], events: Sequence[_EventLine], document_sha256: str) -> list[Any]:
    verification = export.get("verification") or {}
    seal_value = export.get("seal")
    seal: dict[str, Any] = seal_value if isinstance(seal_value, dict) else {}
    rows = [
        ["Events recorded from", events[0].timestamp_wall if events else ""],
        ["Events recorded until", events[-1].timestamp_wall if events else ""],
        ["Sealed by (ingestion service)", _plain(seal.get("ingestion_service_id"))],
        ["Sealed at", _plain(seal.get("seal_timestamp"))],
        ["Export generated at (not signed)", _plain(export.get("generated_at"))],
        ["Export generator (not signed)", _plain(export.get("generator"))],
        ["Export version", _plain(export.get("export_version"))],
        ["Export document SHA-256", Paragraph(document_sha256, _MONO)],
        ["First event hash", Paragraph(_text(verification.get("first_event_hash")), _MONO)],
        ["Final event hash", Paragraph(_text(verification.get("final_event_hash")), _MONO)],
        ["Rendered by", RENDERER_VERSION],
    ]
    return [
        Paragraph("Chain of custody", _H1),
        _table([["Step", "Record"], *rows], [55 * mm, 120 * mm]),
        Spacer(1, 4 * mm),
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
    return value if isinstance(value, Paragraph) else _plain(value)


def _flags(verification: dict[str, Any], *names: str) -> str:
    return " / ".join("yes" if verification.get(name) else "no" for name in names)


def _plain(value: Any) -> str:
    """Text for a table cell in a built-in (Latin-1) font: anything else is shown as a \\u escape."""
    text = "" if value is None else str(value)
    if text.isascii():
        return text
    return "".join(char if ord(char) < 0x100 else f"\\u{ord(char):04x}" for char in text)


def _text(value: Any) -> str:
    """``_plain`` text escaped for a Paragraph's markup."""
    return escape(_plain(value))


def _pdf_date(generated_at: Any) -> str:
    """The PDF date (``D:YYYYMMDDHHmmSS+00'00'``) of the export's ``generated_at`` (RFC 3339 UTC)."""
    moment = datetime.fromisoformat(str(generated_at).replace("Z", "+00:00"))
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'")
