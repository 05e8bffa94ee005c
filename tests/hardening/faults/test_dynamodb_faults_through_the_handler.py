"""DynamoDB failing under the real ingest handler (in-process, moto): each failure of a write call maps to the API's
retryable answer (429 THROTTLED, 503 SERVICE_UNAVAILABLE) with its JSON error body, and the agent's retry of the same
body gets 200 with the chain intact, whether or not the failed call had written (a timeout after the write).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agentops_verify import verify_lines
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.hardening.client_events import body, client_event, opening
from tests.hardening.inprocess import InProcessIngest, ingest_over_moto

WRITE_OPERATIONS = ("put_item", "update_item")
FAILURES: dict[str, tuple[Callable[[str], Exception], bool, int, str]] = {
    # name: (exception for the operation, does the write happen first, status, code)
    "throttled": (lambda op: _client_error("ProvisionedThroughputExceededException", op), False, 429, "THROTTLED"),
    "request_limit": (lambda op: _client_error("RequestLimitExceeded", op), False, 429, "THROTTLED"),
    "internal_error": (lambda op: _client_error("InternalServerError", op), False, 503, "SERVICE_UNAVAILABLE"),
    "timeout_before_the_write": (
        lambda op: ReadTimeoutError(endpoint_url="https://dynamodb"),
        False,
        503,
        "SERVICE_UNAVAILABLE",
    ),
    "timeout_after_the_write": (
        lambda op: ReadTimeoutError(endpoint_url="https://dynamodb"),
        True,
        503,
        "SERVICE_UNAVAILABLE",
    ),
}


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


@pytest.fixture(scope="module")
def ingest() -> Iterator[InProcessIngest]:
    with ingest_over_moto() as handler:
        yield handler


def fail_once(ingest: InProcessIngest, operation: str, failure: str, patch: pytest.MonkeyPatch) -> list[str]:
    """Make the next call of ``operation`` fail as ``failure``; returns a list that records when it fired."""
    client = ingest.module.wiring.dynamodb
    real = getattr(client, operation)
    make_error, writes_first, _, _ = FAILURES[failure]
    fired: list[str] = []

    def flaky(**arguments: Any) -> Any:
        if fired:
            return real(**arguments)
        fired.append(operation)
        if writes_first:
            real(**arguments)
        raise make_error(operation)

    patch.setattr(client, operation, flaky)
    return fired


@pytest.mark.parametrize("operation", WRITE_OPERATIONS)
@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("batch_position", ["opening", "follow_up"])
def test_failed_write_gets_a_retryable_answer_and_the_retry_succeeds_once(
    ingest: InProcessIngest, operation: str, failure: str, batch_position: str
) -> None:
    session_id = str(uuid.uuid4())
    first = opening(extra=1)
    follow_up = [client_event(2), client_event(3)]
    if batch_position == "follow_up":
        assert ingest.post_events(session_id, body(first)).status == 200
    sent = body(first if batch_position == "opening" else follow_up)
    _, _, status, code = FAILURES[failure]
    with pytest.MonkeyPatch.context() as patch:
        fired = fail_once(ingest, operation, failure, patch)
        answer = ingest.post_events(session_id, sent)
    if not fired:
        # This batch's path never calls the operation (e.g. no head update for an already-created session).
        assert answer.status == 200, answer.body
    else:
        assert answer.status == status, answer.body
        assert answer.json()["error"]["code"] == code
        assert set(answer.json()["error"]) == {"code", "message", "details"}
    retried = ingest.post_events(session_id, sent)
    assert retried.status == 200, retried.body
    again = ingest.post_events(session_id, sent)
    assert json.loads(again.body) == json.loads(retried.body)  # an identical retry gets the identical answer
    lines = list(ingest.store.iter_lines(session_id))
    report = verify_lines(lines)
    assert report.passed, report.to_dict()["violations"]
    assert report.event_count == 4 if batch_position == "follow_up" else report.event_count == 2
    assert report.final_event_hash == retried.json()["head"]["last_event_hash"]
    view = ingest.call("GET", f"/v1/sessions/{session_id}")
    assert view.json()["next_sequence_number"] == report.event_count
