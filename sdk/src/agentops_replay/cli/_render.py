"""What the command line prints: the session table, the timeline of replay frames, and verification reports.

Pure: documents in, lines out. Everything shown comes from agents' events, which anyone holding agent credentials
wrote, so every value passes through ``printable`` (control characters, escape sequences among them, are shown
escaped and never reach the terminal as such). Colour is an addition, never the only signal: errors, drops and gaps
are also marked with ``!`` in the first column.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from agentops_verify import Report

SUMMARY_WIDTH = 120  # fits a seal's full signer key id
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Style:
    """ANSI styling, on only for a terminal and when ``NO_COLOR`` is unset or empty (https://no-color.org)."""

    color: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        return cls(stream.isatty() and not os.environ.get("NO_COLOR"))

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def alert(self, text: str) -> str:
        return self._wrap("1;31", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)

    def good(self, text: str) -> str:
        return self._wrap("32", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def printable(value: Any, width: int | None = None) -> str:
    """``value`` as one line of plain text: control characters escaped, cut to ``width`` with an ellipsis."""
    text = value if isinstance(value, str) else _compact(value)
    text = _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)
    if width is not None and len(text) > width:
        return text[: width - 3] + "..."
    return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# --- sessions --------------------------------------------------------------------------------------------------------
SESSION_COLUMNS = ("SESSION", "AGENT", "STATUS", "EVENTS", "STARTED", "ENDED")
_AGENT_WIDTH = 32


def session_table(rows: Sequence[Mapping[str, Any]], style: Style) -> list[str]:
    """The GET /v1/sessions rows as aligned columns, newest first (as listed). No evidence class: the listing verifies
    nothing, so it has none to show (``show`` and ``verify`` do)."""
    cells = [
        (
            printable(row.get("session_id")),
            printable(row.get("agent_id") or "-", _AGENT_WIDTH),
            printable(row.get("status")),
            str(row.get("event_count")),
            _time(row.get("started_at")),
            _time(row.get("ended_at")),
        )
        for row in rows
    ]
    widths = [max([len(title), *(len(cell[column]) for cell in cells)]) for column, title in enumerate(SESSION_COLUMNS)]
    lines = ["  ".join(title.ljust(width) for title, width in zip(SESSION_COLUMNS, widths, strict=True)).rstrip()]
    for cell in cells:
        text = "  ".join(value.ljust(width) for value, width in zip(cell, widths, strict=True)).rstrip()
        if cell[2] != "SEALED":
            text = style.dim(text)
        lines.append(text)
    return lines


def _time(value: Any) -> str:
    """RFC 3339 as ``YYYY-MM-DD HH:MM:SS`` (UTC), which is what a person scans a column for."""
    if not isinstance(value, str) or len(value) < 19:
        return "-" if value is None else printable(value)
    return printable(value[:10] + " " + value[11:19])


# --- the timeline ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineRow:
    sequence: str
    time: str
    kind: str
    summary: str
    alarming: bool  # an error, a failure, dropped events or a gap: marked, and red on a terminal
    continuation: bool = False  # a frame that belongs to the event above (a gap, redactions)


def timeline_rows(frames: Iterable[Mapping[str, Any]]) -> list[TimelineRow]:
    """One row per replay frame (API.md: ``EVENT``, ``LOG_DROP``, then ``GAP`` and ``REDACTION`` for the same
    event)."""
    rows = []
    for frame in frames:
        kind = frame.get("type")
        if kind in ("EVENT", "LOG_DROP"):
            event = frame.get("event")
            event = event if isinstance(event, Mapping) else {}
            payload = event.get("payload")
            payload = payload if isinstance(payload, Mapping) else {}
            event_type = printable(event.get("event_type"))
            rows.append(
                TimelineRow(
                    sequence=str(frame.get("sequence_number")),
                    time=_event_time(event.get("timestamp_wall")),
                    kind=event_type,
                    summary=printable(event_summary(event_type, payload), SUMMARY_WIDTH),
                    alarming=is_alarming(event_type, payload),
                )
            )
        elif kind == "GAP":
            span = frame.get("sequence_range")
            declared = f"positions {printable(span)} " if span is not None else ""
            rows.append(
                TimelineRow(
                    "",
                    "",
                    "GAP",
                    f"{declared}not recorded ({printable(frame.get('dropped_count'))} events lost)",
                    alarming=True,
                    continuation=True,
                )
            )
        elif kind == "REDACTION":
            pointers = frame.get("pointers")
            listed = ", ".join(printable(p) for p in pointers) if isinstance(pointers, list) else "-"
            rows.append(TimelineRow("", "", "REDACTED", printable(listed, SUMMARY_WIDTH), False, continuation=True))
    return rows


def render_timeline(rows: Sequence[TimelineRow], style: Style) -> list[str]:
    lines = []
    for row in rows:
        mark = "!" if row.alarming else " "
        if row.continuation:
            text = f"{mark} {'':>6}  {'':23}  {'+ ' + row.kind:<20}  {row.summary}"
        else:
            text = f"{mark} {row.sequence:>6}  {row.time:23}  {row.kind:<20}  {row.summary}"
        text = text.rstrip()
        lines.append(style.alert(text) if row.alarming else text)
    return lines


def _event_time(value: Any) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` from an event's ``timestamp_wall`` (the producer's clock, informational)."""
    if not isinstance(value, str) or len(value) < 20:
        return printable(value)
    fraction = value[19:-1] if value.endswith("Z") else ""
    millis = (fraction[1:] + "000")[:3] if fraction.startswith(".") else "000"
    return printable(f"{value[:10]} {value[11:19]}.{millis}")


def is_alarming(event_type: str, payload: Mapping[str, Any]) -> bool:
    if event_type in ("ERROR", "LOG_DROP"):
        return True
    if event_type == "SESSION_END":
        return payload.get("status") != "success"
    if event_type == "TOOL_RESULT":
        return payload.get("status") not in (None, "success", "ok")
    return False


def event_summary(event_type: str, payload: Mapping[str, Any]) -> str:
    """One line about an event, from the payload keys ELS section 3 names for its type."""
    get = payload.get
    if event_type == "SESSION_START":
        context = ", ".join(str(value) for value in (get("environment"), get("framework")) if value)
        return _joined(f"agent {get('agent_id')}", f"({context})" if context else None, _tags(get("tags")))
    if event_type == "SESSION_END":
        reason = get("reason")
        return _joined(f"{get('status')}" + (f": {reason}" if reason else ""), _duration(get("duration_ms"), "after"))
    if event_type == "MODEL_REQUEST":
        messages = get("messages")
        count = _count(len(messages), "message") if isinstance(messages, list) else None
        return _joined(str(get("model")), _via(get("provider")), count)
    if event_type == "MODEL_RESPONSE":
        finish = get("finish_reason")
        return _joined(str(get("model")), f"finish {finish}" if finish else None, _usage(get("usage")))
    if event_type == "TOOL_CALL":
        return _joined(str(get("tool_name")), _tool_id(get("tool_id")))
    if event_type == "TOOL_RESULT":
        status = get("status")
        return _joined(
            str(get("tool_name")),
            _tool_id(get("tool_id")),
            f"-> {status}" if status else None,
            _duration(get("duration_ms"), "in"),
        )
    if event_type == "ERROR":
        fatal = " (fatal)" if get("fatal") is True else ""
        return f"{get('error_type')}: {get('message')}{fatal}"
    if event_type == "LOG_DROP":
        return (
            f"{get('dropped_count')} events dropped ({get('drop_reason')}), "
            f"{get('cumulative_drops')} in this session so far"
        )
    if event_type == "DECISION_TRACE":
        policy = get("policy_version")
        return _joined(str(get("decision_id")), f"policy {policy}" if policy else None)
    if event_type == "ANNOTATION":
        return f"{get('annotation_type')} by {get('annotator_id')}: {printable(get('content'))}"
    if event_type == "AGENT_STATE_SNAPSHOT":
        checkpoint = get("checkpoint_id")
        return f"checkpoint {checkpoint}" if checkpoint else "state snapshot"
    if event_type == "CHAIN_SEAL":
        signer = get("signer_key_id")
        return f"{get('event_count')} events before the seal, " + (f"signed by {signer}" if signer else "unsigned")
    return ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _joined(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


def _via(provider: Any) -> str | None:
    return f"({provider})" if provider else None


def _tool_id(tool_id: Any) -> str | None:
    return f"[{tool_id}]" if tool_id else None


def _tags(tags: Any) -> str | None:
    if not isinstance(tags, list) or not tags:
        return None
    return "tags " + ",".join(str(tag) for tag in tags)


def _duration(milliseconds: Any, preposition: str) -> str | None:
    if not isinstance(milliseconds, int) or isinstance(milliseconds, bool):
        return None
    return f"{preposition} {milliseconds} ms" if milliseconds < 10_000 else f"{preposition} {milliseconds / 1000:.1f} s"


def _usage(usage: Any) -> str | None:
    if not isinstance(usage, Mapping):
        return None
    counted = [f"{value} {key.removesuffix('_tokens')}" for key, value in usage.items() if key.endswith("_tokens")]
    return f"tokens {', '.join(counted)}" if counted else None


# --- verification reports --------------------------------------------------------------------------------------------
def report_lines(report: Report, style: Style, source: str) -> list[str]:
    """The verifier's verdict, laid out as ``agentops-verify`` lays it out: a tab-separated summary line (``source``
    names the file), then the details."""
    violation = report.first_violation
    if violation is not None:
        where = violation.location()
        detail = f"{violation.type} {where}" if where else violation.type
    else:
        detail = ",".join(report.partial_reasons) or "-"
    verdict = style.good(report.status) if report.passed else style.alert(report.status)
    lines = ["\t".join((source, verdict, report.evidence_class, printable(detail)))]
    if report.session_id is not None:
        lines.append(f"  session {report.session_id}, authority {report.authority}, {report.event_count} events")
    if report.seal_signed:
        trusted = style.good("trusted") if report.seal_key_trusted else style.warn("NOT trusted")
        lines.append(f"  seal signed by {report.seal_key_id} ({trusted})")
    elif report.sealed:
        lines.append("  seal unsigned (legacy)")
    lines.append(f"  session end {'present' if report.complete else 'missing'}, {report.total_drops} events dropped")
    if report.log is not None:
        log = report.log
        included = f"included in {log['origin']} at index {log['leaf_index']} of tree size {log['tree_size']}"
        lines.append(f"  {printable(included)}")
    for finding, label in [*((v, "violation") for v in report.violations), *((w, "warning") for w in report.warnings)]:
        where = finding.location()
        lines.append(f"  {label} {finding.type}{' ' + where if where else ''}: {printable(finding.message)}")
    return lines
