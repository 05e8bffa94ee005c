"""The test builders produce chains the spec calls valid, so tamper tests start from known-good evidence."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from agentops_verify import canonicalize, event_hash, loads, payload_hash, seal_signed_bytes
from cryptography.hazmat.primitives import serialization

from tests.support.chains import build_chain, rehash_from, reseal, to_jsonl
from tests.support.keys import default_signer, keys_json, make_signer


def assert_chain_links(events: list[dict[str, Any]]) -> None:
    for position, event in enumerate(events):
        assert event["sequence_number"] == position
        assert event["payload_hash"] == payload_hash(event["payload"])
        assert event["event_hash"] == event_hash(event)
        assert event["prev_event_hash"] == (events[position - 1]["event_hash"] if position else None)


def test_built_chain_hashes_and_links_recompute() -> None:
    events = build_chain(6)
    assert_chain_links(events)
    assert events[0]["event_type"] == "SESSION_START"
    assert events[-2]["event_type"] == "SESSION_END"
    assert events[-1]["event_type"] == "CHAIN_SEAL"
    assert len({event["event_id"] for event in events}) == len(events)
    assert {event["session_id"] for event in events} == {events[0]["session_id"]}
    assert {event["chain_authority"] for event in events} == {"server"}


def test_session_start_carries_agent_id() -> None:
    assert build_chain(2)[0]["payload"]["agent_id"]


def test_signed_seal_matches_chain_and_verifies_with_its_signer() -> None:
    signer = make_signer()
    events = build_chain(4, signer=signer)
    seal = events[-1]["payload"]
    assert seal["event_count"] == 4 == events[-1]["sequence_number"]
    assert seal["final_event_hash"] == events[-2]["event_hash"]
    assert seal["session_digest"] == "sha256:" + events[-2]["event_hash"]
    assert seal["signature_algorithm"] == "ECDSA_P256_SHA256"
    assert seal["signer_key_id"] == signer.key_id
    signature = base64.b64decode(seal["signature"], validate=True)
    assert signer.verifies(seal_signed_bytes(events[0]["session_id"], events[-1]["event_id"], seal), signature)
    assert not make_signer().verifies(
        seal_signed_bytes(events[0]["session_id"], events[-1]["event_id"], seal), signature
    )


def test_signed_seal_without_signer_uses_the_shared_default_key() -> None:
    assert build_chain(3)[-1]["payload"]["signer_key_id"] == default_signer().key_id


def test_unsigned_seal_has_no_signature_fields() -> None:
    seal = build_chain(3, seal="unsigned")[-1]["payload"]
    assert set(seal) == {"ingestion_service_id", "seal_timestamp", "event_count", "final_event_hash", "session_digest"}


def test_chain_options_without_seal_or_end_and_sdk_authority() -> None:
    events = build_chain(3, end=False, seal=None, authority="sdk", session_id="6f1c1f0e-3b1a-4e59-9c1e-2f6d1c9a0b11")
    assert_chain_links(events)
    assert [event["event_type"] for event in events][-1] not in {"SESSION_END", "CHAIN_SEAL"}
    assert {event["chain_authority"] for event in events} == {"sdk"}
    assert {event["session_id"] for event in events} == {"6f1c1f0e-3b1a-4e59-9c1e-2f6d1c9a0b11"}


def test_payload_factory_supplies_ordinary_events() -> None:
    events = build_chain(4, payload_factory=lambda seq: ("TOOL_CALL", {"tool_name": f"tool-{seq}"}))
    assert [event["payload"] for event in events[1:3]] == [{"tool_name": "tool-1"}, {"tool_name": "tool-2"}]
    assert_chain_links(events)


def test_too_short_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        build_chain(1)


def test_timestamps_are_rfc3339_utc_and_increasing() -> None:
    stamps = [event["timestamp_wall"] for event in build_chain(4)]
    assert stamps == sorted(stamps)
    assert all(stamp.endswith("Z") and stamp[10] == "T" for stamp in stamps)


def test_jsonl_is_one_canonical_lf_terminated_line_per_event() -> None:
    events = build_chain(3)
    data = to_jsonl(events)
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert [loads(line) for line in lines] == events
    assert lines == [canonicalize(event) for event in events]


def test_rehash_from_makes_an_edited_chain_link_again_without_touching_the_original() -> None:
    events = build_chain(5)
    original = json.dumps(events)
    tampered = [dict(event) for event in events]
    tampered[2] = {**tampered[2], "payload": {**tampered[2]["payload"], "injected": True}}
    rehashed = rehash_from(tampered, 2)
    assert json.dumps(events) == original
    assert_chain_links(rehashed)
    assert rehashed[2]["event_hash"] != events[2]["event_hash"]
    assert rehashed[1] == events[1]
    # The seal still names the old final hash: re-hashing alone does not forge a seal.
    assert rehashed[-1]["payload"]["final_event_hash"] == events[-2]["event_hash"] != rehashed[-2]["event_hash"]


def test_reseal_with_another_key_covers_the_rehashed_chain() -> None:
    attacker = make_signer()
    events = rehash_from(build_chain(4), 1)
    forged = reseal(events, attacker)
    assert_chain_links(forged)
    seal = forged[-1]["payload"]
    assert seal["final_event_hash"] == forged[-2]["event_hash"]
    assert seal["signer_key_id"] == attacker.key_id
    signature = base64.b64decode(seal["signature"])
    assert attacker.verifies(seal_signed_bytes(forged[0]["session_id"], forged[-1]["event_id"], seal), signature)


def test_reseal_without_signer_forges_an_unsigned_seal() -> None:
    forged = reseal(build_chain(3), None)
    assert "signature" not in forged[-1]["payload"]
    assert_chain_links(forged)


def test_reseal_refuses_a_chain_without_seal() -> None:
    with pytest.raises(ValueError, match="CHAIN_SEAL"):
        reseal(build_chain(3, seal=None), None)


def test_signer_key_id_is_sha256_of_der_spki() -> None:
    signer = make_signer()
    der = serialization.load_pem_public_key(signer.public_key_pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert der == signer.spki_der
    assert signer.key_id == "sha256:" + hashlib.sha256(der).hexdigest()
    assert signer.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_keys_json_lists_every_signer_in_the_v1_keys_format() -> None:
    first, second = make_signer(), make_signer()
    document = json.loads(keys_json(first, second))
    assert [entry["signer_key_id"] for entry in document["keys"]] == [first.key_id, second.key_id]
    assert set(document["keys"][0]) == {"signer_key_id", "algorithm", "public_key_pem", "first_used_at"}
    assert document["keys"][1]["public_key_pem"] == second.public_key_pem
    assert document["keys"][0]["algorithm"] == "ECDSA_P256_SHA256"
