"""The tamper matrix: one row per attack on sealed evidence, with the exact verdict the verifier must give.

Each row names the attack, builds the evidence an attacker would hand an auditor (starting from the genuine
``world()`` session), and states the verdict: status, first violation and its sequence number, evidence class and
partial reasons. Rows whose verdict is PASS are attacks the chain cannot reveal on its own; the row says what the
auditor sees instead (a weaker class, or a fingerprint that differs from the one they pinned). Individual behaviour
tests live in ``tests/tamper/``; this is the exhaustive table.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from agentops_verify import VIOLATION_CODES
from agentops_verify._ecdsa import N as P256_ORDER
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.chains import Event, rehash_from, reseal
from tests.support.keys import TestSigner, keys_json
from tests.tamper.matrix.evidence import (
    AUTHORITATIVE,
    PARTIAL,
    Evidence,
    Verdict,
    document_bytes,
    edited,
    export_document,
    fails,
    join_lines,
    jsonl,
    lines_of,
    passes,
    verdict_of,
    verify,
)
from tests.tamper.matrix.log import (
    checkpoint_with_root,
    deployment_log,
    edited_proof,
    flipped_hash,
    genuine_proof,
    log_signed_by,
    receipts,
)
from tests.tamper.matrix.world import SEAL, World, event_like, world

# DER SubjectPublicKeyInfo of a P-256 key up to its point, for a compressed point (RFC 5480; 33 octets follow).
COMPRESSED_SPKI_PREFIX = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[World], Evidence]
    verdict: Verdict


def trusted(w: World, data: bytes, **options: object) -> Evidence:
    """Evidence checked by an auditor who pins the deployment's current key."""
    return Evidence(data, (w.current,), **options)  # type: ignore[arg-type]


def with_payload(events: list[Event], index: int, **changes: object) -> list[Event]:
    copied = copy.deepcopy(events)
    copied[index]["payload"].update(changes)
    return copied


def flip_base64(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def seal_edited(w: World, **changes: object) -> list[Event]:
    """The seal payload edited and its own hashes redone (what an attacker without the key can do)."""
    return rehash_from(with_payload(w.chain(), SEAL, **changes), SEAL)


def forged_rewrite(w: World) -> list[Event]:
    """Event 3's tool arguments changed and every hash after it redone."""
    return rehash_from(with_payload(w.chain(), 3, args={"expression": "2+3"}), 3)


def without(events: list[Event], *indexes: int) -> list[Event]:
    return [event for position, event in enumerate(events) if position not in indexes]


def renumbered(events: list[Event]) -> list[Event]:
    copied = copy.deepcopy(events)
    for position, event in enumerate(copied):
        event["sequence_number"] = position
    return rehash_from(copied, 0)


def foreign_seal(w: World) -> list[Event]:
    """Session B's genuine seal payload grafted onto session A, relinked and rehashed: the signature is valid."""
    chain = w.chain()
    chain[SEAL]["payload"] = copy.deepcopy(w.other[SEAL]["payload"])
    return rehash_from(chain, SEAL)


def session_moved(w: World) -> list[Event]:
    """Session B's whole sealed chain relabelled as session A and rehashed (its seal kept)."""
    moved = copy.deepcopy(w.other)
    for event in moved:
        event["session_id"] = w.sealed[0]["session_id"]
    return rehash_from(moved, 0)


def rollback(w: World) -> list[Event]:
    """An older, shorter archive version: events 0-3 sealed (idle, no SESSION_END) by the same trusted key."""
    return reseal([*copy.deepcopy(w.sealed[:4]), event_like(w.sealed[SEAL], sequence_number=4)], w.current)


def export_of(w: World, events: list[Event], *, withheld: tuple[int, ...] = ()) -> dict[str, object]:
    report = verify(trusted(w, jsonl(events)))
    return export_document(events, report, public_keys=[w.current.key_entry()], withheld=withheld)


def attacker_export(w: World) -> dict[str, object]:
    """A forged chain resealed by the attacker, exported with the attacker's key in ``public_keys``."""
    forged = reseal(forged_rewrite(w), w.attacker)
    report = verify(Evidence(jsonl(forged), (w.attacker,)))
    return export_document(forged, report, public_keys=[w.attacker.key_entry()])


def logged(w: World, data: bytes, proof: object, **options: object) -> Evidence:
    """Evidence checked by an auditor who pins the deployment's key for seals and checkpoints, gives the session's
    log proof and requires log inclusion (LOG.md section 6)."""
    return Evidence(
        data,
        (w.current,),
        log_keys=(w.current,),
        log_proof=proof,
        require_log_inclusion=True,
        **options,  # type: ignore[arg-type]
    )


def with_receipts(w: World, events: list[Event]) -> Evidence:
    """``events`` checked against the receipts the agent kept while the genuine session was recorded."""
    return Evidence(jsonl(events), (w.current,), receipts=receipts(w.sealed))


def logged_export(w: World, proof: object, *, log_keys: tuple[TestSigner, ...]) -> Evidence:
    """An export carrying ``proof`` as its ``log_proof``, checked with log inclusion required."""
    report = verify(trusted(w, jsonl(w.sealed)))
    document = export_document(w.sealed, report, public_keys=[w.current.key_entry()], log_proof=proof)  # type: ignore[arg-type]
    return Evidence(
        document_bytes(document), pinned_ids=(w.current.key_id,), log_keys=log_keys, require_log_inclusion=True
    )


def edited_export(w: World, edit: Callable[[dict[str, object]], None], withheld: tuple[int, ...] = ()) -> Evidence:
    document = export_of(w, w.chain(), withheld=withheld)
    edit(document)
    return Evidence(document_bytes(document), pinned_ids=(w.current.key_id,))


def set_path(document: dict[str, object], path: str, value: object) -> None:
    node: object = document
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]


def seal_envelope_edited(w: World, **changes: object) -> list[Event]:
    """The seal event's envelope edited and its hashes redone; the signed payload kept (ELS rev 2 findings)."""
    return rehash_from(edited(w.chain(), SEAL, **changes), SEAL)


def high_s_twin(w: World) -> list[Event]:
    """The seal's signature replaced by its twin (r, n - s), which plain ECDSA also accepts, and the seal rehashed."""
    chain = w.chain()
    r, s = decode_dss_signature(base64.b64decode(chain[SEAL]["payload"]["signature"]))
    twin = encode_dss_signature(r, P256_ORDER - s)
    chain[SEAL]["payload"]["signature"] = base64.b64encode(twin).decode("ascii")
    return rehash_from(chain, SEAL)


def compressed_key_entry(signer: TestSigner) -> dict[str, str]:
    """``signer``'s key with its point compressed: the same key, other bytes, so a second fingerprint."""
    der = COMPRESSED_SPKI_PREFIX + signer.public_key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode("ascii") + "\n-----END PUBLIC KEY-----\n"
    return {
        "signer_key_id": "sha256:" + hashlib.sha256(der).hexdigest(),
        "algorithm": "ECDSA_P256_SHA256",
        "public_key_pem": pem,
    }


ATTACKS: list[Attack] = [
    # --- baselines: genuine evidence -------------------------------------------------------------------------
    Attack("genuine_sealed_session", lambda w: trusted(w, jsonl(w.sealed)), passes(AUTHORITATIVE)),
    Attack(
        "genuine_session_with_log_drop",
        lambda w: trusted(w, jsonl(w.with_log_drop)),
        passes(PARTIAL, "LOG_DROP_PRESENT"),
    ),
    # --- editing content -------------------------------------------------------------------------------------
    Attack(
        "payload_edited",
        lambda w: trusted(w, jsonl(with_payload(w.chain(), 3, tool_name="rm"))),
        fails("PAYLOAD_HASH_MISMATCH", 3),
    ),
    Attack(
        "payload_edited_and_payload_hash_redone",
        lambda w: trusted(w, jsonl(rehash_from(with_payload(w.chain(), 3, tool_name="rm"), 3)[:4] + w.chain()[4:])),
        fails("CHAIN_BROKEN", 4),
    ),
    Attack(
        "payload_hash_redone_but_not_event_hash",
        lambda w: trusted(
            w,
            jsonl(
                edited(
                    with_payload(w.chain(), 3, tool_name="rm"),
                    3,
                    payload_hash=rehash_from(with_payload(w.chain(), 3, tool_name="rm"), 3)[3]["payload_hash"],
                )
            ),
        ),
        fails("EVENT_HASH_MISMATCH", 3),
    ),
    Attack(
        "payload_edited_whole_chain_rehashed_seal_kept",
        lambda w: trusted(w, jsonl(forged_rewrite(w))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "payload_edited_rehashed_and_resealed_with_attacker_key",
        lambda w: trusted(w, jsonl(reseal(forged_rewrite(w), w.attacker))),
        passes(PARTIAL, "UNTRUSTED_SEAL_KEY"),
    ),
    Attack(
        "payload_edited_rehashed_and_resealed_unsigned",
        lambda w: trusted(w, jsonl(reseal(forged_rewrite(w), None))),
        passes(PARTIAL, "UNSIGNED_SEAL"),
    ),
    Attack(
        "payload_edited_rehashed_and_seal_dropped",
        lambda w: trusted(w, jsonl(forged_rewrite(w)[:SEAL])),
        passes(PARTIAL, "UNSEALED_SESSION"),
    ),
    Attack(
        "attacker_signature_claiming_the_trusted_key_id",
        lambda w: trusted(
            w,
            jsonl(
                rehash_from(
                    with_payload(reseal(forged_rewrite(w), w.attacker), SEAL, signer_key_id=w.current.key_id), SEAL
                )
            ),
        ),
        fails("INVALID_SIGNATURE", SEAL),
    ),
    Attack(
        "hashed_timestamp_edited",
        lambda w: trusted(w, jsonl(edited(w.chain(), 2, timestamp_wall="2026-01-01T11:00:00.000Z"))),
        fails("EVENT_HASH_MISMATCH", 2),
    ),
    Attack(
        "event_type_changed",
        lambda w: trusted(w, jsonl(edited(w.chain(), 5, event_type="ANNOTATION"))),
        fails("EVENT_HASH_MISMATCH", 5),
    ),
    Attack(
        "event_hash_in_upper_case",
        lambda w: trusted(w, jsonl(edited(w.chain(), 2, event_hash=w.sealed[2]["event_hash"].upper()))),
        fails("EVENT_HASH_MISMATCH", 2),
    ),
    Attack(
        "payload_hash_in_upper_case",
        lambda w: trusted(w, jsonl(edited(w.chain(), 2, payload_hash=w.sealed[2]["payload_hash"].upper()))),
        fails("PAYLOAD_HASH_MISMATCH", 2),
    ),
    # --- removing, adding, reordering ------------------------------------------------------------------------
    Attack("event_deleted", lambda w: trusted(w, jsonl(without(w.chain(), 3))), fails("SEQUENCE_GAP", 3)),
    Attack(
        "event_deleted_and_renumbered",
        lambda w: trusted(w, jsonl(renumbered(without(w.chain(), 3)))),
        fails("INVALID_SEAL", SEAL - 1),
    ),
    Attack(
        "events_swapped",
        lambda w: trusted(w, jsonl([*w.chain()[:2], w.sealed[3], w.sealed[2], *w.chain()[4:]])),
        fails("SEQUENCE_GAP", 2),
    ),
    Attack(
        "events_swapped_and_sequence_numbers_swapped_back",
        lambda w: trusted(
            w,
            jsonl(
                [
                    *w.chain()[:2],
                    event_like(w.sealed[3], sequence_number=2),
                    event_like(w.sealed[2], sequence_number=3),
                    *w.chain()[4:],
                ]
            ),
        ),
        fails("CHAIN_BROKEN", 2),
    ),
    Attack(
        "event_duplicated",
        lambda w: trusted(w, jsonl([*w.chain()[:3], w.sealed[2], *w.chain()[3:]])),
        fails("SEQUENCE_GAP", 3),
    ),
    Attack(
        "event_replayed_with_its_id_and_rehashed",
        lambda w: trusted(w, jsonl(edited(rehash_from(edited(w.chain(), 3, event_id=w.sealed[2]["event_id"]), 3), 3))),
        fails("DUPLICATE_EVENT_ID", 3),
    ),
    Attack(
        "forged_event_inserted",
        lambda w: trusted(w, jsonl([*w.chain()[:3], _forged_third(w), *w.chain()[3:]])),
        fails("SEQUENCE_GAP", 4),
    ),
    Attack(
        "forged_event_inserted_and_the_rest_renumbered",
        lambda w: trusted(w, jsonl(renumbered([*w.chain()[:3], _forged_third(w), *w.chain()[3:]]))),
        fails("INVALID_SEAL", SEAL + 1),
    ),
    Attack(
        "event_appended_after_the_seal",
        lambda w: trusted(
            w,
            jsonl(
                [
                    *w.chain(),
                    event_like(
                        w.sealed[3],
                        event_id=w.other[3]["event_id"],
                        sequence_number=SEAL + 1,
                        prev_event_hash=w.sealed[SEAL]["event_hash"],
                    ),
                ]
            ),
        ),
        fails("ORDER_VIOLATION", SEAL + 1),
    ),
    Attack(
        "event_appended_after_an_idle_seal",
        lambda w: trusted(w, jsonl(_event_after_idle_seal(w))),
        fails("ORDER_VIOLATION", 5),
    ),
    Attack(
        "second_seal_appended_after_an_idle_seal",
        lambda w: trusted(w, jsonl(_resealed_twice(w))),
        fails("ORDER_VIOLATION", 5),
    ),
    Attack(
        "log_drop_removed_to_upgrade_the_class",
        lambda w: trusted(w, jsonl(without(copy.deepcopy(w.with_log_drop), 3))),
        fails("SEQUENCE_GAP", 3),
    ),
    Attack(
        "session_end_removed",
        lambda w: trusted(w, jsonl(without(w.chain(), SEAL - 1))),
        fails("SEQUENCE_GAP", SEAL - 1),
    ),
    # --- truncation: the chain alone cannot tell, the class does --------------------------------------------
    Attack("seal_truncated", lambda w: trusted(w, jsonl(w.chain()[:SEAL])), passes(PARTIAL, "UNSEALED_SESSION")),
    Attack(
        "tail_truncated",
        lambda w: trusted(w, jsonl(w.chain()[:4])),
        passes(PARTIAL, "UNSEALED_SESSION", "MISSING_SESSION_END"),
    ),
    Attack("everything_truncated", lambda w: trusted(w, b""), fails("EMPTY_LOG", None)),
    Attack(
        "last_line_cut_mid_json",
        lambda w: trusted(w, join_lines(lines_of(w.sealed))[:-40]),
        fails("MALFORMED_JSON", SEAL),
    ),
    # --- the seal ------------------------------------------------------------------------------------------
    Attack(
        "seal_event_count_edited",
        lambda w: trusted(w, jsonl(seal_edited(w, event_count=6))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_final_event_hash_edited",
        lambda w: trusted(w, jsonl(seal_edited(w, final_event_hash=w.sealed[5]["event_hash"]))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_session_digest_edited",
        lambda w: trusted(w, jsonl(seal_edited(w, session_digest="sha256:" + "0" * 64))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_signature_bit_flipped",
        lambda w: trusted(w, jsonl(seal_edited(w, signature=flip_base64(w.sealed[SEAL]["payload"]["signature"])))),
        fails("INVALID_SIGNATURE", SEAL),
    ),
    Attack(
        "seal_signature_not_base64",
        lambda w: trusted(w, jsonl(seal_edited(w, signature="not base64!"))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_algorithm_downgraded",
        lambda w: trusted(w, jsonl(seal_edited(w, signature_algorithm="NONE"))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        # ELS rev 2: the seal event's timestamp_wall must equal seal_timestamp, checked before the signature.
        "seal_timestamp_edited",
        lambda w: trusted(w, jsonl(seal_edited(w, seal_timestamp="2030-01-01T00:00:00Z"))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_service_id_edited",
        lambda w: trusted(w, jsonl(seal_edited(w, ingestion_service_id="someone-else"))),
        fails("INVALID_SIGNATURE", SEAL),
    ),
    Attack(
        "seal_signature_removed",
        lambda w: trusted(
            w,
            jsonl(
                rehash_from(
                    [
                        *w.chain()[:SEAL],
                        {
                            **w.chain()[SEAL],
                            "payload": {k: v for k, v in w.sealed[SEAL]["payload"].items() if k not in {"signature"}},
                        },
                    ],
                    SEAL,
                )
            ),
        ),
        passes(PARTIAL, "UNSIGNED_SEAL"),
    ),
    # ELS rev 2: one sealed form per session. Each of these kept the signature valid and changed the fingerprint.
    Attack(
        "seal_with_extra_payload_key_approved_by",
        lambda w: trusted(w, jsonl(seal_edited(w, approved_by="Chief Compliance Officer"))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_event_id_changed_and_rehashed",
        lambda w: trusted(w, jsonl(seal_envelope_edited(w, event_id=w.other[SEAL]["event_id"]))),
        fails("INVALID_SIGNATURE", SEAL),
    ),
    Attack(
        "seal_event_timestamp_wall_changed_and_rehashed",
        lambda w: trusted(w, jsonl(seal_envelope_edited(w, timestamp_wall="2026-01-01T12:00:07.500Z"))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "seal_signature_replaced_by_its_high_s_twin",
        lambda w: trusted(w, jsonl(high_s_twin(w))),
        fails("INVALID_SIGNATURE", SEAL),
    ),
    Attack(
        # No key given: the high-s form verifies under no key, so it needs none to be refused.
        "seal_signature_replaced_by_its_high_s_twin_checked_without_the_key",
        lambda w: Evidence(jsonl(high_s_twin(w))),
        fails("INVALID_SIGNATURE", SEAL),
    ),
    Attack(
        "seal_over_another_sessions_digest",
        lambda w: trusted(w, jsonl(foreign_seal(w))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "another_sessions_sealed_chain_relabelled",
        lambda w: trusted(w, jsonl(session_moved(w))),
        fails("INVALID_SEAL", SEAL),
    ),
    Attack(
        "resigned_with_a_rotated_out_key_trusting_only_the_current_key",
        lambda w: trusted(w, jsonl(reseal(forged_rewrite(w), w.rotated_out))),
        passes(PARTIAL, "UNTRUSTED_SEAL_KEY"),
    ),
    Attack(
        "genuine_seal_by_rotated_out_key_with_both_keys_trusted",
        lambda w: Evidence(jsonl(w.sealed_by_rotated_out), (w.current, w.rotated_out)),
        passes(AUTHORITATIVE),
    ),
    Attack(
        "rollback_to_an_older_shorter_validly_sealed_version",
        lambda w: trusted(w, jsonl(rollback(w))),
        passes(PARTIAL, "MISSING_SESSION_END"),
    ),
    # --- envelope and format --------------------------------------------------------------------------------
    Attack(
        "session_id_of_one_event_changed",
        lambda w: trusted(w, jsonl(edited(w.chain(), 4, session_id=w.other[0]["session_id"]))),
        fails("SESSION_MISMATCH", 4),
    ),
    Attack(
        "authority_of_one_event_changed",
        lambda w: trusted(w, jsonl(edited(w.chain(), 4, chain_authority="sdk"))),
        fails("MIXED_AUTHORITY", 4),
    ),
    Attack(
        "sdk_chain_relabelled_server_with_unsigned_seal",
        lambda w: trusted(
            w, jsonl(reseal([*[{**e, "chain_authority": "server"} for e in w.unsealed_sdk], _seal_slot(w)], None))
        ),
        passes(PARTIAL, "UNSIGNED_SEAL"),
    ),
    Attack(
        "sdk_chain_under_reject_local_authority",
        lambda w: trusted(w, jsonl(w.unsealed_sdk), reject_local_authority=True),
        fails("POLICY_VIOLATION", None),
    ),
    Attack(
        "truncated_chain_under_require_authoritative",
        lambda w: trusted(w, jsonl(w.chain()[:SEAL]), require_authoritative=True),
        fails("POLICY_VIOLATION", None),
    ),
    Attack(
        "genesis_link_forged",
        lambda w: trusted(w, jsonl(rehash_from(edited(w.chain(), 0, prev_event_hash="0" * 64), 0))),
        fails("INVALID_GENESIS", 0),
    ),
    Attack(
        "first_event_is_not_session_start",
        lambda w: trusted(
            w, jsonl(rehash_from(edited(w.chain(), 0, event_type="MODEL_REQUEST", payload={"model": "m"}), 0))
        ),
        fails("ORDER_VIOLATION", 0),
    ),
    Attack(
        "event_moved_after_session_end",
        lambda w: trusted(
            w,
            jsonl(renumbered([*w.chain()[:3], *w.chain()[4:SEAL], w.sealed[3]])),
        ),
        fails("ORDER_VIOLATION", SEAL - 1),
    ),
    Attack(
        "unknown_event_type",
        lambda w: trusted(w, jsonl(rehash_from(edited(w.chain(), 3, event_type="SHELL_EXEC"), 3))),
        fails("UNKNOWN_EVENT_TYPE", 3),
    ),
    Attack(
        "required_payload_key_removed_and_rehashed",
        lambda w: trusted(
            w,
            jsonl(rehash_from(edited(w.chain(), 3, payload={"args": {"expression": "2+2"}}), 3)),
        ),
        fails("MISSING_FIELD", 3),
    ),
    Attack(
        "redacted_value_without_its_hash",
        lambda w: trusted(w, jsonl(rehash_from(with_payload(w.chain(), 3, args="[REDACTED]"), 3))),
        fails("REDACTION_INTEGRITY", 3),
    ),
    Attack(
        "schema_version_changed",
        lambda w: trusted(w, jsonl(edited(w.chain(), 3, schema_ver="v9"))),
        fails("SCHEMA_VERSION_MISMATCH", 3),
    ),
    Attack(
        "unknown_field_added",
        lambda w: trusted(w, jsonl(edited(w.chain(), 3, approved_by="ceo"))),
        fails("UNKNOWN_FIELD", 3),
    ),
    Attack(
        "envelope_field_removed",
        lambda w: trusted(w, jsonl([*w.chain()[:3], _without_field(w.sealed[3], "timestamp_monotonic")])),
        fails("MISSING_FIELD", 3),
    ),
    Attack(
        "sequence_number_as_float",
        lambda w: trusted(
            w,
            join_lines(
                [*lines_of(w.sealed[:3]), _line_with(w.sealed[3], b'"sequence_number":3', b'"sequence_number":3.0')]
            ),
        ),
        fails("INVALID_FIELD", 3),
    ),
    Attack(
        "withheld_mark_outside_an_export",
        lambda w: trusted(
            w, jsonl([*w.chain()[:3], {**_without_field(w.sealed[3], "payload"), "payload_withheld": True}])
        ),
        fails("UNKNOWN_FIELD", 3),
    ),
    Attack(
        "duplicate_key_smuggling_a_second_payload",
        lambda w: trusted(
            w,
            join_lines([*lines_of(w.sealed[:3]), lines_of(w.sealed[3:4])[0][:-1] + b',"payload":{"tool_name":"rm"}}']),
        ),
        fails("MALFORMED_JSON", 3),
    ),
    Attack(
        "nan_in_payload",
        lambda w: trusted(
            w, join_lines([*lines_of(w.sealed[:3]), _line_with(w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":NaN')])
        ),
        fails("MALFORMED_JSON", 3),
    ),
    Attack(
        "integer_beyond_i_json_range",
        lambda w: trusted(
            w,
            join_lines(
                [*lines_of(w.sealed[:3]), _line_with(w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":9007199254740993')]
            ),
        ),
        fails("MALFORMED_JSON", 3),
    ),
    Attack(
        "lone_surrogate_in_payload",
        lambda w: trusted(
            w,
            join_lines(
                [*lines_of(w.sealed[:3]), _line_with(w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":"\\ud800"')]
            ),
        ),
        fails("MALFORMED_JSON", 3),
    ),
    Attack(
        "payload_nested_65_deep",
        lambda w: trusted(
            w,
            join_lines(
                [
                    *lines_of(w.sealed[:3]),
                    _line_with(w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":' + b"[" * 64 + b"]" * 64),
                ]
            ),
        ),
        fails("MALFORMED_JSON", 3),
    ),
    Attack(
        # An escaped surrogate pair sends the strict loader down its other (string-checking) walk.
        "payload_nested_65_deep_around_an_escaped_emoji",
        lambda w: trusted(
            w,
            join_lines(
                [
                    *lines_of(w.sealed[:3]),
                    _line_with(
                        w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":' + b"[" * 64 + b'"\\ud83d\\ude00"' + b"]" * 64
                    ),
                ]
            ),
        ),
        fails("MALFORMED_JSON", 3),
    ),
    Attack(
        # One JSON document: too deep to read at all, so the whole input is malformed, at no one event.
        "payload_nested_65_deep_in_a_json_array",
        lambda w: trusted(
            w,
            b"["
            + b",".join(
                [
                    *lines_of(w.sealed[:3]),
                    _line_with(w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":' + b'{"a":' * 64 + b"1" + b"}" * 64),
                ]
            )
            + b"]",
        ),
        fails("MALFORMED_JSON", None),
    ),
    Attack(
        "surrogate_pair_reversed_in_payload",
        lambda w: trusted(
            w,
            join_lines(
                [*lines_of(w.sealed[:3]), _line_with(w.sealed[3], b'"tool_id":"call-1"', b'"tool_id":"\\uDE00\\uD83D"')]
            ),
        ),
        fails("MALFORMED_JSON", 3),
    ),
    # --- fields outside the hashes: the verifier cannot see these edits, and says nothing else ------------
    # --- input that is not what it claims to be (ELS rev 2) ---------------------------------------------------
    Attack(
        "key_set_given_as_evidence",
        lambda w: trusted(w, keys_json(w.current)),
        fails("LOAD_ERROR", None),
    ),
    Attack(
        "json_array_of_events_with_text_after_it",
        lambda w: trusted(w, b"[" + b",".join(lines_of(w.sealed)) + b"]\n{}\n"),
        fails("MALFORMED_JSON", None),
    ),
    Attack(
        "unhashed_monotonic_time_and_sdk_version_edited",
        lambda w: trusted(w, jsonl(edited(w.chain(), 3, timestamp_monotonic=1, source_sdk_ver="forged/9"))),
        passes(AUTHORITATIVE),
    ),
    # --- export documents (ELS section 9) ------------------------------------------------------------------
    Attack(
        "genuine_export_with_pinned_key",
        lambda w: edited_export(w, lambda d: None),
        passes(AUTHORITATIVE),
    ),
    Attack(
        "export_stated_class_upgraded",
        lambda w: Evidence(
            document_bytes({**export_of(w, w.chain()[:SEAL]), "evidence_class": AUTHORITATIVE}),
            pinned_ids=(w.current.key_id,),
        ),
        fails("EXPORT_CLAIM_MISMATCH", None),
    ),
    Attack(
        "export_report_edited",
        lambda w: edited_export(w, lambda d: set_path(d, "verification.event_count", 99)),
        fails("EXPORT_CLAIM_MISMATCH", None),
    ),
    Attack(
        "export_report_fingerprint_edited",
        lambda w: edited_export(w, lambda d: set_path(d, "verification.replay_fingerprint", "0" * 64)),
        fails("EXPORT_CLAIM_MISMATCH", None),
    ),
    Attack(
        "export_seal_summary_edited",
        lambda w: edited_export(w, lambda d: set_path(d, "seal.seal_timestamp", "2030-01-01T00:00:00Z")),
        fails("EXPORT_CLAIM_MISMATCH", None),
    ),
    Attack(
        "genuine_selective_export",
        lambda w: edited_export(w, lambda d: None, withheld=(2, 3)),
        passes(AUTHORITATIVE),
    ),
    Attack(
        "selective_export_withheld_event_timestamp_altered",
        lambda w: edited_export(
            w, lambda d: set_path(d, "events.3.timestamp_wall", "2026-01-01T12:00:03.500Z"), withheld=(2, 3)
        ),
        fails("EVENT_HASH_MISMATCH", 3),
    ),
    Attack(
        "selective_export_withheld_payload_hash_swapped",
        lambda w: edited_export(
            w, lambda d: set_path(d, "events.3.payload_hash", w.sealed[4]["payload_hash"]), withheld=(2, 3)
        ),
        fails("EVENT_HASH_MISMATCH", 3),
    ),
    Attack(
        "selective_export_withheld_event_given_a_payload",
        lambda w: edited_export(w, lambda d: set_path(d, "events.3.payload", {"tool_name": "rm"}), withheld=(2, 3)),
        fails("INVALID_FIELD", 3),
    ),
    Attack(
        "export_signed_by_attacker_key_listed_in_the_document",
        lambda w: Evidence(document_bytes(attacker_export(w)), pinned_ids=(w.current.key_id,)),
        passes(PARTIAL, "UNTRUSTED_SEAL_KEY"),
    ),
    # ELS rev 2: every member of an export document checked.
    Attack(
        "export_with_text_after_it",
        lambda w: Evidence(
            document_bytes(export_of(w, w.chain())) + b"\nApproved by the Chief Compliance Officer\n",
            pinned_ids=(w.current.key_id,),
        ),
        fails("MALFORMED_JSON", None),
    ),
    Attack(
        "export_verification_claiming_seal_key_trusted",
        lambda w: edited_export(w, lambda d: set_path(d, "verification.seal_key_trusted", True)),
        fails("UNKNOWN_FIELD", None),
    ),
    Attack(
        "export_with_an_extra_member",
        lambda w: edited_export(w, lambda d: set_path(d, "approved_by", "Chief Compliance Officer")),
        fails("UNKNOWN_FIELD", None),
    ),
    Attack(
        # Not evidence: the verdict cannot change, and the report repeats the value as unverified metadata.
        "export_generated_at_and_pii_findings_edited",
        lambda w: edited_export(w, lambda d: d.update(generated_at="2030-01-01T00:00:00Z", pii_findings=[])),
        passes(AUTHORITATIVE),
    ),
    Attack(
        "export_listing_its_key_with_a_compressed_point",
        lambda w: edited_export(w, lambda d: set_path(d, "public_keys", [compressed_key_entry(w.current)])),
        fails("INVALID_FIELD", None),
    ),
    Attack(
        "export_listing_attacker_key_under_the_trusted_key_id",
        lambda w: edited_export(
            w,
            lambda d: set_path(d, "public_keys", [{**w.attacker.key_entry(), "signer_key_id": w.current.key_id}]),
        ),
        fails("INVALID_FIELD", None),  # ELS rev 2: a public_keys entry whose id is not its key's fingerprint
    ),
    # --- the evidence log (LOG.md section 6): a log proof checked after the chain --------------------------------
    Attack(
        "genuine_session_with_its_log_proof",
        lambda w: logged(w, jsonl(w.sealed), genuine_proof()),
        passes(AUTHORITATIVE),
    ),
    Attack(
        "log_proof_leaf_edited_to_another_event_count",
        lambda w: logged(w, jsonl(w.sealed), edited_proof("leaf.event_count", SEAL + 2)),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "log_proof_inclusion_hash_edited",
        lambda w: logged(
            w, jsonl(w.sealed), edited_proof("inclusion_proof.0", flipped_hash(genuine_proof()["inclusion_proof"][0]))
        ),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "log_proof_checkpoint_root_edited_signature_kept",
        lambda w: logged(
            w,
            jsonl(w.sealed),
            edited_proof("checkpoint", checkpoint_with_root(genuine_proof()["checkpoint"], bytes(32))),
        ),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "log_of_the_same_sessions_signed_by_an_unpinned_key",
        lambda w: logged(w, jsonl(w.sealed), log_signed_by(w, w.attacker).proof(1)),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "log_proof_of_another_session",
        lambda w: logged(w, jsonl(w.sealed), deployment_log().proof(0)),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        # A validly sealed older version of the session: the seal cannot tell, the log's leaf can.
        "rollback_to_an_earlier_sealed_version_with_the_genuine_log_proof",
        lambda w: logged(w, jsonl(rollback(w)), genuine_proof()),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "logged_archive_with_a_byte_added",
        lambda w: logged(w, jsonl(w.sealed) + b"\n", genuine_proof()),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "sealed_session_without_a_log_proof_under_require_log_inclusion",
        lambda w: logged(w, jsonl(w.sealed), None),
        fails("POLICY_VIOLATION", None),
    ),
    Attack(
        "export_with_its_log_proof",
        lambda w: logged_export(w, genuine_proof(), log_keys=(w.current,)),
        passes(AUTHORITATIVE),
    ),
    Attack(
        "export_log_proof_leaf_edited",
        lambda w: logged_export(
            w, edited_proof("leaf.seal_timestamp", "2026-01-01T13:00:00.000Z"), log_keys=(w.current,)
        ),
        fails("LOG_PROOF_INVALID", None),
    ),
    Attack(
        "export_log_proof_without_a_log_key_under_require_log_inclusion",
        lambda w: logged_export(w, genuine_proof(), log_keys=()),
        fails("POLICY_VIOLATION", None),
    ),
    # --- receipts (LOG.md section 7): what the service acknowledged against what it sealed -------------------------
    Attack("genuine_session_with_its_receipts", lambda w: with_receipts(w, w.chain()), passes(AUTHORITATIVE)),
    Attack(
        # The service (or whoever can write its table) rewrites an acknowledged event, rechains and seals.
        "acknowledged_event_changed_rechained_and_sealed_by_the_service",
        lambda w: with_receipts(w, reseal(forged_rewrite(w), w.current)),
        fails("RECEIPT_MISMATCH", 3),
    ),
    Attack(
        "acknowledged_events_cut_off_before_sealing",
        lambda w: with_receipts(w, rollback(w)),
        fails("RECEIPT_MISMATCH", 4),
    ),
]


def _seal_slot(w: World) -> Event:
    """A placeholder CHAIN_SEAL event after the last event of ``w.unsealed_sdk`` (``reseal`` fills it in)."""
    last = w.unsealed_sdk[-1]
    return event_like(
        w.sealed[SEAL],
        session_id=last["session_id"],
        sequence_number=len(w.unsealed_sdk),
        prev_event_hash=last["event_hash"],
        chain_authority="server",
    )


def _after(last: Event, template: Event, event_id: str) -> Event:
    """``template`` re-hashed as the event right after ``last``."""
    return event_like(
        template, event_id=event_id, sequence_number=last["sequence_number"] + 1, prev_event_hash=last["event_hash"]
    )


def _event_after_idle_seal(w: World) -> list[Event]:
    """An idle-sealed chain (no SESSION_END, so only the seal rule applies) with one more event linked after it."""
    sealed = rollback(w)
    return [*sealed, _after(sealed[-1], w.sealed[3], w.other[3]["event_id"])]


def _resealed_twice(w: World) -> list[Event]:
    """An idle-sealed chain (no SESSION_END) followed by a second seal over it, signed by the trusted key."""
    first = rollback(w)
    return reseal([*first, _after(first[-1], first[-1], w.other[SEAL]["event_id"])], w.current)


def _forged_third(w: World) -> Event:
    """A well-formed, correctly hashed event at sequence 3 linking to the genuine event 2."""
    return event_like(w.sealed[3], event_id=w.other[3]["event_id"], payload={"tool_name": "wire_transfer"})


def _without_field(event: Event, name: str) -> Event:
    return {key: value for key, value in event.items() if key != name}


def _line_with(event: Event, old: bytes, new: bytes) -> bytes:
    (line,) = lines_of([event])
    assert old in line
    return line.replace(old, new, 1)


def test_matrix_has_at_least_forty_distinct_attacks() -> None:
    names = [attack.name for attack in ATTACKS]
    assert len(names) == len(set(names))
    assert len([a for a in ATTACKS if not a.name.startswith("genuine_")]) >= 40


def test_matrix_covers_every_violation_code_of_els_section_7() -> None:
    covered = {attack.verdict.first_violation for attack in ATTACKS}
    # LOAD_ERROR is also reached by unreadable key or input files through the CLI.
    assert VIOLATION_CODES - covered == set()


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.name)
def test_attack_gets_its_exact_verdict(attack: Attack) -> None:
    evidence = attack.build(world())
    assert verdict_of(verify(evidence)) == attack.verdict


__all__ = ["ATTACKS", "Attack", "replace"]


def test_rollback_passes_alone_and_is_caught_only_against_the_pinned_expectations() -> None:
    """A shorter chain that was itself validly sealed verifies: the chain cannot know a longer one exists. What the
    auditor pinned from the session head or the archive reference (event count, final hash) exposes it."""
    w = world()
    pinned = verify(Evidence(jsonl(w.sealed), (w.current,)))
    older = verify(Evidence(jsonl(rollback(w)), (w.current,)))
    assert older.passed
    assert older.session_id == pinned.session_id
    assert older.seal_key_trusted
    assert (older.event_count, older.replay_fingerprint) != (pinned.event_count, pinned.replay_fingerprint)
    assert older.event_count < pinned.event_count


def test_substituted_archive_of_another_session_passes_alone_and_shows_its_own_session_id() -> None:
    """Another session's genuine archive handed over in place of this one verifies (it is genuine); the report's
    session id and fingerprint are what the auditor compares with the session they asked for."""
    w = world()
    substitute = verify(Evidence(jsonl(w.other), (w.current,)))
    assert verdict_of(substitute) == passes(AUTHORITATIVE)
    assert substitute.session_id != w.sealed[0]["session_id"]
