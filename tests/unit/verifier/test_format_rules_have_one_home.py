"""The format's shared rules, as the package exports them for the service and the SDK (issue 13): each stated once,
here checked against the text of ELS sections 1, 3, 5 and 9."""

from __future__ import annotations

import re

import agentops_verify as els
import pytest


def test_event_types_are_the_closed_set_of_section_3_in_table_order() -> None:
    assert els.EVENT_TYPES == (
        "SESSION_START",
        "SESSION_END",
        "MODEL_REQUEST",
        "MODEL_RESPONSE",
        "TOOL_CALL",
        "TOOL_RESULT",
        "AGENT_STATE_SNAPSHOT",
        "DECISION_TRACE",
        "ERROR",
        "ANNOTATION",
        "LOG_DROP",
        "CHAIN_SEAL",
    )
    assert "CHAIN_SEAL" not in els.PRODUCER_EVENT_TYPES
    assert (*els.PRODUCER_EVENT_TYPES, "CHAIN_SEAL") == els.EVENT_TYPES
    assert tuple(els.REQUIRED_PAYLOAD_KEYS) == els.EVENT_TYPES


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("6c1b0a7e-3d55-4f0e-9a41-0c2f5e8d9b10", True),
        ("6C1B0A7E-3D55-4F0E-9A41-0C2F5E8D9B10", False),
        ("6c1b0a7e3d554f0e9a410c2f5e8d9b10", False),
        ("6c1b0a7e-3d55-4f0e-9a41-0c2f5e8d9b10\n", False),
        ("{6c1b0a7e-3d55-4f0e-9a41-0c2f5e8d9b10}", False),
        (7, False),
    ],
)
def test_uuid_form_is_canonical_lowercase(value: object, canonical: bool) -> None:
    assert els.is_canonical_uuid(value) is canonical
    if isinstance(value, str):
        assert (re.fullmatch(f"^{els.UUID_PATTERN}$", value) is not None) is canonical


def test_integer_range_is_i_json() -> None:
    assert els.MAX_SAFE_INTEGER == 2**53 - 1


def test_seal_keys_are_the_summary_then_the_signature() -> None:
    assert els.SIGNED_SEAL_KEYS == els.SEAL_SUMMARY_KEYS + els.SEAL_SIGNATURE_KEYS
    assert len(els.SIGNED_SEAL_KEYS) == len(set(els.SIGNED_SEAL_KEYS)) == 8
    assert set(els.LEGACY_SEAL_KEYS) <= set(els.SEAL_SUMMARY_KEYS)
    payload = dict.fromkeys(els.SEAL_SUMMARY_KEYS, "v")
    signed = els.loads(els.seal_signed_bytes("s", "e", payload))
    assert set(signed) == {*els.SEAL_SUMMARY_KEYS, "spec_version", "session_id", "seal_event_id"}
    assert signed["spec_version"] == els.SPEC_VERSION


def test_export_members_are_those_of_section_9() -> None:
    assert set(els.EXPORT_REQUIRED_MEMBERS).isdisjoint(els.EXPORT_OPTIONAL_MEMBERS)
    assert set(els.EXPORT_METADATA_MEMBERS) < set(els.EXPORT_OPTIONAL_MEMBERS)
    assert len(els.EXPORT_VERIFICATION_KEYS) == 14
    report_keys = els.verify_lines([]).to_dict()
    assert set(els.EXPORT_VERIFICATION_KEYS) < set(report_keys)
    assert "seal_key_trusted" not in els.EXPORT_VERIFICATION_KEYS
