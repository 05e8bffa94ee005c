"""The evidence the browser verifier and the Python verifier must agree on, case by case.

Every case is an export document (the viewer shows nothing else) and the key id the reader pins, if any:

- the four seed vectors of ``shared/conformance/seed-v0.6``, each wrapped into a document as the exporter would;
- every row of the tamper matrix (``tests/tamper/matrix``): JSON Lines evidence is wrapped the same way, line by
  line, so malformed lines stay malformed; export documents are kept, their ``verification`` cut to the fourteen
  members of ELS section 9 rev 2. The reader pins the key the matrix's auditor trusts (the seal's own key when they
  trust it). Matrix policies (reject local authority, require authoritative, accept unsigned seals) are command-line
  options the viewer does not have, so those rows are verified without them;
- ``viewer_cases``: what a reader of the viewer meets (pinned or not, withheld and redacted payloads, one payload byte
  changed, non-ASCII and number edge cases) and the export-document and seal rules of rev 2.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agentops_verify import MalformedJSONError, canonicalize, loads
from cryptography.hazmat.primitives import serialization

from tests.browser.documents import REPORT_MEMBERS, export_document, splice, withheld_lines
from tests.support.chains import Event, build_chain, rehash_from, reseal
from tests.support.keys import TestSigner, make_signer
from tests.support.paths import CONFORMANCE
from tests.tamper.matrix.test_every_attack_gets_its_exact_verdict import ATTACKS
from tests.tamper.matrix.world import world as tamper_world

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the order of P-256


@dataclass(frozen=True)
class Case:
    name: str
    document: bytes
    pin: str | None


def seed_cases() -> Iterator[Case]:
    for path in sorted((CONFORMANCE / "seed-v0.6").glob("*.jsonl")):
        yield Case(f"seed_{path.stem}", export_document(path.read_bytes().split(b"\n")), None)


def matrix_cases() -> Iterator[Case]:
    world = tamper_world()
    deployment_keys = [world.current, world.rotated_out, world.attacker]
    for attack in ATTACKS:
        evidence = attack.build(world)
        trusted_ids = [signer.key_id for signer in evidence.trusted] + list(evidence.pinned_ids)
        document = _as_export_document(evidence.data, [*deployment_keys, *evidence.trusted])
        seal_key = _seal_key_id(document)
        pin = seal_key if seal_key in trusted_ids else next(iter(trusted_ids), None)
        yield Case(f"matrix_{attack.name}", document, pin)


def _as_export_document(data: bytes, signers: Sequence[TestSigner]) -> bytes:
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            parsed = loads(stripped)
        except MalformedJSONError:
            parsed = None
        if isinstance(parsed, dict) and "export_version" in parsed:
            if isinstance(parsed.get("verification"), dict):
                parsed["verification"] = {
                    name: value for name, value in parsed["verification"].items() if name in REPORT_MEMBERS
                }
            return canonicalize(parsed)
    if stripped.startswith(b"["):  # a JSON array of events: the array itself becomes the events member
        document = loads(export_document([], signers=signers))
        del document["events"]
        return splice(document, [], events_json=stripped)
    return export_document(data.split(b"\n"), signers=signers)


def _seal_key_id(document: bytes) -> str | None:
    try:
        parsed = loads(document)
    except MalformedJSONError:
        return None
    seal = parsed.get("seal") if isinstance(parsed, dict) else None
    key_id = seal.get("signer_key_id") if isinstance(seal, dict) else None
    return key_id if isinstance(key_id, str) else None


# ---- cases of the viewer's own -----------------------------------------------------------------------------------


def _payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Realistic payloads: non-ASCII, astral and U+2028 text, doubles at the edges of the ES6 format, a redaction."""
    samples: list[tuple[str, dict[str, Any]]] = [
        ("MODEL_REQUEST", {"model": "gpt-x", "messages": [{"role": "user", "content": "Prüfe: 東京 → 😀\u2028ok"}]}),
        (
            "MODEL_RESPONSE",
            {"model": "gpt-x", "content": "ça marche", "usage": {"cost": 0.1 + 0.2, "big": 1e21, "tiny": 5e-324}},
        ),
        ("TOOL_CALL", {"tool_name": "search", "tool_id": "t-1", "args": {"q": "\u00e9\u0301", "k": -0.0}}),
        (
            "TOOL_RESULT",
            {"tool_name": "search", "tool_id": "t-1", "status": "error", "result": {"__proto__": 1, "€": [1.5, 2]}},
        ),
        ("ERROR", {"error_type": "ToolError", "message": "search failed: quota", "fatal": False}),
        (
            "DECISION_TRACE",
            {
                "decision_id": "d-9",
                "inputs": {"email": "[REDACTED]", "email_hash": "ab" * 32},
                "outputs": {"ok": True},
                "justification": "policy 7",
            },
        ),
    ]
    return samples[(sequence_number - 1) % len(samples)]


def _lines(events: Sequence[Event]) -> list[bytes]:
    return [canonicalize(event) for event in events]


def _with_payload(events: Sequence[Event], index: int, **changes: Any) -> list[Event]:
    copied = copy.deepcopy(list(events))
    copied[index]["payload"].update(changes)
    return rehash_from(copied, index)


def _seal_signature_replaced(events: Sequence[Event], change: Callable[[bytes], bytes]) -> list[Event]:
    copied = copy.deepcopy(list(events))
    seal = copied[-1]["payload"]
    seal["signature"] = base64.b64encode(change(base64.b64decode(seal["signature"]))).decode("ascii")
    return rehash_from(copied, len(copied) - 1)


def _high_s(signature: bytes) -> bytes:
    """The same signature as (r, n - s): valid ECDSA, but not the low-s form rev 2 requires."""
    r_length = signature[3]
    r = signature[4 : 4 + r_length]
    s = int.from_bytes(signature[6 + r_length :], "big")
    high = (N - s).to_bytes(33, "big")  # n - s > n/2 has its top bit set: DER needs the leading zero
    body = bytes([0x02, len(r)]) + r + bytes([0x02, len(high)]) + high
    return bytes([0x30, len(body)]) + body


def _long_form_length(signature: bytes) -> bytes:
    """The same signature with its SEQUENCE length written in the long form: not strict DER."""
    return bytes([0x30, 0x81, signature[1]]) + signature[2:]


def _compressed_key_entry(signer: TestSigner) -> dict[str, str]:
    """A ``public_keys`` entry holding ``signer``'s key as a compressed point, its id computed over that DER."""
    point = signer.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    algorithm = bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107")  # id-ecPublicKey, prime256v1
    bit_string = bytes([0x03, len(point) + 1, 0x00]) + point
    der = bytes([0x30, len(algorithm) + len(bit_string)]) + algorithm + bit_string
    body = base64.b64encode(der).decode("ascii")
    return {
        "signer_key_id": "sha256:" + hashlib.sha256(der).hexdigest(),
        "algorithm": "ECDSA_P256_SHA256",
        "public_key_pem": f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n",
    }


def _edited_document(document: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    parsed = loads(document)
    edit(parsed)
    return canonicalize(parsed)


def _raw_payload_value(events: Sequence[Event], index: int, old: bytes, new: bytes) -> list[bytes]:
    """Event lines with one payload's raw text changed and that event's hashes redone over the new value."""
    lines = _lines(events)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    return lines


def viewer_cases() -> Iterator[Case]:
    signer, other = make_signer(), make_signer()
    sealed = build_chain(9, signer=signer, payload_factory=_payloads)
    lines = _lines(sealed)
    genuine = export_document(lines, signers=[signer])
    pin = signer.key_id

    yield Case("genuine_pinned", genuine, pin)
    yield Case("genuine_unpinned", genuine, None)
    yield Case("genuine_pinned_to_another_key", genuine, other.key_id)
    changed = genuine.replace(b'"search failed: quota"', b'"search failed: quotA"', 1)
    assert changed != genuine
    yield Case("one_payload_byte_changed", changed, pin)
    yield Case("payloads_withheld", export_document(withheld_lines(lines, [2, 3, 5]), signers=[signer]), pin)
    yield Case(
        "every_payload_but_the_seal_withheld",
        export_document(withheld_lines(lines, range(len(lines) - 1)), signers=[signer]),
        pin,
    )
    yield Case(
        "session_with_log_drop",
        export_document(
            _lines(
                build_chain(
                    6,
                    signer=signer,
                    payload_factory=lambda n: (
                        ("LOG_DROP", {"dropped_count": 3, "cumulative_drops": 3, "drop_reason": "BUFFER_FULL"})
                        if n == 2
                        else _payloads(n)
                    ),
                )
            ),
            signers=[signer],
        ),
        pin,
    )
    yield Case("unsigned_legacy_seal", export_document(_lines(build_chain(5, seal="unsigned"))), pin)
    yield Case("local_authority", export_document(_lines(build_chain(5, authority="sdk", seal=None))), None)
    yield Case("unsealed_and_unfinished", export_document(_lines(build_chain(4, end=False, seal=None))), pin)
    yield Case(
        "redaction_without_its_hash",
        export_document(_lines(_with_payload(sealed[:-1], 6, inputs={"email": "[REDACTED]"})), signers=[signer]),
        pin,
    )

    # the seal's signature (ELS section 5)
    yield Case(
        "seal_signature_high_s",
        export_document(_lines(_seal_signature_replaced(sealed, _high_s)), signers=[signer]),
        pin,
    )
    yield Case(
        "seal_signature_high_s_unpinned",
        export_document(_lines(_seal_signature_replaced(sealed, _high_s)), signers=[signer]),
        None,
    )
    yield Case(
        "seal_signature_not_strict_der",
        export_document(_lines(_seal_signature_replaced(sealed, _long_form_length)), signers=[signer]),
        pin,
    )
    yield Case(
        "seal_resigned_by_another_key", export_document(_lines(reseal(sealed, other)), signers=[signer, other]), pin
    )

    # parsing (ELS section 2; trailing data: section 7 rev 2)
    # not in canonical form: the page cannot take the browser's own reading and reads the document strictly
    yield Case("pretty_printed_document", json.dumps(loads(genuine), indent=2, ensure_ascii=True).encode(), pin)
    yield Case("members_in_reverse_order", _reversed_members(genuine), pin)
    yield Case("trailing_data_after_the_document", genuine + b' {"x":1}', pin)
    yield Case("trailing_whitespace_after_the_document", genuine + b" \r\n\t", pin)
    yield Case("byte_order_mark", b"\xef\xbb\xbf" + genuine, pin)
    yield Case("invalid_utf8", genuine.replace(b"\xc3\xa7a marche", b"\xc3a marche", 1), pin)
    yield Case("duplicate_member", genuine[:-1] + b',"generator":"again"}', pin)
    yield Case(
        "sequence_number_as_float",
        export_document(_raw_payload_value(sealed, 3, b'"sequence_number":3', b'"sequence_number":3.0')),
        pin,
    )
    for name, literal in {
        "integer_beyond_2_53": b"9007199254740992",
        "integral_double_below_1e21": b"1e20",
        "double_overflowing": b"1e400",
        "lone_surrogate": b'"\\udc00x"',
        "reversed_surrogate_pair": b'"\\ude00\\ud83d"',
        "nan": b"NaN",
        "leading_zero": b"01",
    }.items():
        yield Case(
            f"payload_value_{name}",
            export_document(_raw_payload_value(sealed, 5, b'"fatal":false', b'"fatal":' + literal)),
            pin,
        )
    for name, literal in {
        "escaped_pair": b'"\\ud83d\\ude00 \\u00e9\\u0041\\/"',
        "integral_double_1e21": b"1e21",
        "negative_zero_double": b"-0.0",
        "exponent_upper_case": b"2.5E-7",
    }.items():
        value_lines = _raw_payload_value(sealed, 5, b'"fatal":false', b'"fatal":' + literal)
        event = loads(value_lines[5])
        redone = rehash_from([*sealed[:5], event, *sealed[6:]], 5)
        yield Case(
            f"payload_value_{name}_rehashed", export_document(_lines(reseal(redone, signer)), signers=[signer]), pin
        )
    yield Case("nesting_64_deep", _nested_document(sealed, signer, 60), pin)
    yield Case("nesting_65_deep", _nested_document(sealed, signer, 61), pin)

    # the export document's members (ELS sections 7 and 9, rev 2)
    yield Case(
        "stated_class_upgraded",
        _edited_document(
            export_document(lines[:-1], signers=[signer]), lambda d: d.update(evidence_class="AUTHORITATIVE_EVIDENCE")
        ),
        pin,
    )
    yield Case(
        "stated_partial_reasons_edited",
        _edited_document(genuine, lambda d: d["verification"].update(partial_reasons=["LOG_DROP_PRESENT"])),
        pin,
    )
    stated_count = b'"event_count":%d,"evidence_class"' % len(sealed)
    assert stated_count in genuine
    yield Case("stated_event_count_as_float", genuine.replace(stated_count, stated_count.replace(b",", b".0,", 1)), pin)
    yield Case("unknown_document_member", _edited_document(genuine, lambda d: d.update(approved_by="legal")), pin)
    yield Case("log_proof_null", _edited_document(genuine, lambda d: d.update(log_proof=None)), pin)
    yield Case(
        "verification_with_trust_dependent_member",
        _edited_document(genuine, lambda d: d["verification"].update(seal_key_trusted=True)),
        pin,
    )
    yield Case("verification_missing", _edited_document(genuine, lambda d: d.pop("verification")), pin)
    yield Case(
        "public_key_listed_under_another_id",
        _edited_document(genuine, lambda d: d["public_keys"][0].update(signer_key_id=other.key_id)),
        pin,
    )
    yield Case(
        "public_key_compressed",
        _edited_document(genuine, lambda d: d["public_keys"].append(_compressed_key_entry(other))),
        pin,
    )
    yield Case("public_keys_not_a_list", _edited_document(genuine, lambda d: d.update(public_keys={})), pin)
    yield Case("events_not_a_list", _edited_document(genuine, lambda d: d.update(events={})), pin)
    yield Case("no_events", export_document([], signers=[signer]), pin)

    # the seal's payload (ELS section 5, rev 2)
    extra_key = _with_payload(sealed, len(sealed) - 1, note="signed elsewhere")
    yield Case("signed_seal_with_a_ninth_key", export_document(_lines(extra_key), signers=[signer]), pin)
    moved = copy.deepcopy(sealed)
    moved[-1]["timestamp_wall"] = "2026-01-01T12:00:09.500Z"
    yield Case(
        "seal_event_time_differs_from_seal_timestamp",
        export_document(_lines(rehash_from(moved, len(moved) - 1)), signers=[signer]),
        pin,
    )


def _reversed_members(document: bytes) -> bytes:
    """The same document with every object's members written in reverse order (values unchanged)."""

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: reverse(value[name]) for name in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(item) for item in value]
        return value

    return json.dumps(reverse(loads(document)), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _nested_document(sealed: Sequence[Event], signer: TestSigner, levels: int) -> bytes:
    """A document whose deepest value is an array ``levels`` inside a payload: the payload object itself is three
    levels down (document, events, event), so 60 levels reach the limit of 64 exactly and 61 pass it."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    events = _with_payload(sealed[:-1], 4, state=value)
    return export_document(_lines(events), signers=[signer])


def all_cases() -> list[Case]:
    cases = [*seed_cases(), *matrix_cases(), *viewer_cases()]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def describe(case: Case) -> str:
    return json.dumps({"name": case.name, "pin": case.pin, "bytes": len(case.document)})
