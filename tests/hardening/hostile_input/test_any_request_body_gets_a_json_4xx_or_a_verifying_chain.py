"""Property: whatever body an agent sends, the answer is a 4xx with the API.md JSON error and nothing written, or a
200 whose stored chain verifies (server authority, the hashes the response announced).

Mostly in-process over moto (fast); a few examples go over real HTTP to the local stack.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from agentops_server.errors import STATUS_BY_CODE
from agentops_verify import ENVELOPE_FIELDS, OPTIONAL_FIELDS, verify_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.hardening.client_events import CLIENT_PAYLOADS, client_event
from tests.hardening.inprocess import InProcessIngest, ingest_over_moto

# Every ELS section 1 field (the server-only ones included, which must be refused) and one that does not exist.
FIELDS = [*ENVELOPE_FIELDS, *OPTIONAL_FIELDS, "unexpected"]
EVENT_TYPES = [*CLIENT_PAYLOADS, "LOG_DROP", "CHAIN_SEAL", "ANNOTATION", "session_start", ""]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)


@st.composite
def mutated_batch(draw: st.DrawFn, first_sequence: int) -> bytes:
    """A valid batch starting at ``first_sequence`` with a few random mutations (or none), serialized."""
    size = draw(st.integers(min_value=1, max_value=4))
    events: list[Any] = []
    for offset in range(size):
        sequence = first_sequence + offset
        event_type = "SESSION_START" if sequence == 0 else draw(st.sampled_from(list(CLIENT_PAYLOADS)[1:]))
        events.append(client_event(sequence, event_type))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        index = draw(st.integers(min_value=0, max_value=size - 1))
        kind = draw(st.sampled_from(["set", "delete", "payload", "redact", "type", "duplicate", "replace_event"]))
        name = draw(st.sampled_from(FIELDS))
        if not isinstance(events[index], dict):
            continue  # an earlier mutation replaced this event by a non-object
        if kind == "set":
            events[index][name] = draw(json_values)
        elif kind == "delete":
            events[index].pop(name, None)
        elif kind == "payload" and isinstance(events[index].get("payload"), dict):
            events[index]["payload"][draw(st.text(max_size=6))] = draw(json_values)
        elif kind == "redact" and isinstance(events[index].get("payload"), dict) and events[index]["payload"]:
            # ELS section 3: "[REDACTED]" needs a string <key>_hash sibling; sometimes given, sometimes not.
            key = draw(st.sampled_from(sorted(events[index]["payload"])))
            events[index]["payload"][key] = "[REDACTED]"
            if draw(st.booleans()):
                events[index]["payload"][key + "_hash"] = draw(st.sampled_from(["0" * 64, 5, None]))
        elif kind == "type":
            events[index]["event_type"] = draw(st.sampled_from(EVENT_TYPES) | json_values)
        elif kind == "duplicate":
            events.append(json.loads(json.dumps(events[index])))
        else:
            events[index] = draw(json_values)
    document: Any = {"events": events}
    shape = draw(st.sampled_from(["batch"] * 6 + ["extra_key", "random_json", "random_bytes"]))
    if shape == "extra_key":
        document[draw(st.text(max_size=6))] = draw(json_values)
    elif shape == "random_json":
        document = draw(json_values)
    elif shape == "random_bytes":
        return draw(st.binary(max_size=64))
    return json.dumps(document, allow_nan=True, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def ingest() -> Iterator[InProcessIngest]:
    with ingest_over_moto() as handler:
        yield handler


def stored_lines(ingest: InProcessIngest, session_id: str) -> list[bytes]:
    return list(ingest.store.iter_lines(session_id))


def assert_api_error(status: int, document: Any) -> None:
    assert 400 <= status < 500, document
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "details"}
    assert STATUS_BY_CODE[document["error"]["code"]] == status


def assert_accepted_chain_verifies(response: Any, lines: list[bytes]) -> None:
    report = verify_lines(lines)
    assert report.status == "PASS", report.to_dict()["violations"]
    assert report.authority == "server"
    assert report.final_event_hash == response["head"]["last_event_hash"]
    assert report.event_count == response["head"]["next_sequence_number"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opener=mutated_batch(0), follow_up=mutated_batch(1))
def test_any_body_gets_a_json_4xx_or_a_chain_that_verifies(
    ingest: InProcessIngest, opener: bytes, follow_up: bytes
) -> None:
    session_id = str(uuid.uuid4())
    for body in (opener, follow_up):
        before = stored_lines(ingest, session_id)
        response = ingest.post_events(session_id, body)
        document = response.json()
        if response.status == 200:
            assert_accepted_chain_verifies(document, stored_lines(ingest, session_id))
        else:
            assert_api_error(response.status, document)
            assert stored_lines(ingest, session_id) == before


@pytest.fixture(scope="module")
def http_agent(local_stack: LocalStackHandle) -> ApiClient:
    return ApiClient(local_stack.base_url, access_key_id=f"AKIDFUZZ{uuid.uuid4().hex[:12].upper()}")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opener=mutated_batch(0))
def test_any_body_over_http_gets_a_json_4xx_or_a_session_that_moved(http_agent: ApiClient, opener: bytes) -> None:
    session_id = str(uuid.uuid4())
    response = http_agent.request(
        "POST", f"/v1/sessions/{session_id}/events", body=opener, content_type="application/json"
    )
    view = http_agent.get(f"/v1/sessions/{session_id}")
    if response.status == 200:
        accepted = response.json()
        assert view.json()["last_event_hash"] == accepted["head"]["last_event_hash"]
    else:
        assert_api_error(response.status, response.json())
        assert (view.status, view.error_code) == (404, "SESSION_NOT_FOUND")


@pytest.mark.parametrize(
    "event_type",
    [[], ["SESSION_START"], {}, {"type": "SESSION_START"}, None, 7, 1.5, True],
    ids=["empty_array", "array", "empty_object", "object", "null", "integer", "float", "boolean"],
)
def test_an_event_type_of_any_json_kind_but_string_is_a_validation_error(
    ingest: InProcessIngest, event_type: Any
) -> None:
    session_id = str(uuid.uuid4())
    response = ingest.post_events(
        session_id, json.dumps({"events": [{**client_event(0), "event_type": event_type}]}).encode()
    )
    assert_api_error(response.status, response.json())
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert stored_lines(ingest, session_id) == []
