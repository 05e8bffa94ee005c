"""Concurrency and network failure over real HTTP: racing writers never fork a session, lost responses are safe."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.api_client import REGION, ApiClient, ApiResponse
from infra.launcher import LocalStackHandle
from tests.integration.ingest.builders import batch_body, event, expected_hashes, new_session_id, opening_batch
from tests.integration.ingest.storage import stored_items

pytestmark = pytest.mark.integration

WRITERS = 6
ROUNDS = 15


def race(api: ApiClient, session_id: str, offers: list[list[dict[str, Any]]]) -> list[ApiResponse]:
    """Post every offer at the same moment, one thread per writer."""
    responses: list[ApiResponse | None] = [None] * len(offers)
    start = threading.Barrier(len(offers))

    def write(index: int) -> None:
        start.wait()
        responses[index] = api.post(f"/v1/sessions/{session_id}/events", batch_body(offers[index]))

    threads = [threading.Thread(target=write, args=(index,)) for index in range(len(offers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(response is not None for response in responses)
    return [response for response in responses if response is not None]


def test_six_writers_racing_for_fifteen_rounds_never_fork_the_chain(api: ApiClient) -> None:
    session_id = new_session_id()
    opening = opening_batch()
    first = api.post(f"/v1/sessions/{session_id}/events", batch_body(opening))
    assert first.status == 200, first.body
    chain: list[dict[str, Any]] = list(opening)
    head = first.json()["head"]

    for round_number in range(ROUNDS):
        sequence = head["next_sequence_number"]
        # Each writer offers a different two-event batch for the same sequence numbers.
        offers = [[event(sequence, "TOOL_CALL"), event(sequence + 1, "MODEL_RESPONSE")] for _ in range(WRITERS)]
        responses = race(api, session_id, offers)

        statuses = [response.status for response in responses]
        winners = [index for index, status in enumerate(statuses) if status == 200]
        assert len(winners) == 1, f"round {round_number}: statuses {statuses}"
        (winner,) = winners
        head = responses[winner].json()["head"]
        assert head["next_sequence_number"] == sequence + 2
        for index, response in enumerate(responses):
            if index == winner:
                continue
            assert response.status == 409, response.body
            error = response.json()["error"]
            assert error["code"] == "SEQUENCE_CONFLICT"
            # The loser learns the head the winner produced, so it can rebase.
            assert error["details"]["head"]["next_sequence_number"] == sequence + 2
            assert error["details"]["head"]["last_event_hash"] == head["last_event_hash"]
        chain.extend(offers[winner])

    # The stored chain is exactly the winners' batches, linked in order (ELS section 2).
    hashes = expected_hashes(session_id, chain, None)
    view = api.get(f"/v1/sessions/{session_id}").json()
    assert view["next_sequence_number"] == len(chain) == 1 + 2 * ROUNDS
    assert view["event_count"] == len(chain)
    assert view["last_event_hash"] == hashes[-1]


def signed_raw_request(api: ApiClient, path: str, body: bytes) -> bytes:
    """The bytes of a signed HTTP/1.1 POST, for sending over a socket we control."""
    url = api.base_url + path
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    assert api.access_key_id is not None
    SigV4Auth(Credentials(api.access_key_id, api.secret_access_key), "execute-api", REGION).add_auth(request)
    host = urlsplit(url).netloc
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in request.headers.items() if name.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_retry_after_a_lost_response_gets_the_original_result(api: ApiClient, local_stack: LocalStackHandle) -> None:
    session_id = new_session_id()
    sent = opening_batch(extra_events=4)
    body = json.dumps(batch_body(sent)).encode()
    path = f"/v1/sessions/{session_id}/events"

    # The request reaches the service, is applied, and the connection drops before the agent reads the answer.
    url = urlsplit(api.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(signed_raw_request(api, path, body))
        deadline = time.monotonic() + 30
        while api.get(f"/v1/sessions/{session_id}").status != 200:
            assert time.monotonic() < deadline, "the first attempt was never applied"
            time.sleep(0.05)
    items = stored_items(local_stack, session_id)

    retry = api.request("POST", path, body=body, content_type="application/json")

    assert retry.status == 200, retry.body
    hashes = expected_hashes(session_id, sent, None)
    assert [accepted["event_hash"] for accepted in retry.json()["events"]] == hashes
    assert retry.json()["head"]["next_sequence_number"] == len(sent)
    assert stored_items(local_stack, session_id) == items  # no duplicate, no gap
    # The agent carries on from where the retry says it is.
    follow_up = api.post(path, batch_body([event(len(sent), "SESSION_END")]))
    assert follow_up.status == 200, follow_up.body
    assert follow_up.json()["head"]["next_sequence_number"] == len(sent) + 1


def test_retry_of_an_older_batch_after_the_session_moved_on_is_still_accepted_as_stored(api: ApiClient) -> None:
    session_id = new_session_id()
    path = f"/v1/sessions/{session_id}/events"
    opening = opening_batch(extra_events=1)
    first = api.post(path, batch_body(opening))
    assert first.status == 200
    assert api.post(path, batch_body([event(2), event(3)])).status == 200

    late_retry = api.post(path, batch_body(opening))

    assert late_retry.status == 200, late_retry.body
    assert late_retry.json()["events"] == first.json()["events"]
    assert api.get(f"/v1/sessions/{session_id}").json()["next_sequence_number"] == 4
