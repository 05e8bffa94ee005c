"""The cap on one session's size (API.md 409 SESSION_TOO_LARGE), through the handler over moto, configured the way the
template passes ``MaxSessionEvents`` and ``MaxSessionBytes``: the refused batch writes nothing, and a batch that
reaches the cap exactly is accepted.

Without a cap one session could grow past what a sealing run can verify, sign and archive in its time, and stay
unsealed (and hold up the sessions behind it) for ever.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import BUCKET
from tests.functional.ingest.conftest import Api, table_items
from tests.functional.ingest.events import batch, event, new_session_id
from tests.support.handlers import load_handler_module

MAX_EVENTS = 6


@pytest.fixture
def capped(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Api:
    for name, value in {
        "TABLE_NAME": table_name,
        "ARCHIVE_BUCKET": BUCKET,
        "SERVICE_ID": "agentops-replay-test",
        "SEAL_IDLE_SECONDS": "3600",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "MAX_SESSION_EVENTS": str(MAX_EVENTS),
        "MAX_SESSION_BYTES": str(64 * 1024),
    }.items():
        monkeypatch.setenv(name, value)
    return Api(load_handler_module("ingest"))


def test_append_past_the_event_cap_is_session_too_large_and_writes_nothing(
    capped: Api, dynamodb: Any, table_name: str
) -> None:
    session_id = new_session_id()
    assert capped.post_events(session_id, batch(0, 4)).status == 200
    before = table_items(dynamodb, table_name)

    refused = capped.post_events(session_id, batch(4, 3))

    assert refused.status == 409
    assert refused.body["error"]["code"] == "SESSION_TOO_LARGE"
    details = refused.body["error"]["details"]
    assert (details["limit_events"], details["session_events"], details["batch_events"]) == (MAX_EVENTS, 4, 3)
    assert details["limit_bytes"] == 64 * 1024
    assert table_items(dynamodb, table_name) == before
    assert capped.post_events(session_id, batch(4, 2, end=True)).status == 200  # up to the cap exactly


def test_append_past_the_byte_cap_is_session_too_large_and_writes_nothing(
    capped: Api, dynamodb: Any, table_name: str
) -> None:
    session_id = new_session_id()
    first = capped.post_events(session_id, [event(0), event(1, payload={"tool_name": "t", "blob": "x" * 40_000})])
    assert first.status == 200
    before = table_items(dynamodb, table_name)

    refused = capped.post_events(session_id, [event(2, payload={"tool_name": "t", "blob": "y" * 30_000})])

    assert (refused.status, refused.body["error"]["code"]) == (409, "SESSION_TOO_LARGE")
    details = refused.body["error"]["details"]
    assert details["session_bytes"] > 40_000
    assert details["session_bytes"] + details["batch_bytes"] > details["limit_bytes"] == 64 * 1024
    assert table_items(dynamodb, table_name) == before


def test_the_session_size_counts_every_archived_byte(capped: Api) -> None:
    session_id = new_session_id()
    assert capped.post_events(session_id, batch(0, 2)).status == 200
    assert capped.post_events(session_id, batch(2, 3)).status == 200
    tip = capped.module.wiring.store.tip(session_id)
    assert tip is not None
    lines = list(capped.module.wiring.store.iter_lines(session_id))
    assert tip.session_bytes == sum(len(line) + 1 for line in lines)


def test_a_retry_of_a_stored_batch_at_the_cap_still_gets_its_answer(capped: Api) -> None:
    session_id = new_session_id()
    full = batch(0, MAX_EVENTS)
    first = capped.post_events(session_id, full)
    assert first.status == 200
    again = capped.post_events(session_id, full)
    assert (again.status, again.body) == (200, first.body)
