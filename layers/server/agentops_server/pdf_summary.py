"""What the agent did, read from an export document (ELS section 9) for the PDF report (``agentops_server.pdf``).

``read_export`` reads the document's ``events`` one at a time and keeps only what the report shows: a line per event
(with a one-line summary of its payload, ELS section 3's keys for its type) and the session's facts (agent, models,
tools, errors, how it ended), so a 100,000-event document never becomes 100,000 parsed payloads at once. Everything
here comes from payloads the agent's SDK recorded: the chain's hashes and the seal show they were not edited since,
not that they are true. A withheld payload (``payload_withheld``) contributes nothing but the fact it is withheld.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from agentops_verify import Checkpoint, EvidenceLogError, LogProof, is_redacted

from agentops_server.pdf_rows import plain

SUMMARY_CHARS = 160  # an event's summary is cut here; the table cuts it again to its column's width
MESSAGE_CHARS = 300  # an error message in the report


@dataclass(frozen=True)
class EventLine:
    """What the report shows of one event; the payload itself is never kept."""

    sequence_number: str
    timestamp_wall: str
    event_type: str
    payload_hash: str
    withheld: bool
    redacted: int
    summary: str
    alarming: bool
    declares_gap: bool

    def description(self) -> str:
        if self.withheld:
            return "payload withheld (not in this export)"
        return f"[redacted: {self.redacted}] {self.summary}" if self.redacted else self.summary


@dataclass(frozen=True)
class ErrorLine:
    sequence_number: str
    error_type: str
    message: str
    fatal: bool

    def text(self) -> str:
        return f"{self.error_type}: {self.message}" + (" (fatal)" if self.fatal else "")


@dataclass
class SessionFacts:
    """The session as its disclosed payloads tell it. ``start`` and ``end`` are the SESSION_START and SESSION_END
    payloads (``None`` when absent or withheld; the ``*_withheld`` flags tell which)."""

    start: dict[str, Any] | None = None
    start_withheld: bool = False
    end: dict[str, Any] | None = None
    end_withheld: bool = False
    model_requests: Counter[str] = field(default_factory=Counter)
    model_responses: Counter[str] = field(default_factory=Counter)
    tool_calls: Counter[str] = field(default_factory=Counter)
    tool_results: dict[str, Counter[str]] = field(default_factory=dict)
    errors: list[ErrorLine] = field(default_factory=list)
    withheld: int = 0
    redacted_events: int = 0

    def add(self, sequence_number: str, event_type: str, payload: Mapping[str, Any] | None) -> None:
        if payload is None:
            self.withheld += 1
            self.start_withheld |= event_type == "SESSION_START"
            self.end_withheld |= event_type == "SESSION_END"
            return
        get = payload.get
        if event_type == "SESSION_START":
            self.start = dict(payload)
        elif event_type == "SESSION_END":
            self.end = dict(payload)
        elif event_type == "MODEL_REQUEST":
            self.model_requests[short(get("model"))] += 1
        elif event_type == "MODEL_RESPONSE":
            self.model_responses[short(get("model"))] += 1
        elif event_type == "TOOL_CALL":
            self.tool_calls[short(get("tool_name"))] += 1
        elif event_type == "TOOL_RESULT":
            status = "no status" if get("status") is None else short(get("status"))
            self.tool_results.setdefault(short(get("tool_name")), Counter())[status] += 1
        elif event_type == "ERROR":
            self.errors.append(
                ErrorLine(
                    sequence_number,
                    short(get("error_type")),
                    short(get("message"), MESSAGE_CHARS),
                    get("fatal") is True,
                )
            )

    @property
    def end_status(self) -> str | None:
        return None if self.end is None else short(self.end.get("status"))

    @property
    def failed(self) -> bool:
        """Ended, and not with ``success`` (failure, timeout or cancelled)."""
        return self.end is not None and self.end_status != "success"

    def distinct_errors(self) -> list[tuple[ErrorLine, list[str]]]:
        """Each distinct error (type, message, fatal) in order of first appearance, with the events that carry it."""
        where: dict[tuple[str, str, bool], tuple[ErrorLine, list[str]]] = {}
        for error in self.errors:
            where.setdefault((error.error_type, error.message, error.fatal), (error, []))[1].append(
                error.sequence_number
            )
        return list(where.values())

    def models(self) -> list[tuple[str, int, int]]:
        """(model, requests, responses), most used first."""
        names = sorted(set(self.model_requests) | set(self.model_responses))
        rows = [(name, self.model_requests[name], self.model_responses[name]) for name in names]
        return sorted(rows, key=lambda row: (-(row[1] + row[2]), row[0]))

    def tools(self) -> list[tuple[str, int, str]]:
        """(tool, calls, results by status), most called first."""
        names = sorted(set(self.tool_calls) | set(self.tool_results))
        rows = [(name, self.tool_calls[name], _statuses(self.tool_results.get(name, Counter()))) for name in names]
        return sorted(rows, key=lambda row: (-row[1], row[0]))


@dataclass(frozen=True)
class LogStatement:
    """What the PDF says of the export's ``log_proof`` (LOG.md section 5): rows for the chain of custody and a
    sentence (Paragraph markup) on how to check it."""

    rows: list[list[str]]
    sentence: str


LOG_CHECK_COMMAND = "agentops-verify --log-key KEY --require-log-inclusion export.json"


def log_statement(log_proof: Any) -> LogStatement:
    """The log's checkpoint (origin, tree size, root hash) and the session's leaf index as the proof states them:
    read, not checked (the PDF is no evidence), so the sentence says how the proof is verified offline."""
    if log_proof is None:
        return LogStatement(
            [["Evidence log", "not yet in the log"]],
            "The session is not yet in the deployment's evidence log (the export carries no log proof): the sealer "
            "adds each sealed session to the log after archiving it, and a later export carries its proof.",
        )
    try:
        proof = LogProof.from_dict(log_proof)
        signed_text = proof.checkpoint.partition("\n\n")[0] + "\n"  # the note's text, before its signatures
        checkpoint = Checkpoint.from_note_text(signed_text.encode("utf-8", "surrogatepass"))
    except EvidenceLogError as error:
        return LogStatement(
            [["Evidence log", "the export's log proof cannot be read"]],
            f"The export carries a log proof that cannot be read ({escape(plain(error))}): agentops-verify reports "
            "it as LOG_PROOF_INVALID.",
        )
    return LogStatement(
        [
            ["Log checkpoint origin", checkpoint.origin],
            ["Log tree size", str(checkpoint.size)],
            ["Log root hash (base64)", base64.b64encode(checkpoint.root_hash).decode("ascii")],
            ["Leaf index of this session", str(proof.leaf_index)],
        ],
        f"The export's log proof places the session at leaf {proof.leaf_index} of the evidence log whose signed "
        "checkpoint is shown above. This rendering does not check it; verify it offline with "
        f"<font face='Courier'>{LOG_CHECK_COMMAND}</font>, where KEY is the deployment's key from GET /v1/keys.",
    )


@dataclass
class Recording:
    members: dict[str, Any]
    events: list[EventLine]
    facts: SessionFacts


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def read_export(document: bytes) -> Recording:
    """The document's members (except ``events``), a line per event and the session's facts."""
    text = document.decode("utf-8")
    recording = Recording({}, [], SessionFacts())
    index = _expect(text, 0, "{")
    while text[index] != "}":
        name, index = _DECODER.raw_decode(text, index)
        index = _expect(text, index, ":")
        if name == "events" and text[index] == "[":
            index = _expect(text, index, "[")
            while text[index] != "]":
                event, index = _DECODER.raw_decode(text, index)
                _add_event(recording, event if isinstance(event, dict) else {})
                index = _skip(text, index)
                if text[index] == ",":
                    index = _skip(text, index + 1)
            index += 1
        else:
            recording.members[name], index = _DECODER.raw_decode(text, index)
        index = _skip(text, index)
        if text[index] == ",":
            index = _skip(text, index + 1)
    return recording


def _add_event(recording: Recording, event: dict[str, Any]) -> None:
    raw_payload = event.get("payload")
    withheld = event.get("payload_withheld") is True
    payload: dict[str, Any] | None = None if withheld else (raw_payload if isinstance(raw_payload, dict) else {})
    event_type = plain(event.get("event_type"))
    sequence_number = plain(event.get("sequence_number"))
    redacted = 0 if payload is None else _count_redacted(payload)
    recording.facts.add(sequence_number, event_type, payload)
    recording.facts.redacted_events += 1 if redacted else 0
    recording.events.append(
        EventLine(
            sequence_number=sequence_number,
            timestamp_wall=plain(event.get("timestamp_wall")),
            event_type=event_type,
            payload_hash=plain(event.get("payload_hash")),
            withheld=withheld,
            redacted=redacted,
            summary="" if payload is None else short(event_summary(event_type, payload), SUMMARY_CHARS),
            alarming=payload is not None and is_alarming(event_type, payload),
            declares_gap=payload is not None and event_type == "LOG_DROP" and "sequence_range" in payload,
        )
    )


def is_alarming(event_type: str, payload: Mapping[str, Any]) -> bool:
    """An error, a drop, a tool result that did not succeed or a session that did not succeed."""
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
        context = ", ".join(short(get(name)) for name in ("environment", "framework", "framework_version") if get(name))
        return f"agent {short(get('agent_id'))}" + (f" ({context})" if context else "")
    if event_type == "SESSION_END":
        reason = get("reason")
        return short(get("status")) + (f": {short(reason)}" if reason else "")
    if event_type in ("MODEL_REQUEST", "MODEL_RESPONSE"):
        detail = get("provider") if event_type == "MODEL_REQUEST" else get("finish_reason")
        return short(get("model")) + (f" ({short(detail)})" if detail else "")
    if event_type == "TOOL_CALL":
        return short(get("tool_name")) + _tool_id(get("tool_id"))
    if event_type == "TOOL_RESULT":
        status = get("status")
        return short(get("tool_name")) + _tool_id(get("tool_id")) + (f" -> {short(status)}" if status else "")
    if event_type == "ERROR":
        return f"{short(get('error_type'))}: {short(get('message'), SUMMARY_CHARS)}" + (
            " (fatal)" if get("fatal") is True else ""
        )
    if event_type == "LOG_DROP":
        return f"dropped {short(get('dropped_count'))} ({short(get('drop_reason'))})"
    if event_type == "DECISION_TRACE":
        return f"decision {short(get('decision_id'))}"
    if event_type == "ANNOTATION":
        return f"{short(get('annotation_type'))} by {short(get('annotator_id'))}: {short(get('content'))}"
    if event_type == "AGENT_STATE_SNAPSHOT":
        checkpoint = get("checkpoint_id")
        return f"checkpoint {short(checkpoint)}" if checkpoint else "state snapshot"
    if event_type == "CHAIN_SEAL":
        return f"{short(get('event_count'))} events before the seal"
    return ""


def short(value: Any, limit: int = 80) -> str:
    """A payload value as one line of at most ``limit`` characters (JSON for anything but a string)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = plain(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tool_id(tool_id: Any) -> str:
    return f" [{short(tool_id)}]" if tool_id else ""


def _statuses(results: Counter[str]) -> str:
    return ", ".join(
        f"{status} {count}" for status, count in sorted(results.items(), key=lambda item: (-item[1], item[0]))
    )


def _count_redacted(value: Any) -> int:
    if is_redacted(value):
        return 1
    if isinstance(value, dict):
        return sum(_count_redacted(child) for child in value.values())
    if isinstance(value, list):
        return sum(_count_redacted(child) for child in value)
    return 0


def _skip(text: str, index: int) -> int:
    match = _JSON_WHITESPACE.match(text, index)
    return match.end() if match else index


def _expect(text: str, index: int, token: str) -> int:
    index = _skip(text, index)
    if text[index] != token:
        raise ValueError(f"the export document is not a JSON object as expected: {token!r} missing at {index}")
    return _skip(text, index + 1)
