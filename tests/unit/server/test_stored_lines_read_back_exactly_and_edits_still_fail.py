"""The stored line form of a batch (``dynamodb_batches``): derivable hashes are not stored per event, every canonical
line reads back byte for byte, and an edit of the stored bytes still fails verification at the edited event."""

from __future__ import annotations

import json
import lzma
from typing import Any

import pytest
from agentops_server.aws.dynamodb_batches import HASH_CHECK_HEX, decode_lines, encode_lines
from agentops_verify import canonicalize, event_hash, payload_hash, verify_lines

from tests.support.chains import build_chain

# The batch items' compression (raw LZMA2): the stored text below is what an editor of the table sees.
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]


def _payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Payloads that test where the envelope's members are found: nested keys named like hash members, escaped
    quotes, non-ASCII text and fractional numbers."""
    return "TOOL_RESULT", {
        "tool_name": "lookup",
        "result": {
            "event_hash": "not the envelope's",
            "payload_hash": "0" * 64,
            "prev_event_hash": None,
            "note": 'a "quoted" ,"payload_hash":"x" text, déjà vu, 東京 ✈️',
            "price": 1.5 + sequence_number,
            "ratio": 0.125,
        },
    }


def _lines(n_events: int = 12, seal: Any = "signed") -> tuple[bytes, ...]:
    return tuple(canonicalize(event) for event in build_chain(n_events, seal=seal, payload_factory=_payloads))


def _stored_text(lines: tuple[bytes, ...]) -> bytes:
    return lzma.decompress(encode_lines(lines), format=lzma.FORMAT_RAW, filters=_FILTERS)


def _compress(stored: list[bytes]) -> bytes:
    return lzma.compress(b"\n".join(stored), format=lzma.FORMAT_RAW, filters=_FILTERS)


def _first_violation(lines: tuple[bytes, ...]) -> tuple[str, int | None]:
    violation = verify_lines(lines).violations[0]
    return violation.type, violation.event_sequence


@pytest.mark.parametrize("seal", ["signed", None])
def test_every_canonical_line_reads_back_byte_for_byte(seal: Any) -> None:
    lines = _lines(seal=seal)
    assert decode_lines(encode_lines(lines)) == lines
    assert decode_lines(encode_lines(lines[:1])) == lines[:1]
    assert decode_lines(encode_lines(lines[5:])) == lines[5:]  # a later batch reads without the one before it


def test_only_the_batch_anchors_keep_full_hashes() -> None:
    lines = _lines()
    stored = _stored_text(lines).split(b"\n")
    prev_member = b'"prev_event_hash":'
    # The first line keeps its prev_event_hash; the others lose theirs (the payloads' own keys of that name stay).
    assert [line.count(prev_member) for line in stored] == [
        line.count(prev_member) - (index > 0) for index, line in enumerate(lines)
    ]
    event_hash_lengths = [line.split(b'"event_hash":"', 1)[1].index(b'"') for line in stored]
    payload_hash_lengths = [line.rsplit(b',"payload_hash":"', 1)[1].index(b'"') for line in stored]
    assert event_hash_lengths == [HASH_CHECK_HEX] * (len(lines) - 1) + [64]
    assert payload_hash_lengths == [HASH_CHECK_HEX] * len(lines)
    whole = _compress(list(lines))
    assert len(encode_lines(lines)) < 0.8 * len(whole)


def test_lines_stored_whole_by_earlier_items_read_unchanged() -> None:
    lines = _lines()
    whole = _compress(list(lines))
    assert decode_lines(whole) == lines


def test_edited_payload_in_the_stored_bytes_fails_at_the_edited_event() -> None:
    lines = _lines(seal=None)
    assert verify_lines(lines).violations == ()
    edited = decode_lines(encode_lines(tuple(line.replace(b'"price":4.5', b'"price":450') for line in lines)))
    assert _first_violation(edited) == ("PAYLOAD_HASH_MISMATCH", 3)


def test_edited_envelope_member_in_the_stored_bytes_fails_at_the_edited_event() -> None:
    lines = _lines(seal=None)
    edited = list(lines)
    edited[4] = edited[4].replace(b'"timestamp_wall":"2026-01-01T12:00:04', b'"timestamp_wall":"2026-01-01T13:00:04')
    assert _first_violation(decode_lines(encode_lines(tuple(edited)))) == ("EVENT_HASH_MISMATCH", 4)


def test_edit_with_recomputed_check_digits_still_fails_at_the_batch_anchor() -> None:
    """An editor who also rewrites the check digits of every later line still meets the batch's last line, whose full
    event hash is stored: the batch no longer verifies."""
    lines = _lines(seal=None)
    edited = _stored_text(lines).split(b"\n")
    edited[3] = edited[3].replace(b'"price":4.5', b'"price":450')
    rebuilt: tuple[bytes, ...] = ()
    for index in range(3, len(edited) - 1):  # re-derive each line's check digits from the edited content
        candidate = decode_lines(_compress(edited))
        for name in (b'"payload_hash":"', b'"event_hash":"'):
            derived = _derive(candidate[index], name)
            head, tail = edited[index].split(name, 1) if name == b'"event_hash":"' else edited[index].rsplit(name, 1)
            edited[index] = head + name + derived[:HASH_CHECK_HEX].encode() + tail[HASH_CHECK_HEX:]
            candidate = decode_lines(_compress(edited))
        rebuilt = candidate
    assert verify_lines(rebuilt[:-1]).violations == ()  # everything before the anchor reads as a valid chain
    assert _first_violation(rebuilt) == ("EVENT_HASH_MISMATCH", len(lines) - 1)


def test_undone_edit_reads_back_the_original_lines() -> None:
    lines = _lines(seal=None)
    edited = decode_lines(encode_lines(tuple(line.replace(b'"price":4.5', b'"price":450') for line in lines)))
    undone = decode_lines(encode_lines(tuple(line.replace(b'"price":450', b'"price":4.5') for line in edited)))
    assert undone == lines


def test_damaged_stored_lines_are_left_for_the_verifier_to_refuse() -> None:
    lines = _lines(seal=None)
    stored = _stored_text(lines).split(b"\n")
    stored[2] = stored[2].replace(b'"event_id":"', b'"event_id":', 1)  # no longer JSON
    stored[5] = b"not an envelope"
    decoded = decode_lines(_compress(stored))
    assert decoded[5] == b"not an envelope"
    assert verify_lines(decoded).violations


def _derive(line: bytes, name: bytes) -> str:
    """The hash the verifier computes for ``line``'s ``name`` member."""
    event = json.loads(line)
    return payload_hash(event["payload"]) if name == b'"payload_hash":"' else event_hash(event)
