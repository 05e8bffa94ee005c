"""Request validation: strict types, ELS section 3 payload rules, I-JSON traps and the precedence of codes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from agentops_server.errors import ApiError
from agentops_server.validation import validate_batch
from agentops_verify import MalformedJSONError, canonicalize, loads
from hypothesis import given, settings
from hypothesis import strategies as st

SESSION = "0f076f86-63df-44ea-9eeb-11ffd6a808be"


def _event(sequence: int, event_type: str = "TOOL_CALL", **fields: Any) -> dict[str, Any]:
    payloads = {
        "SESSION_START": {"agent_id": "agent"},
        "SESSION_END": {"status": "success"},
        "TOOL_CALL": {"tool_name": "search"},
    }
    built = {
        "event_id": str(uuid.uuid4()),
        "sequence_number": sequence,
        "timestamp_wall": "2026-01-01T12:00:00Z",
        "event_type": event_type,
        "payload": payloads.get(event_type, {}),
    }
    built.update(fields)
    return built


def _rejected(body: Any, session_id: str = SESSION) -> ApiError:
    text = body if isinstance(body, str | bytes) else json.dumps({"events": body})
    with pytest.raises(ApiError) as raised:
        validate_batch(text, session_id)
    return raised.value


def _problems(events: list[Any]) -> list[tuple[int | None, str]]:
    error = _rejected(events)
    assert error.code == "VALIDATION_ERROR"
    return [(problem["event_index"], problem["field"]) for problem in error.details["errors"]]


def test_a_valid_batch_keeps_the_client_values() -> None:
    sent = [_event(4), _event(5, "SESSION_END")]
    batch = validate_batch(json.dumps({"events": sent}), SESSION)
    assert (batch.first_sequence, batch.last_sequence, batch.ends_session) == (4, 5, True)
    # defaults are the ingest's to apply
    # (tests/functional/ingest/test_appends_keep_one_chain_through_retries_crashes_and_races.py)
    assert batch.events == sent
    assert batch.payloads == (b'{"tool_name":"search"}', b'{"status":"success"}')


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sequence_number", "4"),
        ("sequence_number", True),
        ("sequence_number", 4.5),
        ("sequence_number", -1),
        ("timestamp_monotonic", "5"),
        ("timestamp_monotonic", False),
        ("event_id", "0F076F86-63DF-44EA-9EEB-11FFD6A808BE"),
        ("event_id", "{0f076f86-63df-44ea-9eeb-11ffd6a808be}"),
        ("event_id", "0f076f8663df44ea9eeb11ffd6a808be"),
        ("timestamp_wall", "2026-01-01T12:00:00+00:00"),
        ("timestamp_wall", "2026-01-01 12:00:00Z"),
        ("timestamp_wall", "2026-02-30T12:00:00Z"),
        ("timestamp_wall", "2026-01-01T24:00:00Z"),
        ("timestamp_wall", "2026-12-31T23:59:61Z"),
        ("timestamp_wall", 1767268800),
        ("schema_ver", "v0.5"),
        ("source_sdk_ver", None),
        ("session_id", None),
        ("payload", "not an object"),
        ("payload_hash", 5),
        ("surprise", 1),
    ],
)
def test_envelope_fields_are_strictly_typed(field: str, value: Any) -> None:
    assert _problems([_event(4, **{field: value})]) == [(0, field)]


@pytest.mark.parametrize(
    ("event_type", "payload", "field"),
    [
        ("SESSION_START", {}, "payload.agent_id"),
        ("SESSION_START", {"agent_id": ""}, "payload.agent_id"),
        ("SESSION_START", {"agent_id": "a", "environment": "qa"}, "payload.environment"),
        ("SESSION_START", {"agent_id": "a", "tags": "x"}, "payload.tags"),
        ("SESSION_START", {"agent_id": "a", "environment": None}, "payload.environment"),
        ("MODEL_REQUEST", {"model": "m", "provider": None}, "payload.provider"),
        ("ERROR", {"error_type": "E", "message": "m", "fatal": None}, "payload.fatal"),
        ("SESSION_END", {"status": "done"}, "payload.status"),
        ("SESSION_END", {"status": "success", "duration_ms": "12"}, "payload.duration_ms"),
        ("MODEL_REQUEST", {"messages": []}, "payload.model"),
        ("MODEL_RESPONSE", {"model": 4}, "payload.model"),
        ("TOOL_CALL", {"args": {}}, "payload.tool_name"),
        ("TOOL_RESULT", {"tool_name": "t", "duration_ms": True}, "payload.duration_ms"),
        ("DECISION_TRACE", {"decision_id": "d", "inputs": {}, "outputs": {}}, "payload.justification"),
        ("ERROR", {"error_type": "E"}, "payload.message"),
        ("ERROR", {"error_type": "E", "message": "m", "fatal": "yes"}, "payload.fatal"),
        ("ANNOTATION", {"annotator_id": "a", "annotation_type": "vote", "content": "c"}, "payload.annotation_type"),
        (
            "ANNOTATION",
            {"annotator_id": "a", "annotation_type": "flag", "content": "c", "target_event_id": "x"},
            "payload.target_event_id",
        ),
        (
            "LOG_DROP",
            {"dropped_count": 0, "cumulative_drops": 0, "drop_reason": "BUFFER_FULL"},
            "payload.dropped_count",
        ),
        (
            "LOG_DROP",
            {"dropped_count": 1, "cumulative_drops": 1, "drop_reason": "DISK_FULL"},
            "payload.drop_reason",
        ),
        ("LOG_DROP", {"dropped_count": 1, "drop_reason": "SDK_CRASH"}, "payload.cumulative_drops"),
    ],
)
def test_payloads_follow_els_section_3(event_type: str, payload: dict[str, Any], field: str) -> None:
    sequence = 0 if event_type == "SESSION_START" else 4
    assert _problems([_event(sequence, event_type, payload=payload)]) == [(0, field)]


def test_payloads_are_open_and_accept_redacted_values() -> None:
    redacted = {"tool_name": "send_mail", "args": "[REDACTED]", "args_hash": "a" * 64, "vendor_field": [1, 2]}
    snapshot = {"state": {"step": 1}}
    batch = validate_batch(
        json.dumps({"events": [_event(4, payload=redacted), _event(5, "AGENT_STATE_SNAPSHOT", payload=snapshot)]}),
        SESSION,
    )
    assert batch.events[0]["payload"] == redacted


def test_every_problem_of_the_batch_is_listed() -> None:
    assert _problems([_event(4, sequence_number="4"), _event(5, payload={}), 7, {"sequence_number": 6}]) == [
        (0, "sequence_number"),
        (1, "payload.tool_name"),
        (2, "event"),
        (3, "event_type"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{",
        '{"events": [NaN]}',
        '{"events": [Infinity]}',
        '{"events": [9007199254740992]}',
        '{"events": [-9007199254740992]}',
        '{"events": ["\\ud800"]}',
        '{"events": [], "events": []}',
        '{"events": [' + "[" * 64 + "]" * 64 + "]}",
        b'{"events": ["\xff"]}',
    ],
)
def test_input_two_parsers_could_read_differently_is_invalid_json(body: str | bytes) -> None:
    assert _rejected(body).code == "INVALID_JSON"


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([], "EMPTY_BATCH"),
        ([_event(4 + i) for i in range(501)], "BATCH_TOO_LARGE"),
        ([_event(4, chain_authority="server")], "AUTHORITY_FIELD_REJECTED"),
        ([_event(4, authority_id="x")], "AUTHORITY_FIELD_REJECTED"),
        ([_event(4, prev_event_hash=None)], "AUTHORITY_FIELD_REJECTED"),
        ([_event(4, event_hash="a" * 64)], "AUTHORITY_FIELD_REJECTED"),
        ([_event(4, "CHAIN_SEAL")], "SERVER_ONLY_EVENT_TYPE"),
        ([_event(4, "session_start")], "UNKNOWN_EVENT_TYPE"),
        ([_event(4, session_id=str(uuid.uuid4()))], "SESSION_ID_MISMATCH"),
        ([_event(4), _event(6)], "NON_CONTIGUOUS_BATCH"),
        ([_event(4), _event(4)], "NON_CONTIGUOUS_BATCH"),
        ([_event(0)], "INVALID_FIRST_EVENT"),
        ([_event(4, "SESSION_START", payload={"agent_id": "a"})], "INVALID_FIRST_EVENT"),
        ([_event(4, "SESSION_END"), _event(5, "SESSION_END")], "ORDER_VIOLATION"),
        ([_event(4, "SESSION_END"), _event(5)], "ORDER_VIOLATION"),
    ],
)
def test_batch_rules(events: list[dict[str, Any]], code: str) -> None:
    assert _rejected(events).code == code


def test_event_id_twice_in_a_batch_is_a_duplicate() -> None:
    first = _event(4)
    error = _rejected([first, _event(5, event_id=first["event_id"])])
    assert (error.code, error.details["event_index"], error.details["first_index"]) == ("DUPLICATE_EVENT_ID", 1, 0)


@pytest.mark.parametrize("path", ["not-a-uuid", SESSION.upper(), SESSION + "0", ""])
def test_path_must_be_a_canonical_uuid(path: str) -> None:
    assert _rejected([_event(4)], path).code == "SESSION_ID_MISMATCH"


def test_precedence_is_fixed_whatever_the_order_of_problems() -> None:
    # A later event claiming a chain field outranks an earlier event with a bad type and a malformed field.
    events = [_event(4, "NOT_A_TYPE"), _event(5, sequence_number="x"), _event(6, event_hash="a" * 64)]
    assert _rejected(events).code == "AUTHORITY_FIELD_REJECTED"
    assert _rejected(events[:2]).code == "UNKNOWN_EVENT_TYPE"
    assert _rejected([_event(4, "CHAIN_SEAL"), _event(5, "NOT_A_TYPE")]).code == "SERVER_ONLY_EVENT_TYPE"
    assert _rejected([_event(4, session_id=str(uuid.uuid4())), _event(9)]).code == "SESSION_ID_MISMATCH"
    assert _rejected("{", "bad path").code == "SESSION_ID_MISMATCH"


@pytest.mark.parametrize("event_type", [[], {}, 1, 1.5, True, None])
def test_an_event_type_that_is_not_a_string_is_a_validation_error_not_a_fault(event_type: Any) -> None:
    # Found by the hostile-input fuzzer: a list here once reached a set lookup and crashed the handler (500).
    error = _rejected([{**_event(0, "SESSION_START", payload={"agent_id": "a"}), "event_type": event_type}])
    assert error.code == "VALIDATION_ERROR"
    assert error.details["errors"] == [{"event_index": 0, "field": "event_type", "problem": "missing or not a string"}]


def _nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _with_payload_value(sequence: int, value: Any) -> dict[str, Any]:
    return _event(sequence, payload={"tool_name": "search", "args": value})


def test_a_payload_nested_to_the_last_allowed_level_is_accepted_and_one_more_is_invalid_json() -> None:
    # body 0, events 1, event 2, payload 3: the args lists fill levels 4..63, the deepest level allowed.
    batch = validate_batch(json.dumps({"events": [_with_payload_value(4, _nested_lists(60))]}), SESSION)
    assert batch.payloads[0] == b'{"args":' + b"[" * 60 + b"]" * 60 + b',"tool_name":"search"}'
    error = _rejected([_with_payload_value(4, _nested_lists(61))])
    assert (error.code, error.details["problem"]) == ("INVALID_JSON", "nesting deeper than 64")


@pytest.mark.parametrize(
    "value",
    [
        [{"i": index} for index in range(200)],  # many brackets, two levels deep
        "[" * 500 + "{" * 500,  # brackets inside a string
    ],
)
def test_a_shallow_payload_with_many_brackets_is_accepted(value: Any) -> None:
    batch = validate_batch(json.dumps({"events": [_with_payload_value(4, value)]}), SESSION)
    assert json.loads(batch.payloads[0])["args"] == value


@pytest.mark.parametrize(
    "events",
    [
        [_event(4, trace=_nested_lists(70))],  # an unknown field, and deep
        [_with_payload_value(4, _nested_lists(70)), _event(5, event_hash="a" * 64)],
        [_event(4, "NOT_A_TYPE"), _with_payload_value(5, _nested_lists(70))],
        [_with_payload_value(4, _nested_lists(70)), _event(9)],
        [_with_payload_value(4, _nested_lists(70)), _event(5, "SESSION_END"), _event(6)],
    ],
)
def test_nesting_too_deep_outranks_every_other_problem_of_the_batch(events: list[dict[str, Any]]) -> None:
    assert _rejected(events).code == "INVALID_JSON"


def test_a_leap_second_is_a_valid_timestamp_as_rfc_3339_and_the_verifier_say() -> None:
    batch = validate_batch(json.dumps({"events": [_event(4, timestamp_wall="2016-12-31T23:59:60.5Z")]}), SESSION)
    assert batch.events[0]["timestamp_wall"] == "2016-12-31T23:59:60.5Z"


def test_payloads_with_and_without_whole_number_floats_keep_their_canonical_bytes() -> None:
    # Each payload is written on its own: 1.0 as 1 where it is a number, "1.0," untouched where it is text, and an
    # astral member name (sorted by UTF-16, not code point) in one payload only.
    payloads = [
        {"tool_name": "search", "args": {"top_p": 1.0, "prices": [180.0, 180.5]}},
        {"tool_name": "search", "args": {"note": "version 1.0, final", "ratio": "x:2.0,"}},
        {"tool_name": "search", "args": {"\U0001f600": 2.0, "\ue000": -0.0}},
        {"tool_name": "search"},
    ]
    events = [_event(4 + index, payload=payload) for index, payload in enumerate(payloads)]
    batch = validate_batch(json.dumps({"events": events}), SESSION)
    assert list(batch.payloads) == [canonicalize(payload) for payload in payloads]
    assert batch.payloads[0] == b'{"args":{"prices":[180,180.5],"top_p":1},"tool_name":"search"}'
    assert batch.payloads[1] == b'{"args":{"note":"version 1.0, final","ratio":"x:2.0,"},"tool_name":"search"}'


@pytest.mark.parametrize("whole_float_elsewhere", [False, True])
def test_an_integer_of_2_to_the_53_in_one_payload_is_invalid_json(whole_float_elsewhere: bool) -> None:
    events = [
        _with_payload_value(4, 1.0 if whole_float_elsewhere else 1),
        _with_payload_value(5, {"n": 2**53}),
    ]
    assert _rejected(events).code == "INVALID_JSON"


@pytest.mark.parametrize("whole_float_elsewhere", [False, True])
def test_nesting_is_bounded_at_64_levels_whatever_floats_the_batch_holds(whole_float_elsewhere: bool) -> None:
    neighbour = _with_payload_value(4, [1.0] if whole_float_elsewhere else [1])
    batch = validate_batch(json.dumps({"events": [neighbour, _with_payload_value(5, _nested_lists(60))]}), SESSION)
    assert batch.payloads[0] == b'{"args":[1],"tool_name":"search"}'
    error = _rejected([neighbour, _with_payload_value(5, _nested_lists(61))])
    assert (error.code, error.details["problem"]) == ("INVALID_JSON", "nesting deeper than 64")


_colon_texts = st.sampled_from(["", ":", "a:b", "\\u003a", "::", "x.0,"]) | st.text(max_size=8)
_payload_members = st.dictionaries(
    _colon_texts.filter(lambda name: name != "tool_name"),
    st.recursive(
        st.none() | st.integers(-9, 9) | st.just(1.0) | _colon_texts,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(_colon_texts, children, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


def _strict_problem(body: str) -> str:
    with pytest.raises(MalformedJSONError) as raised:
        loads(body)
    return str(raised.value)


def _event_text(sequence: int, payload_text: str, **fields: Any) -> str:
    envelope = json.dumps(_event(sequence, payload={}, **fields))
    return envelope.replace('"payload": {}', f'"payload": {payload_text}')


@pytest.mark.parametrize(
    "body",
    [
        # a repeated name in a payload of an otherwise valid batch
        '{"events": [' + _event_text(4, '{"tool_name": "search", "args": {"q": 1, "q": 1}}') + "]}",
        '{"events": [' + _event_text(4, '{"tool_name": "search", "tool_name": "search"}') + "]}",
        # in the envelope, with the same value twice, and with a ':' in the value the copy drops
        '{"events": ['
        + _event_text(4, '{"tool_name": "a"}').replace('"event_type"', '"event_type": "TOOL_CALL", "event_type"')
        + "]}",
        '{"events": ['
        + _event_text(4, '{"tool_name": "a"}').replace(
            '"timestamp_wall"', '"timestamp_wall": "2026-01-01T12:00:00Z", "timestamp_wall"'
        )
        + "]}",
        # a \\u003a escape elsewhere cannot hide the lost member from the count
        '{"events": [' + _event_text(4, '{"tool_name": "a", "n": "\\u003a", "x": "b:", "x": "b"}') + "]}",
        # with other problems in the batch, found later in the order of checks or earlier in the text
        '{"events": ['
        + _event_text(4, '{"tool_name": "a", "x": 1, "x": 2}')
        + ", "
        + _event_text(9, '{"tool_name": "a"}')
        + "]}",
        '{"events": [' + _event_text(4, '{"tool_name": "a", "x": 1, "x": 2}', event_hash="a" * 64) + "]}",
        '{"events": ['
        + _event_text(4, '{"tool_name": "a", "x": 1, "x": 2}')
        + ", "
        + _event_text(5, '{"n": 9007199254740992}')
        + "]}",
        '{"events": [' + _event_text(4, '{"tool_name": "a", "x": 1, "x": 2, "d": ' + "[" * 70 + "]" * 70 + "}") + "]}",
    ],
)
def test_a_repeated_member_name_is_invalid_json_named_as_the_strict_parser_names_it(body: str) -> None:
    error = _rejected(body)
    assert (error.code, error.details["problem"]) == ("INVALID_JSON", _strict_problem(body))


@pytest.mark.parametrize("text", ["a\\u003ab", "\\u003A", "x:y", "\\\\u003a"])
def test_escaped_and_literal_colons_in_a_valid_batch_keep_it_valid(text: str) -> None:
    body = '{"events": [' + _event_text(4, '{"tool_name": "' + text + '", "' + text + '": 1.0}') + "]}"
    batch = validate_batch(body, SESSION)
    assert batch.payloads == (canonicalize(loads(body)["events"][0]["payload"]),)


@settings(max_examples=200)
@given(_payload_members, st.booleans(), st.integers(0, 10))
def test_any_repeated_payload_name_is_found_and_any_other_payload_accepted(
    members: dict[str, Any], repeat: bool, position: int
) -> None:
    names = ["tool_name", *members]
    texts = [f"{json.dumps(name)}: {json.dumps(value)}" for name, value in {"tool_name": "a", **members}.items()]
    if repeat:
        texts.insert(position % (len(texts) + 1), f"{json.dumps(names[position % len(names)])}: {json.dumps('x:')}")
    body = '{"events": [' + _event_text(4, "{" + ", ".join(texts) + "}") + "]}"
    if repeat:
        error = _rejected(body)
        assert (error.code, error.details["problem"]) == ("INVALID_JSON", _strict_problem(body))
    else:
        assert validate_batch(body, SESSION).payloads == (canonicalize(loads(body)["events"][0]["payload"]),)
