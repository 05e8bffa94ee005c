"""One test per attack on a stored chain (issue 2): each asserts the exact violation code, where it is reported, and
the evidence class that results. Chains are signed by the suite's test key unless the attack says otherwise."""

from __future__ import annotations

import base64
import copy

import pytest
from agentops_verify import (
    AUTHORITATIVE_EVIDENCE,
    CHAIN_BROKEN,
    DUPLICATE_EVENT_ID,
    EMPTY_LOG,
    EVENT_HASH_MISMATCH,
    INVALID_FIELD,
    INVALID_GENESIS,
    INVALID_SEAL,
    INVALID_SIGNATURE,
    LEGACY_SCHEMA_VERSION,
    MISSING_FIELD,
    MISSING_SESSION_END,
    MIXED_AUTHORITY,
    NON_AUTHORITATIVE_EVIDENCE,
    ORDER_VIOLATION,
    PARTIAL_AUTHORITATIVE_EVIDENCE,
    PAYLOAD_HASH_MISMATCH,
    SCHEMA_VERSION_MISMATCH,
    SEQUENCE_GAP,
    SESSION_MISMATCH,
    UNKNOWN_EVENT_TYPE,
    UNKNOWN_FIELD,
    UNSEALED_SESSION,
    UNSIGNED_SEAL,
    UNTRUSTED_SEAL_KEY,
    Report,
    chain_event,
)

from tests.support.chains import Event, build_chain, rehash_from, reseal
from tests.support.keys import TestSigner, default_signer
from tests.tamper.support import (
    default_trust,
    first_violation,
    jsonl_lines,
    trust_for,
    verify_chain,
    verify_raw_lines,
    with_changes,
)

SEAL = 6  # build_chain(6) puts the seal at sequence 6


def _chain() -> list[Event]:
    return build_chain(6)


def assert_fails(report: Report, code: str, sequence: int | None) -> None:
    assert report.status == "FAIL"
    assert first_violation(report) == (code, sequence)
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == ()
    assert report.replay_fingerprint is None


def test_untampered_signed_chain_is_authoritative_under_the_trusted_key() -> None:
    events = _chain()
    report = verify_chain(events, trust=default_trust())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert report.seal_signed
    assert report.seal_key_trusted
    assert report.seal_key_id == default_signer().key_id
    assert report.replay_fingerprint == events[-1]["event_hash"]
    assert report.final_event_hash == events[-1]["event_hash"]
    assert report.first_event_hash == events[0]["event_hash"]
    assert report.event_count == 7
    assert report.warnings == ()


def test_edited_payload_is_a_payload_hash_mismatch() -> None:
    events = _chain()
    events[2]["payload"]["content"] = "5"
    assert_fails(verify_chain(events, trust=default_trust()), PAYLOAD_HASH_MISMATCH, 2)


def test_event_rehashed_after_its_payload_was_edited_breaks_the_next_link() -> None:
    events = _chain()
    events[2]["payload"]["content"] = "5"
    rehashed = rehash_from(events, 2)[:3] + events[3:]
    assert_fails(verify_chain(rehashed, trust=default_trust()), CHAIN_BROKEN, 3)


def test_rewritten_suffix_no_longer_matches_the_signed_seal() -> None:
    events = _chain()
    events[2]["payload"]["content"] = "5"
    assert_fails(verify_chain(rehash_from(events, 2), trust=default_trust()), INVALID_SEAL, SEAL)


def test_rewritten_suffix_under_a_forged_unsigned_seal_is_not_authoritative() -> None:
    events = _chain()
    events[2]["payload"]["content"] = "5"
    forged = reseal(rehash_from(events, 2), signer=None)
    report = verify_chain(forged, trust=default_trust())
    assert report.passed
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == (UNSIGNED_SEAL,)
    assert not report.seal_signed


def test_seal_resigned_with_another_key_is_untrusted_not_authoritative() -> None:
    attacker = TestSigner()
    events = _chain()
    events[2]["payload"]["content"] = "5"
    forged = reseal(rehash_from(events, 2), signer=attacker)
    report = verify_chain(forged, trust=default_trust())
    assert report.passed
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == (UNTRUSTED_SEAL_KEY,)
    assert report.seal_key_id == attacker.key_id
    assert not report.seal_key_trusted


def test_seal_whose_signature_does_not_verify_under_the_trusted_key_it_names_fails() -> None:
    events = _chain()
    other_message_signature = default_signer().sign(b"not the seal")
    events[SEAL]["payload"]["signature"] = base64.b64encode(other_message_signature).decode("ascii")
    forged = rehash_from(events, SEAL)
    assert_fails(verify_chain(forged, trust=default_trust()), INVALID_SIGNATURE, SEAL)


def test_signature_with_altered_bytes_fails_under_the_trusted_key() -> None:
    events = _chain()
    signature = bytearray(base64.b64decode(events[SEAL]["payload"]["signature"]))
    signature[-1] ^= 0x01
    events[SEAL]["payload"]["signature"] = base64.b64encode(bytes(signature)).decode("ascii")
    assert_fails(verify_chain(rehash_from(events, SEAL), trust=default_trust()), INVALID_SIGNATURE, SEAL)


def test_signed_seal_is_partial_when_no_key_is_trusted() -> None:
    report = verify_chain(_chain())
    assert report.passed
    assert report.partial_reasons == (UNTRUSTED_SEAL_KEY,)
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE


def test_signed_seal_missing_a_key_is_invalid() -> None:
    events = _chain()
    del events[SEAL]["payload"]["signer_key_id"]
    assert_fails(verify_chain(rehash_from(events, SEAL), trust=default_trust()), INVALID_SEAL, SEAL)


def test_signed_seal_with_a_wrong_event_count_is_invalid() -> None:
    events = _chain()
    events[SEAL]["payload"]["event_count"] = 5
    assert_fails(verify_chain(rehash_from(events, SEAL), trust=default_trust()), INVALID_SEAL, SEAL)


def test_deleted_event_leaves_a_sequence_gap() -> None:
    events = _chain()
    del events[2]
    assert_fails(verify_chain(events, trust=default_trust()), SEQUENCE_GAP, 2)


def test_truncated_tail_before_the_seal_is_a_sequence_gap() -> None:
    events = _chain()
    truncated = events[:4] + events[SEAL:]
    assert_fails(verify_chain(truncated, trust=default_trust()), SEQUENCE_GAP, 4)


def test_truncated_tail_with_the_seal_moved_up_and_relinked_mismatches_the_seal() -> None:
    events = _chain()
    truncated = [*events[:4], dict(events[SEAL], sequence_number=4)]
    assert_fails(verify_chain(rehash_from(truncated, 4), trust=default_trust()), INVALID_SEAL, 4)


def test_truncated_tail_without_seal_and_end_is_partial() -> None:
    report = verify_chain(_chain()[:4], trust=default_trust())
    assert report.passed
    assert report.evidence_class == PARTIAL_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == (UNSEALED_SESSION, MISSING_SESSION_END)
    assert not report.complete
    assert not report.sealed


def test_swapped_events_are_a_sequence_gap() -> None:
    events = _chain()
    events[2], events[3] = events[3], events[2]
    assert_fails(verify_chain(events, trust=default_trust()), SEQUENCE_GAP, 2)


def test_duplicated_event_is_a_sequence_gap() -> None:
    events = _chain()
    events.insert(3, copy.deepcopy(events[2]))
    assert_fails(verify_chain(events, trust=default_trust()), SEQUENCE_GAP, 3)


def test_event_spliced_from_another_session_is_a_session_mismatch() -> None:
    events = _chain()
    other = build_chain(6)
    events[2] = other[2]
    assert_fails(verify_chain(events, trust=default_trust()), SESSION_MISMATCH, 2)


def test_one_event_relabelled_sdk_is_mixed_authority() -> None:
    # chain_authority is not hashed (ELS section 1), so only the authority rule catches it.
    events = with_changes(_chain(), 2, chain_authority="sdk")
    assert_fails(verify_chain(events, trust=default_trust()), MIXED_AUTHORITY, 2)


def test_local_authority_chain_is_never_more_than_non_authoritative() -> None:
    report = verify_chain(build_chain(6, authority="sdk", seal="unsigned"))
    assert report.passed
    assert report.authority == "sdk"
    assert report.evidence_class == NON_AUTHORITATIVE_EVIDENCE
    assert report.partial_reasons == ()


def test_event_after_the_seal_is_an_order_violation() -> None:
    events = _chain()
    extra = chain_event(
        event_id="0f0f0f0f-0000-4000-8000-000000000001",
        session_id=events[0]["session_id"],
        sequence_number=SEAL + 1,
        timestamp_wall="2026-01-01T13:00:00Z",
        event_type="ANNOTATION",
        payload={"annotator_id": "a", "annotation_type": "comment", "content": "late"},
        prev_event_hash=events[-1]["event_hash"],
        chain_authority="server",
    )
    assert_fails(verify_chain([*events, extra], trust=default_trust()), ORDER_VIOLATION, SEAL + 1)


def test_second_seal_is_an_order_violation() -> None:
    events = _chain()
    second = chain_event(
        event_id="0f0f0f0f-0000-4000-8000-000000000002",
        session_id=events[0]["session_id"],
        sequence_number=SEAL + 1,
        timestamp_wall="2026-01-01T13:00:00Z",
        event_type="CHAIN_SEAL",
        payload=events[SEAL]["payload"],
        prev_event_hash=events[-1]["event_hash"],
        chain_authority="server",
    )
    assert_fails(verify_chain([*events, second], trust=default_trust()), ORDER_VIOLATION, SEAL + 1)


def test_event_after_session_end_other_than_the_seal_is_an_order_violation() -> None:
    events = build_chain(6, seal=None)
    late = chain_event(
        event_id="0f0f0f0f-0000-4000-8000-000000000003",
        session_id=events[0]["session_id"],
        sequence_number=6,
        timestamp_wall="2026-01-01T13:00:00Z",
        event_type="ANNOTATION",
        payload={"annotator_id": "a", "annotation_type": "comment", "content": "late"},
        prev_event_hash=events[-1]["event_hash"],
        chain_authority="server",
    )
    assert_fails(verify_chain([*events, late]), ORDER_VIOLATION, 6)


def test_genesis_with_a_previous_hash_is_invalid() -> None:
    events = with_changes(_chain(), 0, prev_event_hash="0" * 64)
    assert_fails(verify_chain(rehash_from(events, 0), trust=default_trust()), INVALID_GENESIS, 0)


def test_missing_link_after_genesis_is_chain_broken() -> None:
    events = with_changes(_chain(), 3, prev_event_hash=None)
    assert_fails(verify_chain(events, trust=default_trust()), CHAIN_BROKEN, 3)


@pytest.mark.parametrize("raw_number", [b"true", b"1.0", b'"1"', b"1e0"])
def test_non_integer_sequence_number_is_an_invalid_field(raw_number: bytes) -> None:
    # Written into the line itself: canonicalizing a Python 1.0 would already print it as 1.
    lines = jsonl_lines(_chain())
    lines[1] = lines[1].replace(b'"sequence_number":1,', b'"sequence_number":' + raw_number + b",")
    report = verify_raw_lines(lines, trust=default_trust())
    assert_fails(report, INVALID_FIELD, 1)
    assert report.violations[0].context == {"field": "sequence_number"}


def test_unknown_event_type_fails() -> None:
    events = with_changes(_chain(), 2, event_type="SHELL_EXEC")
    assert_fails(verify_chain(rehash_from(events, 2), trust=default_trust()), UNKNOWN_EVENT_TYPE, 2)


def test_unknown_field_fails() -> None:
    report = verify_chain(with_changes(_chain(), 2, approved_by="ceo"), trust=default_trust())
    assert_fails(report, UNKNOWN_FIELD, 2)
    assert report.violations[0].context == {"field": "approved_by"}


def test_missing_field_fails() -> None:
    events = _chain()
    del events[2]["timestamp_monotonic"]
    assert_fails(verify_chain(events, trust=default_trust()), MISSING_FIELD, 2)


def test_missing_required_payload_key_fails() -> None:
    events = _chain()
    del events[3]["payload"]["tool_name"]
    report = verify_chain(rehash_from(events, 3), trust=default_trust())
    assert_fails(report, MISSING_FIELD, 3)
    assert report.violations[0].context == {"field": "payload.tool_name"}


def test_duplicate_event_id_fails() -> None:
    events = _chain()
    events[3]["event_id"] = events[2]["event_id"]
    assert_fails(verify_chain(rehash_from(events, 3), trust=default_trust()), DUPLICATE_EVENT_ID, 3)


def test_uppercase_hash_is_a_mismatch_not_an_equivalent_form() -> None:
    events = _chain()
    events[2]["payload_hash"] = events[2]["payload_hash"].upper()
    assert_fails(verify_chain(events, trust=default_trust()), PAYLOAD_HASH_MISMATCH, 2)


def test_edited_event_hash_is_an_event_hash_mismatch() -> None:
    events = with_changes(_chain(), 2, timestamp_wall="2026-01-01T12:00:02.500Z")
    assert_fails(verify_chain(events, trust=default_trust()), EVENT_HASH_MISMATCH, 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "0F076F86-63DF-44EA-9EEB-11FFD6A808BE"),
        ("timestamp_wall", "2026-01-01T12:00:02+00:00"),
        ("timestamp_monotonic", -1),
        ("chain_authority", "client"),
        ("payload", ["not", "an", "object"]),
    ],
)
def test_badly_formed_field_is_an_invalid_field(field: str, value: object) -> None:
    report = verify_chain(with_changes(_chain(), 2, **{field: value}), trust=default_trust())
    assert_fails(report, INVALID_FIELD, 2)
    assert report.violations[0].context == {"field": field}


def test_unsupported_schema_version_fails() -> None:
    report = verify_chain(with_changes(_chain(), 2, schema_ver="v0.7"), trust=default_trust())
    assert_fails(report, SCHEMA_VERSION_MISMATCH, 2)


def test_legacy_schema_version_is_only_a_warning() -> None:
    events = copy.deepcopy(_chain())
    for event in events:
        event["schema_ver"] = "v0.5"
    report = verify_chain(events, trust=default_trust())
    assert report.passed
    assert report.evidence_class == AUTHORITATIVE_EVIDENCE
    assert [warning.type for warning in report.warnings] == [LEGACY_SCHEMA_VERSION]


def test_empty_input_is_an_empty_log() -> None:
    report = verify_chain([])
    assert report.status == "FAIL"
    assert first_violation(report) == (EMPTY_LOG, None)
    assert report.event_count == 0


def test_verification_stops_at_the_first_violation_but_counts_every_event() -> None:
    events = _chain()
    events[1]["payload"]["model"] = "edited"
    events[4]["payload"]["tool_name"] = "edited too"
    report = verify_chain(events, trust=default_trust())
    assert [violation.event_sequence for violation in report.violations] == [1]
    assert report.event_count == 7


def test_seal_signed_by_an_untrusted_key_still_has_its_chain_checked() -> None:
    attacker = TestSigner()
    events = reseal(_chain(), signer=attacker)
    events[SEAL]["payload"]["final_event_hash"] = "0" * 64
    assert_fails(verify_chain(rehash_from(events, SEAL), trust=trust_for(attacker)), INVALID_SEAL, SEAL)
