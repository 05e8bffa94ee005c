"""Input that two parsers could read differently (ELS section 2), line-splitting traps, redaction, drops, clocks and
policies."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    EXCESSIVE_CUMULATIVE_DROPS,
    INVALID_DROP_COUNT,
    LEGACY_SEAL_MISMATCH,
    LOG_DROP_PRESENT,
    MALFORMED_JSON,
    NON_AUTHORITATIVE_EVIDENCE,
    PARTIAL_AUTHORITATIVE_EVIDENCE,
    PAYLOAD_HASH_MISMATCH,
    POLICY_VIOLATION,
    REDACTION_INTEGRITY,
    TIMESTAMP_ANOMALY,
    UNSIGNED_SEAL,
    ChainVerifier,
    Policy,
    verify_bytes,
    verify_stream,
)

from tests.support.chains import build_chain, rehash_from, reseal, to_jsonl
from tests.tamper.support import default_trust, first_violation, jsonl_lines, verify_chain, verify_raw_lines

TRAPPED = 2  # the event whose line carries the trap


def _with_payload_member(member: bytes) -> list[bytes]:
    """Lines of a valid signed chain, with ``member`` written first into the payload of event 2."""
    lines = jsonl_lines(build_chain(6))
    lines[TRAPPED] = lines[TRAPPED].replace(b'"payload":{', b'"payload":{' + member + b",", 1)
    return lines


@pytest.mark.parametrize(
    "member",
    [
        b'"x":NaN',
        b'"x":Infinity',
        b'"x":-Infinity',
        b'"x":1e400',
        b'"x":9007199254740992',
        b'"x":-9007199254740992',
        b'"x":1e20',
        b'"x":"\\ud800"',
        b'"x":"\\udc00 lone low"',
        b'"model":"duplicate"',
        b'"x":' + b"[" * 63 + b"]" * 63,
        b'"x":1,"x":1',
        b'"x":"\x01 raw control character"',
        b'"x":"\xff not utf-8"',
        b'"x":01',
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "overflowing-double",
        "2**53",
        "minus-2**53",
        "integral-1e20",
        "lone-high-surrogate",
        "lone-low-surrogate",
        "duplicate-key",
        "depth-65",
        "duplicate-key-same-value",
        "raw-control-character",
        "invalid-utf8",
        "leading-zero",
    ],
)
def test_non_i_json_line_is_malformed(member: bytes) -> None:
    report = verify_raw_lines(_with_payload_member(member), trust=default_trust())
    assert report.status == "FAIL"
    assert first_violation(report) == (MALFORMED_JSON, TRAPPED)
    assert report.violations[0].context == {"line": TRAPPED + 1}
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE
    assert report.event_count == 7


def test_depth_64_is_still_accepted_as_json() -> None:
    # Envelope, payload and 62 arrays: 64 levels, the most ELS section 2 allows. The payload changed, so the hash
    # no longer matches - but the line is well-formed I-JSON.
    report = verify_raw_lines(_with_payload_member(b'"x":' + b"[" * 62 + b"]" * 62), trust=default_trust())
    assert first_violation(report) == (PAYLOAD_HASH_MISMATCH, TRAPPED)


def test_largest_safe_integer_is_accepted_as_json() -> None:
    report = verify_raw_lines(_with_payload_member(b'"x":9007199254740991'), trust=default_trust())
    assert first_violation(report) == (PAYLOAD_HASH_MISMATCH, TRAPPED)


def test_escaped_surrogate_pair_is_a_character_not_a_trap() -> None:
    def payload(sequence_number: int) -> tuple[str, dict[str, object]]:
        return "ANNOTATION", {"annotator_id": "r", "annotation_type": "comment", "content": "ok \U0001f600"}

    events = build_chain(4, payload_factory=payload)
    lines = jsonl_lines(events)
    lines[1] = lines[1].replace("\U0001f600".encode(), b"\\ud83d\\ude00")
    report = verify_raw_lines(lines, trust=default_trust())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\r"], ids=repr)
def test_unicode_line_breaks_inside_strings_are_ordinary_characters(separator: str) -> None:
    def payload(sequence_number: int) -> tuple[str, dict[str, object]]:
        return "ANNOTATION", {"annotator_id": "r", "annotation_type": "comment", "content": f"a{separator}b"}

    events = build_chain(5, payload_factory=payload)
    data = to_jsonl(events)
    assert separator.encode("utf-8") in data or separator in "\x0b\x0c\r"  # C0 characters are escaped by JCS
    for report in (
        verify_bytes(data, trust=default_trust()),
        verify_stream(io.BytesIO(data), trust=default_trust()),
        verify_chain(events, trust=default_trust()),
    ):
        assert report.passed, report.to_dict()
        assert report.event_count == 6
        assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_crlf_line_endings_and_blank_lines_are_whitespace() -> None:
    events = build_chain(5)
    data = b"\r\n\r\n".join(jsonl_lines(events)) + b"\r\n  \n\t\n"
    report = verify_bytes(b"\n" + data, trust=default_trust())
    assert report.passed
    assert report.event_count == 6


def test_spacing_and_key_order_of_a_line_do_not_matter() -> None:
    # The verifier recomputes hashes from parsed values (ELS section 2): a pretty-printed, reordered line is fine.
    events = build_chain(4)
    lines = [
        json.dumps(dict(reversed(list(event.items()))), indent=None, separators=(", ", " : ")).encode()
        for event in events
    ]
    report = verify_raw_lines(lines, trust=default_trust())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_a_line_that_is_not_an_object_is_malformed() -> None:
    lines = jsonl_lines(build_chain(4))
    lines[1] = b"[1, 2, 3]"
    assert first_violation(verify_raw_lines(lines)) == (MALFORMED_JSON, 1)


def test_a_line_with_trailing_garbage_is_malformed() -> None:
    lines = jsonl_lines(build_chain(4))
    lines[1] = lines[1] + b" {}"
    assert first_violation(verify_raw_lines(lines)) == (MALFORMED_JSON, 1)


def _redacting(*, with_hash: bool) -> list[dict[str, object]]:
    def payload(sequence_number: int) -> tuple[str, dict[str, object]]:
        args: dict[str, object] = {"user": "alice", "password": "[REDACTED]"}
        if with_hash:
            args["password_hash"] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        return "TOOL_CALL", {"tool_name": "login", "args": args}

    return build_chain(4, payload_factory=payload)


def test_redaction_without_its_hash_fails() -> None:
    report = verify_chain(_redacting(with_hash=False), trust=default_trust())
    assert first_violation(report) == (REDACTION_INTEGRITY, 1)
    assert report.violations[0].context == {"path": "/args/password"}
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE


def test_redaction_with_its_sibling_hash_passes() -> None:
    report = verify_chain(_redacting(with_hash=True), trust=default_trust())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_redacted_array_element_has_no_sibling_hash_and_fails() -> None:
    def payload(sequence_number: int) -> tuple[str, dict[str, object]]:
        return "TOOL_RESULT", {"tool_name": "lookup", "result": ["visible", "[REDACTED]"]}

    report = verify_chain(build_chain(4, payload_factory=payload))
    assert first_violation(report) == (REDACTION_INTEGRITY, 1)
    assert report.violations[0].context == {"path": "/result/1"}


def _with_drops(*drops: tuple[object, object]) -> list[dict[str, object]]:
    remaining = list(drops)

    def payload(sequence_number: int) -> tuple[str, dict[str, object]]:
        if remaining:
            dropped, cumulative = remaining.pop(0)
            return "LOG_DROP", {"dropped_count": dropped, "cumulative_drops": cumulative, "drop_reason": "BUFFER_FULL"}
        return "ANNOTATION", {"annotator_id": "r", "annotation_type": "flag", "content": "x"}

    return build_chain(2 + len(drops) + 1, payload_factory=payload)


def test_log_drop_makes_the_evidence_partial_and_counts_drops() -> None:
    report = verify_chain(_with_drops((3, 3), (2, 5)), trust=default_trust())
    assert report.passed
    assert report.partial_reasons == (LOG_DROP_PRESENT,)
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report.total_drops == 5
    assert report.warnings == ()


def test_inconsistent_drop_counts_are_warnings() -> None:
    report = verify_chain(_with_drops((0, 0), (2, 1)), trust=default_trust())
    assert report.passed
    assert [(warning.type, warning.event_sequence) for warning in report.warnings] == [
        (INVALID_DROP_COUNT, 1),
        (INVALID_DROP_COUNT, 2),
    ]


def test_more_than_ten_thousand_drops_is_a_warning() -> None:
    report = verify_chain(_with_drops((10_001, 10_001)), trust=default_trust())
    assert report.passed
    assert [warning.type for warning in report.warnings] == [EXCESSIVE_CUMULATIVE_DROPS]
    assert report.total_drops == 10_001


def test_wall_clock_going_backwards_is_a_warning() -> None:
    unsealed = build_chain(5, seal=None)
    unsealed[3]["timestamp_wall"] = "2026-01-01T12:00:01.95Z"
    report = verify_chain(rehash_from(unsealed, 3))
    assert report.passed
    assert [(warning.type, warning.event_sequence) for warning in report.warnings] == [(TIMESTAMP_ANOMALY, 3)]


def test_fraction_lengths_do_not_fake_a_clock_anomaly() -> None:
    unsealed = build_chain(4, seal=None)
    unsealed[1]["timestamp_wall"] = "2026-01-01T12:00:01.5Z"
    unsealed[2]["timestamp_wall"] = "2026-01-01T12:00:01.50Z"
    unsealed[3]["timestamp_wall"] = "2026-01-01T12:00:02Z"
    assert verify_chain(rehash_from(unsealed, 1)).warnings == ()


def test_legacy_unsigned_seal_that_mismatches_is_only_a_warning() -> None:
    events = reseal(build_chain(5), signer=None)
    events[-1]["payload"]["session_digest"] = "sha256:" + "0" * 64
    report = verify_chain(rehash_from(events, len(events) - 1))
    assert report.passed
    assert report.partial_reasons == (UNSIGNED_SEAL,)
    assert [warning.type for warning in report.warnings] == [LEGACY_SEAL_MISMATCH]


def test_reject_local_authority_policy_fails_sdk_sessions() -> None:
    report = verify_chain(build_chain(4, authority="sdk", seal=None), policy=Policy(reject_local_authority=True))
    assert report.status == "FAIL"
    assert first_violation(report) == (POLICY_VIOLATION, None)
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE


def test_require_authoritative_policy_fails_partial_evidence() -> None:
    report = verify_chain(build_chain(4), policy=Policy(require_authoritative=True))  # key not trusted
    assert report.status == "FAIL"
    assert first_violation(report) == (POLICY_VIOLATION, None)
    assert "UNTRUSTED_SEAL_KEY" in report.violations[0].message


def test_require_authoritative_policy_passes_authoritative_evidence() -> None:
    report = verify_chain(build_chain(4), trust=default_trust(), policy=Policy(require_authoritative=True))
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE


def test_add_event_checks_parsed_events_without_changing_them() -> None:
    events = build_chain(5)
    snapshot = repr(events)
    verifier = ChainVerifier(default_trust())
    for event in events:
        verifier.add_event(event)
    report = verifier.finish()
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert repr(events) == snapshot


def test_add_event_refuses_values_that_are_not_i_json() -> None:
    events = build_chain(4)
    events[1]["payload"]["x"] = float("nan")
    verifier = ChainVerifier()
    for event in events:
        verifier.add_event(event)
    assert first_violation(verifier.finish()) == (MALFORMED_JSON, 1)


# Values json.loads gives (it reads NaN, Infinity and integers of any size) but I-JSON refuses, in envelope members
# other than the payload: add_event, the reader of parsed events, must fail them as MALFORMED_JSON as the line reader
# fails their text, not as an INVALID_FIELD that names a type problem.
@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("timestamp_monotonic", float("nan")),
        ("timestamp_monotonic", float("inf")),
        ("timestamp_monotonic", 2**53),
        ("sequence_number", -(2**53)),
        ("timestamp_monotonic", 1e20),
        ("authority_id", 2**64),
        ("authority_id", [float("-inf")]),
    ],
    ids=["nan", "infinity", "2**53", "minus-2**53", "integral-1e20", "2**64-authority-id", "nested-minus-infinity"],
)
def test_add_event_fails_an_envelope_number_json_loads_reads_as_the_line_reader_does(member: str, value: Any) -> None:
    events = build_chain(4)
    events[1][member] = value
    verifier = ChainVerifier()
    for event in events:
        verifier.add_event(event)
    assert first_violation(verifier.finish()) == (MALFORMED_JSON, 1)
    assert first_violation(verify_raw_lines([json.dumps(event).encode() for event in events])) == (MALFORMED_JSON, 1)


@pytest.mark.parametrize("where", ["envelope", "payload", "nested-in-payload"])
def test_add_event_fails_a_member_name_that_is_not_a_string_instead_of_crashing(where: str) -> None:
    events = build_chain(4)
    owner = {"envelope": events[1], "payload": events[1]["payload"], "nested-in-payload": events[1]["payload"]}[where]
    if where == "nested-in-payload":
        owner["messages"][0][7] = "x"
    else:
        owner[7] = "x"
    verifier = ChainVerifier()
    for event in events:
        verifier.add_event(event)
    assert first_violation(verifier.finish()) == (MALFORMED_JSON, 1)
