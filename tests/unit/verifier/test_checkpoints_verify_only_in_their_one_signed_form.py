"""Signed checkpoints (LOG.md section 3): the C2SP tlog-checkpoint text in a C2SP signed-note, signature type 0x02.

``cryptography`` is the independent reference: it makes the keys and checks the signatures the notes carry.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from agentops_verify import Checkpoint, NoteError, note_key_id, sign_checkpoint, verify_checkpoint
from agentops_verify._ecdsa import N
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.evidence_log import low_s, low_s_signer, public_key, sign_note
from tests.support.keys import TestSigner

ORIGIN = "example.com/evidence-log"
ROOT = hashlib.sha256(b"root").digest()
CHECKPOINT = Checkpoint(ORIGIN, 20852163, ROOT)
LOG = TestSigner()
WITNESS = TestSigner()
OTHER = TestSigner()


def signature_line(name: str, key_id: bytes, signature: bytes) -> bytes:
    return f"\u2014 {name} {base64.b64encode(key_id + signature).decode()}\n".encode()


def test_note_text_is_origin_size_and_base64_root_each_ending_in_a_newline() -> None:
    root = base64.b64encode(ROOT)
    assert CHECKPOINT.note_text() == b"example.com/evidence-log\n20852163\n" + root + b"\n"


def test_signed_note_is_the_text_a_blank_line_and_an_em_dash_signature_line() -> None:
    note = sign_note(CHECKPOINT, LOG)
    text = CHECKPOINT.note_text()
    assert note.startswith(text + b"\n\xe2\x80\x94 example.com/evidence-log ")  # U+2014 in UTF-8
    assert note.endswith(b"\n")
    assert note.count(b"\n") == 5
    signature_field = note[len(text) + 1 :].decode().split(" ")[2].rstrip("\n")
    raw = base64.b64decode(signature_field, validate=True)
    assert raw[:4] == hashlib.sha256(LOG.spki_der).digest()[:4] == note_key_id(public_key(LOG))
    assert LOG.verifies(text, raw[4:])


def test_signature_carries_the_low_s_the_signer_returned() -> None:
    note = sign_note(CHECKPOINT, LOG)
    raw = base64.b64decode(note.decode().rsplit(" ", 1)[1])
    _, s = decode_dss_signature(raw[4:])
    assert s <= N // 2


def test_signed_checkpoint_verifies_under_its_key() -> None:
    assert verify_checkpoint(sign_note(CHECKPOINT, LOG), [public_key(LOG)]) == CHECKPOINT
    assert verify_checkpoint(sign_note(CHECKPOINT, LOG).decode(), [public_key(OTHER), public_key(LOG)]) == CHECKPOINT


def test_empty_tree_checkpoint_round_trips() -> None:
    empty = Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())
    assert empty.note_text().split(b"\n")[1] == b"0"
    assert verify_checkpoint(sign_note(empty, LOG), [public_key(LOG)]) == empty


def test_witness_cosignature_and_unknown_key_lines_are_ignored() -> None:
    """C2SP signed-note: signatures from keys the verifier was not given are ignored, in any position."""
    note = sign_note(CHECKPOINT, LOG)
    text = CHECKPOINT.note_text()
    witness = signature_line("witness.example/w1", note_key_id(public_key(WITNESS)), low_s(WITNESS.sign(text)))
    same_name_unknown_key = signature_line(ORIGIN, note_key_id(public_key(OTHER)), low_s(OTHER.sign(text)))
    garbage_unknown = signature_line("someone.example", b"\x00\x01\x02\x03", b"not a signature")
    head, log_line = note[: len(text) + 1], note[len(text) + 1 :]
    extended = head + witness + same_name_unknown_key + log_line + garbage_unknown
    assert verify_checkpoint(extended, [public_key(LOG)]) == CHECKPOINT


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    with pytest.raises(NoteError, match=r"no signature of example\.com/evidence-log by a pinned log key"):
        verify_checkpoint(sign_note(CHECKPOINT, OTHER), [public_key(LOG)])


def test_log_key_signature_under_another_name_does_not_count() -> None:
    text = CHECKPOINT.note_text()
    note = text + b"\n" + signature_line("other.example/log", note_key_id(public_key(LOG)), low_s(LOG.sign(text)))
    with pytest.raises(NoteError, match="no signature"):
        verify_checkpoint(note, [public_key(LOG)])


def test_failing_signature_by_a_pinned_key_rejects_the_note_even_beside_a_good_one() -> None:
    bad = signature_line(ORIGIN, note_key_id(public_key(OTHER)), low_s(OTHER.sign(b"something else")))
    note = sign_note(CHECKPOINT, LOG) + bad
    with pytest.raises(NoteError, match="does not verify"):
        verify_checkpoint(note, [public_key(LOG), public_key(OTHER)])
    assert verify_checkpoint(sign_note(CHECKPOINT, LOG), [public_key(LOG), public_key(OTHER)]) == CHECKPOINT


def test_checkpoint_with_an_edited_size_or_root_is_refused() -> None:
    note = sign_note(CHECKPOINT, LOG)
    for edited in (
        note.replace(b"\n20852163\n", b"\n20852164\n"),
        note.replace(base64.b64encode(ROOT), base64.b64encode(hashlib.sha256(b"other").digest())),
    ):
        with pytest.raises(NoteError, match="does not verify"):
            verify_checkpoint(edited, [public_key(LOG)])


def _resigned(text: bytes) -> bytes:
    """A note over an arbitrary text, correctly signed by the log key: only the format checks can refuse it."""
    return text + b"\n" + signature_line(ORIGIN, note_key_id(public_key(LOG)), low_s(LOG.sign(text)))


ROOT_TEXT = base64.b64encode(ROOT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"example.com/evidence-log\n5\n" + ROOT_TEXT + b"\nextension line\n", "exactly three lines"),
        (b"example.com/evidence-log\n05\n" + ROOT_TEXT + b"\n", "leading zeros"),
        (b"example.com/evidence-log\n+5\n" + ROOT_TEXT + b"\n", "leading zeros"),
        (b"example.com/evidence-log\n5 \n" + ROOT_TEXT + b"\n", "leading zeros"),
        (b"example.com/evidence-log\n\xd9\xa5\n" + ROOT_TEXT + b"\n", "leading zeros"),  # ARABIC-INDIC DIGIT FIVE
        (b"example.com/evidence-log\n5\n" + ROOT_TEXT.rstrip(b"=") + b"\n", "base64"),
        (b"example.com/evidence-log\n5\n" + base64.b64encode(ROOT[:31]) + b"\n", "31 bytes"),
        (b"example.com/evidence-log\n5\n" + base64.urlsafe_b64encode(b"\xfb" * 32) + b"\n", "base64"),
        (b"example.com/evidence-log\n" + str(2**63).encode() + b"\n" + ROOT_TEXT + b"\n", "between 0"),
    ],
)
def test_checkpoint_text_other_than_the_one_exact_form_is_refused(text: bytes, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        verify_checkpoint(_resigned(text), [public_key(LOG)])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda note: note[:-1], "does not end in a newline"),
        (lambda note: note.replace(b"\n\n", b"\n"), "blank line"),
        (lambda note: note.replace(b"\xe2\x80\x94 ", b"- "), "em dash"),
        (lambda note: note.replace(b"\xe2\x80\x94 ", b"\xe2\x80\x94"), "em dash|space"),
        (lambda note: note.replace(b"\n20852163", b"\r\n20852163"), "control character"),
        (lambda note: note + b"\xff\n", "not UTF-8"),
        (lambda note: note + "\u2014 name AAAAAA==\n".encode(), "key ID and nothing after it"),
        (lambda note: note + "\u2014 na+me AAAAAAA=\n".encode(), "plus sign"),
        (lambda note: note + "\u2014 name\u00a0x AAAAAAA=\n".encode(), "space"),
        (lambda note: note + "\u2014 name AAAAAAA\n".encode(), "base64"),
        (lambda note: note + b"\n", "em dash"),
        (lambda note: note + "\u2014 witness AAAAAAA=\n".encode() * 100, "more than 100"),
    ],
)
def test_malformed_note_is_refused(mutate: object, message: str) -> None:
    note = mutate(sign_note(CHECKPOINT, LOG))  # type: ignore[operator]
    with pytest.raises(NoteError, match=message):
        verify_checkpoint(note, [public_key(LOG)])


def test_up_to_sixteen_signatures_are_accepted() -> None:
    text = CHECKPOINT.note_text()
    others = b"".join(
        signature_line(f"witness{number}.example", note_key_id(public_key(WITNESS)), low_s(WITNESS.sign(text)))
        for number in range(15)
    )
    assert verify_checkpoint(sign_note(CHECKPOINT, LOG) + others, [public_key(LOG)]) == CHECKPOINT


@pytest.mark.parametrize("origin", ["", "with space", "with+plus", "tab\there", "line\nbreak", "nbsp\u00a0"])
def test_origin_that_cannot_be_a_key_name_is_refused(origin: str) -> None:
    with pytest.raises(NoteError, match="checkpoint origin"):
        Checkpoint(origin, 1, ROOT)


def test_signer_that_does_not_hold_the_key_produces_no_note() -> None:
    with pytest.raises(NoteError, match="does not verify under key"):
        sign_checkpoint(CHECKPOINT, key=public_key(LOG), sign=low_s_signer(OTHER))
    with pytest.raises(NoteError, match="does not verify under key"):
        sign_checkpoint(CHECKPOINT, key=public_key(LOG), sign=lambda message: b"\x30\x00")


def test_note_longer_than_any_checkpoint_is_refused_unparsed() -> None:
    note = sign_note(CHECKPOINT, LOG)
    with pytest.raises(NoteError, match="longer than 1048576 bytes"):
        verify_checkpoint(note + b"x" * (1 << 20), [public_key(LOG)])
