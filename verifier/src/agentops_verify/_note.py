"""Signed checkpoints (LOG.md section 3): C2SP ``tlog-checkpoint`` note text in a C2SP ``signed-note``, signature
type 0x02 (ECDSA P-256 over SHA-256, DER signature).

A checkpoint note, byte for byte::

    <origin>\\n<tree size in decimal>\\n<base64 root hash>\\n\\n— <origin> <base64(key ID || DER signature)>\\n

The key ID is the first four bytes of SHA-256 of the key's DER SubjectPublicKeyInfo; the signed message is the note
text (the three lines, each with its newline). The key name of the log's signature is the origin. Reading is strict:
one exact form is accepted, and a checkpoint counts only when a signature by a key the caller pinned verifies.
Signatures by other keys (witnesses, a rotated-out key) are ignored, as C2SP requires. No I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._ecdsa import PublicKey, verify_signature
from ._errors import EvidenceLogError
from ._merkle import HASH_SIZE, MAX_TREE_SIZE

# C2SP signed-note: "— " (U+2014, space) starts each signature line.
SIGNATURE_LINE_START = "\u2014 "
KEY_ID_SIZE = 4
# C2SP signed-note asks verifiers to accept at least 16 signatures and to bound their number.
MAX_SIGNATURES = 100
# A note is three short lines and at most MAX_SIGNATURES signature lines: far less than this. Bounds what is read.
MAX_NOTE_SIZE = 1 << 20
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")

Signer = Callable[[bytes], bytes]
"""Signs a message: returns the strict-DER ECDSA P-256 signature over SHA-256 of the message, with low s (ELS
section 5), as the sealer's KMS key does (ECDSA_SHA_256, message type RAW) once its ``s`` is normalized."""


class NoteError(EvidenceLogError):
    """A checkpoint note is malformed, or no signature by a pinned key verifies it."""


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its size and root hash (C2SP tlog-checkpoint, no extension lines)."""

    origin: str
    size: int
    root_hash: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.origin, "checkpoint origin")
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {self.size!r} is not an integer between 0 and {MAX_TREE_SIZE}")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash is {len(self.root_hash)} bytes long, not {HASH_SIZE}")

    def note_text(self) -> bytes:
        """The signed part: origin, size and root lines, each ending in a newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n".encode()

    @classmethod
    def from_note_text(cls, text: bytes) -> Checkpoint:
        """Parse exactly three lines: origin, decimal size without leading zeros, base64 of a 32-byte root."""
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("checkpoint text is not UTF-8") from None
        lines = decoded.split("\n")
        if len(lines) != 4 or lines[3] != "":
            raise NoteError("checkpoint text is not exactly three lines (origin, size, root), each ending in a newline")
        origin, size_text, root_text = lines[:3]
        if _TREE_SIZE.fullmatch(size_text) is None:
            raise NoteError(f"checkpoint tree size {size_text!r} is not a decimal number without leading zeros")
        root_hash = _decode_base64(root_text, "checkpoint root hash")
        return cls(origin=origin, size=int(size_text), root_hash=root_hash)


def note_key_id(key: PublicKey) -> bytes:
    """C2SP signed-note type 0x02: the first four bytes of SHA-256 of the key's DER SubjectPublicKeyInfo."""
    return hashlib.sha256(key.spki_der).digest()[:KEY_ID_SIZE]


def sign_checkpoint(checkpoint: Checkpoint, *, key: PublicKey, sign: Signer) -> bytes:
    """The signed note of ``checkpoint``, signed by ``sign`` under the key name ``checkpoint.origin``.

    ``key`` is the public key of ``sign``: the signature is checked under it before the note is returned, so a
    signer that does not hold that key (or returns a malformed signature) never produces a publishable note."""
    text = checkpoint.note_text()
    signature = sign(text)
    if not verify_signature(key, text, signature):
        raise NoteError(f"the signature returned for the checkpoint does not verify under key {key.key_id}")
    encoded = base64.b64encode(note_key_id(key) + signature).decode("ascii")
    return text + f"\n{SIGNATURE_LINE_START}{checkpoint.origin} {encoded}\n".encode()


def verify_checkpoint(note: bytes | str, keys: Iterable[PublicKey]) -> Checkpoint:
    """The checkpoint of a signed note, when a signature by one of ``keys`` under the origin's name verifies.

    C2SP signed-note: signature lines by other names or key IDs are ignored; a signature by a pinned key that does
    not verify rejects the whole note; with no verified signature by a pinned key the note is rejected."""
    if isinstance(note, str):
        try:
            note = note.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, as json.load reads the escape \ud800
            raise NoteError("the note is not UTF-8") from None
    text, signatures = _split_note(note)
    checkpoint = Checkpoint.from_note_text(text)
    by_key_id: dict[bytes, list[PublicKey]] = {}
    for key in keys:
        by_key_id.setdefault(note_key_id(key), []).append(key)
    verified = False
    for name, key_id, signature in signatures:
        candidates = by_key_id.get(key_id, []) if name == checkpoint.origin else []
        if not candidates:
            continue
        if not any(verify_signature(key, text, signature) for key in candidates):
            raise NoteError(f"the signature of {name} with key ID {key_id.hex()} does not verify")
        verified = True
    if not verified:
        raise NoteError(f"no signature of {checkpoint.origin} by a pinned log key")
    return checkpoint


def _split_note(data: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    """C2SP signed-note: the text (up to the last blank line) and its signatures as (key name, key ID, signature)."""
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError(f"the note is longer than {MAX_NOTE_SIZE} bytes")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the note is not UTF-8") from None
    if any(character < " " and character != "\n" for character in decoded):
        raise NoteError("the note holds a control character other than newline")
    separator = decoded.rfind("\n\n")
    if separator < 0 or not decoded.endswith("\n"):
        raise NoteError("the note has no blank line before its signatures, or does not end in a newline")
    text = decoded[: separator + 1]
    lines = decoded[separator + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has {len(lines)} signature lines, more than {MAX_SIGNATURES}")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_LINE_START):
            raise NoteError(f"note signature line {line[:40]!r} does not start with an em dash and a space")
        name, space, encoded = line[len(SIGNATURE_LINE_START) :].partition(" ")
        if not space:
            raise NoteError(f"note signature line {line[:40]!r} has no space between key name and signature")
        _check_key_name(name, "note key name")
        raw = _decode_base64(encoded, f"signature of {name}")
        if len(raw) <= KEY_ID_SIZE:
            raise NoteError(f"the signature of {name} is {len(raw)} bytes long: a key ID and nothing after it")
        signatures.append((name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return text.encode("utf-8"), signatures


def _check_key_name(name: str, what: str) -> None:
    # C2SP signed-note: non-empty, no Unicode space, no plus; the origin is also the key name (LOG.md section 3).
    if not name or any(character.isspace() or character == "+" or character < " " for character in name):
        raise NoteError(f"{what} {name!r} is empty or holds a space, a plus sign or a control character")


def _decode_base64(text: str, what: str) -> bytes:
    """Standard base64 with padding, in its one canonical form (so a note has one accepted spelling)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise NoteError(f"{what} is not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not in canonical base64 form")
    return raw
