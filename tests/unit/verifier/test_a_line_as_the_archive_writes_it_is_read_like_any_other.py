"""A line written as the archive writes it (RFC 8785: sorted members, no whitespace) is read by its envelope's text,
and only its payload is parsed, without the hook that refuses repeated member names (``EventLineParser.read_event``).
That reading must give what the general reading gives for the same line: the same envelope, payload and payload
bytes, and on a whole session the same report. The oracle is the same line with one space after its opening brace,
which the general reading takes.

Each attack below is one the shortcut could miss if a guard were dropped: a repeated member name hidden in a payload
whose hash was taken over the value the parser keeps; member names in code-point order, which the fast writer also
writes but RFC 8785 does not; ``1.0``, which the fast writer also writes; non-ASCII text in the envelope, which moves
the payload's bytes away from its characters' positions.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from agentops_verify import (
    MALFORMED_JSON,
    PAYLOAD_HASH_MISMATCH,
    canonicalize,
    event_hash,
    payload_hash,
    verify_bytes,
)
from agentops_verify._envelope import read_envelope
from agentops_verify._eventline import EventLineParser
from agentops_verify._state import ChainState, CheckOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.chains import Event, build_chain, rehash_from
from tests.unit.verifier.test_every_reading_of_one_session_gives_one_report import _MEMBER_NAMES, _VALUES, _Writer

_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
TARGET = 2  # the event whose payload each attack rewrites


def _through_the_general_reading(line: bytes) -> bytes:
    return b"{ " + line[1:]


def _reports(lines: list[bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session's report from its lines as given, and from the same lines each with one space added."""
    as_given = verify_bytes(b"\n".join(lines)).to_dict()
    general = verify_bytes(b"\n".join(_through_the_general_reading(line) for line in lines)).to_dict()
    return as_given, general


def _lines_with_payload_text(events: list[Event], payload_text: bytes, *, hash_the_text: bool) -> list[bytes]:
    """Canonical lines of ``events`` with the payload of event ``TARGET`` written as ``payload_text``; its
    payload_hash is taken over that text when ``hash_the_text`` (an attacker's choice), else over the payload's RFC
    8785 bytes, and the chain is relinked after it."""
    events = [dict(event) for event in events]
    target = events[TARGET]
    target["payload_hash"] = (
        hashlib.sha256(payload_text).hexdigest() if hash_the_text else payload_hash(target["payload"])
    )
    target["event_hash"] = event_hash(target)
    events = rehash_from(events, TARGET + 1)
    lines = [canonicalize(event) for event in events]
    written = canonicalize(target["payload"])
    assert lines[TARGET].count(b'"payload":' + written) == 1
    lines[TARGET] = lines[TARGET].replace(b'"payload":' + written, b'"payload":' + payload_text)
    return lines


def _assert_read_as_another_spelling(events: list[Event], text: bytes) -> None:
    """``text`` is another spelling of the payload of event ``TARGET``: the session passes when its payload_hash is
    taken over RFC 8785's bytes, and fails at that event when taken over ``text``, on both readings."""
    for hash_the_text, verdict in ((False, []), (True, [(PAYLOAD_HASH_MISMATCH, TARGET)])):
        as_given, general = _reports(_lines_with_payload_text(events, text, hash_the_text=hash_the_text))
        assert as_given == general
        assert [(found["type"], found["event_sequence"]) for found in as_given["violations"]] == verdict


def _tool_call(payload: dict[str, Any]) -> list[Event]:
    return build_chain(5, payload_factory=lambda _: ("TOOL_CALL", {"tool_name": "t", **payload}))


def test_a_line_as_the_archive_writes_it_gives_the_envelope_its_parse_gives() -> None:
    parser = EventLineParser()
    state, options = ChainState(), CheckOptions()
    for index, event in enumerate(build_chain(6, seal="signed")):
        line = canonicalize(event)
        envelope, payload, payload_jcs = parser.read_event(line)
        parsed, general_jcs = parser.read_event(_through_the_general_reading(line))[1:]
        assert envelope == read_envelope(state, options, parsed, index)
        assert (payload, payload_jcs) == (event["payload"], general_jcs)
        assert payload_jcs == canonicalize(event["payload"])


def test_a_repeated_payload_member_hidden_under_a_matching_hash_is_malformed() -> None:
    events = _tool_call({"amount": 1000})
    # The parser keeps the last "amount"; a parser keeping the first one would read 1.
    text = b'{"amount":1,"amount":1000,"tool_name":"t"}'
    lines = _lines_with_payload_text(events, text, hash_the_text=False)
    as_given, general = _reports(lines)
    assert as_given == general
    assert [(found["type"], found["event_sequence"]) for found in as_given["violations"]] == [(MALFORMED_JSON, TARGET)]


def test_payload_names_out_of_order_are_hashed_in_order() -> None:
    # The same members and the same length as RFC 8785's text, in another order.
    events = _tool_call({"a": 1})
    text = b'{"tool_name":"t","a":1}'
    _assert_read_as_another_spelling(events, text)


def test_payload_names_in_code_point_order_are_not_taken_for_rfc_8785() -> None:
    # RFC 8785 sorts by UTF-16 code units: the emoji (D83D DE00) before U+E000; by code points it comes after.
    events = _tool_call({"\ue000": 1, "\U0001f600": 2})
    text = '{"tool_name":"t","\ue000":1,"\U0001f600":2}'.encode()
    assert canonicalize(events[TARGET]["payload"]) != text
    _assert_read_as_another_spelling(events, text)


@pytest.mark.parametrize(("value", "spelled"), [(1.0, b"1.0"), (1e-7, b"1e-07")], ids=["1.0", "1e-07"])
def test_floats_the_fast_writer_spells_its_own_way_are_hashed_as_rfc_8785_writes_them(
    value: float, spelled: bytes
) -> None:
    # Python writes these floats as they are spelled here; RFC 8785 writes 1 and 1e-7.
    events = _tool_call({"n": value})
    text = b'{"n":' + spelled + b',"tool_name":"t"}'
    _assert_read_as_another_spelling(events, text)


@pytest.mark.parametrize(
    "text",
    [b'{"d":' + b"[" * 64 + b"]" * 64 + b',"tool_name":"t"}', b'{"n":9007199254740992,"tool_name":"t"}'],
    ids=["nested-past-64", "integer-past-2**53"],
)
def test_a_canonical_payload_that_is_not_i_json_is_malformed(text: bytes) -> None:
    # Canonical text that the fast writer would write again as it is: only the line's own checks can refuse it.
    lines = _lines_with_payload_text(_tool_call({}), text, hash_the_text=True)
    as_given, general = _reports(lines)
    assert as_given == general
    assert [(found["type"], found["event_sequence"]) for found in as_given["violations"]] == [(MALFORMED_JSON, TARGET)]


def test_non_ascii_text_in_the_envelope_leaves_the_payload_bytes_intact() -> None:
    events = build_chain(4)
    for event in events:
        event["source_sdk_ver"] = "agentops-réplay-python/0.1.0 🙂"  # not hashed: the chain stays valid
    lines = [canonicalize(event) for event in events]
    as_given, general = _reports(lines)
    assert as_given == general
    assert as_given["violations"] == []
    assert EventLineParser().read_event(lines[1])[2] == canonicalize(events[1]["payload"])


@_SETTINGS
@given(payload=st.dictionaries(_MEMBER_NAMES, _VALUES, max_size=6), seed=st.integers(0, 2**32))
def test_any_payload_in_a_canonical_envelope_reads_as_the_general_reading_reads_it(
    payload: dict[str, Any], seed: int
) -> None:
    # The payload written every way the test writer knows (RFC 8785 half the time), inside an envelope as the
    # archive writes it.
    event = build_chain(2, payload_factory=lambda _: ("TOOL_CALL", {"tool_name": "t", "args": payload}))[1]
    text = _Writer(random.Random(seed)).write(event["payload"]).encode("utf-8")
    line = canonicalize(event).replace(b'"payload":' + canonicalize(event["payload"]), b'"payload":' + text)
    parser = EventLineParser()
    envelope, value, payload_jcs = parser.read_event(line)
    general = parser.read_event(_through_the_general_reading(line))
    assert general[0] is None
    if envelope is not None:
        assert envelope == read_envelope(ChainState(), CheckOptions(), general[1], 1)
    assert (value if envelope is not None else value["payload"]) == general[1]["payload"]
    assert payload_jcs == general[2] == canonicalize(event["payload"])
