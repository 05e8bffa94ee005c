"""What ``agentops-replay`` prints: one-line event summaries, the timeline's marks, the session table, colour rules,
and values from events that try to drive the terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from agentops_replay.cli._evidence import check_session_id
from agentops_replay.cli._http import CommandError
from agentops_replay.cli._main import since_time, withheld
from agentops_replay.cli._render import (
    Style,
    event_summary,
    printable,
    render_timeline,
    session_table,
    timeline_rows,
)

PLAIN = Style(color=False)


@pytest.mark.parametrize(
    ("event_type", "payload", "summary"),
    [
        (
            "SESSION_START",
            {"agent_id": "support", "environment": "prod", "framework": "langchain", "tags": ["eu", "vip"]},
            "agent support (prod, langchain) tags eu,vip",
        ),
        ("SESSION_START", {"agent_id": "support"}, "agent support"),
        (
            "SESSION_END",
            {"status": "failure", "reason": "card declined", "duration_ms": 65_400},
            "failure: card declined after 65.4 s",
        ),
        ("SESSION_END", {"status": "success", "duration_ms": 820}, "success after 820 ms"),
        ("MODEL_REQUEST", {"model": "gpt-4o", "provider": "openai", "messages": [{}]}, "gpt-4o (openai) 1 message"),
        ("MODEL_REQUEST", {"model": "claude", "prompt_hash": "a" * 64}, "claude"),
        (
            "MODEL_RESPONSE",
            {"model": "gpt-4o", "finish_reason": "stop", "usage": {"input_tokens": 12, "output_tokens": 3}},
            "gpt-4o finish stop tokens 12 input, 3 output",
        ),
        ("TOOL_CALL", {"tool_name": "issue_refund", "tool_id": "call-1"}, "issue_refund [call-1]"),
        (
            "TOOL_RESULT",
            {"tool_name": "issue_refund", "tool_id": "call-1", "status": "error", "duration_ms": 182},
            "issue_refund [call-1] -> error in 182 ms",
        ),
        (
            "ERROR",
            {"error_type": "Timeout", "message": "upstream slow", "fatal": True},
            "Timeout: upstream slow (fatal)",
        ),
        (
            "LOG_DROP",
            {"dropped_count": 4, "cumulative_drops": 9, "drop_reason": "BUFFER_FULL"},
            "4 events dropped (BUFFER_FULL), 9 in this session so far",
        ),
        ("DECISION_TRACE", {"decision_id": "refund-A1", "policy_version": "2026-10"}, "refund-A1 policy 2026-10"),
        (
            "ANNOTATION",
            {"annotator_id": "dana", "annotation_type": "flag", "content": {"why": "odd"}},
            'flag by dana: {"why":"odd"}',
        ),
        ("AGENT_STATE_SNAPSHOT", {"checkpoint_id": "c7"}, "checkpoint c7"),
        (
            "CHAIN_SEAL",
            {"event_count": 12, "signer_key_id": "sha256:" + "ab" * 32},
            "12 events before the seal, signed by sha256:" + "ab" * 32,
        ),
        ("CHAIN_SEAL", {"event_count": 12}, "12 events before the seal, unsigned"),
    ],
)
def test_each_event_type_has_a_one_line_summary(event_type: str, payload: dict[str, Any], summary: str) -> None:
    assert event_summary(event_type, payload) == summary


def test_values_that_would_drive_the_terminal_are_shown_escaped() -> None:
    hostile = "ok\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r\nfake line\u2028\x9b31m"
    shown = printable(hostile)
    assert shown == "ok\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\r\\nfake line\\u2028\\x9b31m"
    assert all(character.isprintable() for character in shown)


def test_long_summaries_are_cut_with_an_ellipsis() -> None:
    assert printable("x" * 50, 10) == "xxxxxxx..."


def event_frame(sequence: int, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    event = {"event_type": event_type, "timestamp_wall": "2026-01-01T12:00:07.5Z", "payload": payload}
    return {"type": "LOG_DROP" if event_type == "LOG_DROP" else "EVENT", "sequence_number": sequence, "event": event}


def test_errors_drops_gaps_and_failures_are_marked_and_redactions_listed() -> None:
    frames = [
        event_frame(0, "SESSION_START", {"agent_id": "a"}),
        event_frame(1, "TOOL_CALL", {"tool_name": "send", "args": "[REDACTED]", "args_hash": "0" * 64}),
        {"type": "REDACTION", "sequence_number": 1, "event_id": "e", "pointers": ["/payload/args"]},
        event_frame(2, "TOOL_RESULT", {"tool_name": "send", "status": "success"}),
        event_frame(3, "ERROR", {"error_type": "E", "message": "boom"}),
        event_frame(4, "LOG_DROP", {"dropped_count": 2, "cumulative_drops": 2, "drop_reason": "NETWORK_LOSS"}),
        {"type": "GAP", "sequence_number": 4, "sequence_range": [5, 6], "dropped_count": 2},
        event_frame(5, "SESSION_END", {"status": "failure"}),
    ]
    lines = render_timeline(timeline_rows(frames), PLAIN)
    assert [line[0] for line in lines] == [" ", " ", " ", " ", "!", "!", "!", "!"]
    assert lines[0] == "       0  2026-01-01 12:00:07.500  SESSION_START         agent a"
    assert lines[2] == "                                   + REDACTED            /payload/args"
    assert (
        lines[6]
        == "!                                  + GAP                 positions [5,6] not recorded (2 events lost)"
    )


def test_colour_is_used_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Style.for_stream(Terminal()).color
    assert not Style.for_stream(io.StringIO()).color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Style.for_stream(Terminal()).color
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: only a non-empty value turns colour off
    assert Style.for_stream(Terminal()).color
    lines = render_timeline(timeline_rows([event_frame(3, "ERROR", {"error_type": "E", "message": "m"})]), Style(True))
    assert lines == ["\x1b[1;31m!      3  2026-01-01 12:00:07.500  ERROR                 E: m\x1b[0m"]


def test_the_session_table_aligns_its_columns() -> None:
    rows: list[dict[str, Any]] = [
        {
            "session_id": "3f1c2b6e-0000-4000-8000-000000000001",
            "agent_id": "refund-agent",
            "status": "SEALED",
            "event_count": 1204,
            "started_at": "2026-03-01T09:00:00.000000Z",
            "ended_at": "2026-03-01T09:05:12.250000Z",
            "evidence_class": "AUTHORITATIVE_EVIDENCE",
        },
        {
            "session_id": "3f1c2b6e-0000-4000-8000-000000000002",
            "agent_id": None,
            "status": "OPEN",
            "event_count": 3,
            "started_at": "2026-03-01T08:59:00.000000Z",
            "ended_at": None,
            "evidence_class": None,
        },
    ]
    assert session_table(rows, PLAIN) == [
        "SESSION                               AGENT         STATUS  EVENTS  STARTED              ENDED",
        "3f1c2b6e-0000-4000-8000-000000000001  refund-agent  SEALED  1204    2026-03-01 09:00:00  2026-03-01 09:05:12",
        "3f1c2b6e-0000-4000-8000-000000000002  -             OPEN    3       2026-03-01 08:59:00  -",
    ]


def test_since_takes_a_span_back_from_now_or_an_rfc_3339_time() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert since_time("90m", now) == "2026-03-01T10:30:00.000000Z"
    assert since_time("7d", now) == "2026-02-22T12:00:00.000000Z"
    assert since_time("2026-02-01T00:00:00Z", now) == "2026-02-01T00:00:00Z"
    with pytest.raises(CommandError, match="--since last week"):
        since_time("last week", now)


def test_withhold_is_all_or_sequence_numbers() -> None:
    assert withheld(None) is False
    assert withheld("all") is True
    assert withheld("3,5") == [3, 5]
    for bad in ("3,x", "-1", ""):
        with pytest.raises(CommandError):
            withheld(bad)


@pytest.mark.parametrize("session_id", ["../../etc/passwd", "3F1C2B6E-0000-4000-8000-000000000001", "x", ""])
def test_only_a_session_id_names_files(session_id: str) -> None:
    with pytest.raises(CommandError, match="is not a session id"):
        check_session_id(session_id)
