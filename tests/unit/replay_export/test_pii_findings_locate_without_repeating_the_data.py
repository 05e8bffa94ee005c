"""The PII scan that goes into exports: what it finds, where it says it is, and that it never repeats the data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentops_server.pii import (
    API_KEY_LIKE,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    NATIONAL_ID,
    PAYMENT_CARD,
    PHONE,
    REDACTION_WITHOUT_HASH,
    detect,
    scan_event,
    scan_events,
)
from hypothesis import given, settings
from hypothesis import strategies as st

EVENT_ID = "0b9e6f38-8a39-4c8e-9a53-5d0f3f1c2a10"


def _event(payload: Any, sequence_number: int = 3, event_type: str = "TOOL_RESULT") -> dict[str, Any]:
    return {"event_id": EVENT_ID, "sequence_number": sequence_number, "event_type": event_type, "payload": payload}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+billing@example.co.uk today", EMAIL),
        ("call +44 20 7946 0958 after five", PHONE),
        ("call (415) 555-0132", PHONE),
        ("card 4111 1111 1111 1111 exp 12/29", PAYMENT_CARD),
        ("card 5500-0000-0000-0004", PAYMENT_CARD),
        ("pay to GB82 WEST 1234 5698 7654 32", IBAN),
        ("pay to DE89370400440532013000", IBAN),
        ("ssn 123-45-6789", NATIONAL_ID),
        ("from 203.0.113.7", IP_ADDRESS),
        ("from 2001:db8::8a2e:370:7334", IP_ADDRESS),
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", API_KEY_LIKE),
        ("Authorization: Bearer sk-proj-4fGh7Jk9Lm2Nq5Rs8Tv1Wx3Yz6", API_KEY_LIKE),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...", API_KEY_LIKE),
        ("token=Zx8Qw2Lp9Vb4Nm7Kj3Hg6Fd1Sa5Re0TyUi8Op2", API_KEY_LIKE),
    ],
)
def test_each_kind_of_sensitive_data_is_detected(text: str, kind: str) -> None:
    assert kind in detect(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "0000 0000 0000 0000",  # passes Luhn trivially, not a card
        "GB82 WEST 1234 5698 7654 33",  # fails mod-97
        "000-12-3456",  # SSN area 000 is never issued
        "666-12-3456",
        "912-34-5678",
        "123-00-4567",
        "123-45-0000",
        "version 999.1.2.3",  # not an IPv4 address
        "at 12:34:56 on 2026-01-01T12:00:00.000Z",  # times are not IPv6
        "5357e4c31d1b855c84c3b2c70640071d84279d20e7e1786e77ab5f1522df5a4a",  # our own hashes are not secrets
        "0b9e6f38-8a39-4c8e-9a53-5d0f3f1c2a10",  # nor are event ids
        "sha256:5357e4c31d1b855c84c3b2c70640071d84279d20e7e1786e77ab5f1522df5a4a",
        "What is 2+2? The answer is 4, said the calculator after 1000 ms.",
    ],
)
def test_ordinary_text_and_near_misses_are_not_flagged(text: str) -> None:
    assert detect(text) == ()


def test_finding_names_the_event_and_the_json_pointer_of_the_value() -> None:
    event = _event({"result": {"rows": [{"contact/email": "x", "note": "mail bob@example.org"}]}})

    assert scan_event(event) == [{"sequence_number": 3, "kind": EMAIL, "pointer": "/payload/result/rows/0/note"}]


def test_pointer_tokens_are_escaped() -> None:
    findings = scan_event(_event({"a~b/c": {"ip": "198.51.100.4"}}))

    assert [f["pointer"] for f in findings] == ["/payload/a~0b~1c/ip"]


def test_a_sensitive_key_is_reported_and_masked_in_every_pointer_through_it() -> None:
    findings = scan_event(_event({"per_user": {"alice@example.com": {"card": "4111111111111111"}, "bob": 1}}))

    assert [(f["pointer"], f["kind"]) for f in findings] == [
        ("/payload/per_user/[masked key #0]", EMAIL),
        ("/payload/per_user/[masked key #0]/card", PAYMENT_CARD),
    ]


def test_card_number_sent_as_a_json_number_is_found() -> None:
    findings = scan_event(_event({"card": 4111111111111111}))

    assert [(f["pointer"], f["kind"]) for f in findings] == [("/payload/card", PAYMENT_CARD)]


def test_redaction_without_its_hash_is_a_finding_of_its_own_kind() -> None:
    payload = {
        "email": "[REDACTED]",
        "email_hash": "a" * 64,
        "phone": "[REDACTED]",
        "notes": ["[REDACTED]"],
    }

    findings = scan_event(_event(payload))

    assert [(f["pointer"], f["kind"]) for f in findings] == [
        ("/payload/phone", REDACTION_WITHOUT_HASH),
        ("/payload/notes/0", REDACTION_WITHOUT_HASH),
    ]


def test_one_finding_per_kind_and_member_however_many_matches() -> None:
    findings = scan_event(_event({"to": "a@example.com, b@example.com, c@example.com"}))
    key_and_value = scan_event(_event({"alice@example.com": "bob@example.com"}))

    assert len(findings) == 1
    assert key_and_value == [{"sequence_number": 3, "kind": EMAIL, "pointer": "/payload/[masked key #0]"}]


def test_the_seal_is_not_scanned() -> None:
    seal = _event({"signature": "MEUCIQDx8Qw2Lp9Vb4Nm7Kj3Hg6Fd1Sa5Re0TyUi8Op2AbCdEf=="}, event_type="CHAIN_SEAL")

    assert scan_event(seal) == []


def test_findings_are_listed_in_sequence_order() -> None:
    events = [_event({"ip": "198.51.100.4"}, n) for n in (1, 2, 5)]

    assert [f["sequence_number"] for f in scan_events(events)] == [1, 2, 5]


SENSITIVE_VALUES = (
    "jane.doe@example.com",
    "+1 415 555 0132",
    "4111111111111111",
    "5500-0000-0000-0004",
    "DE89370400440532013000",
    "123-45-6789",
    "203.0.113.7",
    "2001:db8::1",
    "AKIAIOSFODNN7EXAMPLE",
    "sk-live-4fGh7Jk9Lm2Nq5Rs8Tv1Wx3Yz6",
    "-----BEGIN PRIVATE KEY-----",
)
_SENSITIVE_VALUES = st.sampled_from(SENSITIVE_VALUES)
_FILLER = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "Zs"]), max_size=12)
_PAYLOAD_TEXT = st.builds(
    lambda before, secret, after: f"{before} {secret} {after}", _FILLER, _SENSITIVE_VALUES, _FILLER
)
_PAYLOADS = st.recursive(
    st.one_of(_PAYLOAD_TEXT, st.integers(min_value=0, max_value=2**53 - 1), st.just("[REDACTED]")),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.one_of(_FILLER, _PAYLOAD_TEXT), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(payload=st.dictionaries(st.one_of(_FILLER, _PAYLOAD_TEXT), _PAYLOADS, min_size=1, max_size=4))
def test_no_finding_ever_contains_the_matched_value(payload: dict[str, Any]) -> None:
    findings = scan_event(_event(payload))
    rendered = json.dumps(findings, ensure_ascii=False)

    for sensitive in SENSITIVE_VALUES:
        assert sensitive not in rendered
    if any(sensitive in json.dumps(payload, ensure_ascii=False) for sensitive in SENSITIVE_VALUES):
        assert findings, "the payload holds sensitive data, so the scan must report it"
    for finding in findings:
        assert set(finding) == {"sequence_number", "kind", "pointer"}
