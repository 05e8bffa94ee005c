"""Replay frames: one verified event in, the frames an investigator sees out, in order, nothing inferred."""

from __future__ import annotations

from typing import Any

from agentops_server.frames import build_page, frames_for
from agentops_verify import canonicalize

from tests.support.chains import build_chain, ordinary_payload

DROP = {"dropped_count": 3, "cumulative_drops": 5, "drop_reason": "BUFFER_FULL", "sequence_range": [7, 9]}
REDACTED_CALL = {
    "tool_name": "crm_lookup",
    "args": {"customer": {"email": "[REDACTED]", "email_hash": "e" * 64}, "ids": ["[REDACTED]"]},
}


def _special_payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
    if sequence_number == 2:
        return "LOG_DROP", dict(DROP)
    if sequence_number == 3:
        return "TOOL_CALL", REDACTED_CALL
    return ordinary_payload(sequence_number)


def _chain(n_events: int = 6) -> list[dict[str, Any]]:
    return build_chain(n_events, payload_factory=_special_payloads)


def _lines(chain: list[dict[str, Any]]) -> list[bytes]:
    return [canonicalize(event) for event in chain]


def test_ordinary_event_is_one_event_frame_carrying_the_envelope() -> None:
    event = _chain()[1]

    assert frames_for(event) == [{"type": "EVENT", "sequence_number": 1, "event": event}]


def test_log_drop_gives_its_figures_and_the_gap_it_declares() -> None:
    drop = _chain()[2]

    frames = frames_for(drop)

    assert frames == [
        {
            "type": "LOG_DROP",
            "sequence_number": 2,
            "dropped_count": 3,
            "drop_reason": "BUFFER_FULL",
            "cumulative_drops": 5,
            "event": drop,
        },
        {
            "type": "GAP",
            "sequence_number": 2,
            "declared_by_event_id": drop["event_id"],
            "sequence_range": [7, 9],
            "dropped_count": 3,
        },
    ]


def test_log_drop_without_a_declared_range_gets_no_invented_gap() -> None:
    def payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
        return "LOG_DROP", {"dropped_count": 1, "cumulative_drops": 1, "drop_reason": "NETWORK_LOSS"}

    drop = build_chain(3, payload_factory=payloads)[1]

    assert [frame["type"] for frame in frames_for(drop)] == ["LOG_DROP"]


def test_redacted_values_are_listed_by_pointer_after_the_event() -> None:
    event = _chain()[3]

    frames = frames_for(event)

    assert [frame["type"] for frame in frames] == ["EVENT", "REDACTION"]
    assert frames[1] == {
        "type": "REDACTION",
        "sequence_number": 3,
        "event_id": event["event_id"],
        "pointers": ["/payload/args/customer/email", "/payload/args/ids/0"],
    }


def test_pages_cover_every_event_exactly_once_in_order() -> None:
    chain = _chain(23)
    seen: list[int] = []
    from_sequence: int | None = 0
    pages = 0
    while from_sequence is not None:
        page = build_page(_lines(chain), from_sequence, 5, len(chain))
        seen.extend(frame["sequence_number"] for frame in page.frames if frame["type"] in {"EVENT", "LOG_DROP"})
        from_sequence = page.next_from_sequence
        pages += 1

    assert seen == list(range(len(chain)))
    assert pages == 5  # 24 events (23 + seal) in pages of 5


def test_page_may_start_reading_early_but_returns_only_its_range() -> None:
    chain = _chain(12)

    page = build_page(_lines(chain), 4, 3, len(chain))

    assert [frame["sequence_number"] for frame in page.frames] == [4, 5, 6]
    assert page.next_from_sequence == 7


def test_page_past_the_end_is_empty_and_final() -> None:
    chain = _chain(6)

    page = build_page(_lines(chain), 50, 10, len(chain))

    assert page.frames == []
    assert page.next_from_sequence is None


def test_same_chain_always_gives_the_same_frames() -> None:
    chain = _chain(10)

    assert build_page(_lines(chain), 0, 200, len(chain)) == build_page(_lines(chain), 0, 200, len(chain))


def test_a_page_stops_before_its_events_pass_the_size_cap() -> None:
    chain = _chain(30)
    lines = _lines(chain)
    cap = sum(len(line) for line in lines[:10]) + 1

    page = build_page(lines, 0, 200, len(chain), max_bytes=cap)

    assert [frame["sequence_number"] for frame in page.frames if frame["type"] != "REDACTION"][-1] == 9
    assert page.next_from_sequence == 10


def test_a_page_always_holds_at_least_one_event_however_large() -> None:
    chain = _chain(6)

    page = build_page(_lines(chain), 2, 200, len(chain), max_bytes=1)

    assert [frame["sequence_number"] for frame in page.frames] == [2, 2]  # the LOG_DROP and the gap it declares
    assert page.next_from_sequence == 3
