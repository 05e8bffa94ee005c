"""Trusted seal keys: reading the key files an auditor hands over, and deciding which keys are trusted (ELS 5, 7).

ELS section 5: a key is trusted only when the auditor gives it, as a PEM file, a ``GET /v1/keys`` JSON document
(API.md; every key in it trusted), or a ``sha256:`` key id that pins a key listed in an export document's
``public_keys`` (ELS section 9). A key that arrives inside the evidence is never a trust anchor by itself.
No file I/O here: callers pass the bytes they read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from ._ecdsa import KeyFormatError, PublicKey, load_pem_public_key, load_pem_public_keys
from ._errors import MalformedJSONError
from ._json import loads
from ._rules import KEY_ID, SIGNATURE_ALGORITHM

__all__ = ["KeyFormatError", "KeyLookup", "TrustStore", "is_key_id", "parse_key_entry", "parse_key_file"]


class KeyLookup(Protocol):
    """The trust anchor: ``TrustStore`` or anything else that returns the trusted key with a given id."""

    def get(self, key_id: str) -> PublicKey | None: ...


def is_key_id(text: str) -> bool:
    """True when ``text`` has the exact form of a ``signer_key_id`` (ELS section 5)."""
    return KEY_ID.fullmatch(text) is not None


def parse_key_file(data: bytes) -> list[PublicKey]:
    """The keys in a key file: PEM ``PUBLIC KEY`` blocks, or a ``GET /v1/keys`` JSON document.

    A JSON entry whose ``signer_key_id`` is not the id computed from its own PEM is refused, so a key file cannot
    make a key answer to another key's name.
    """
    if data.lstrip()[:1] != b"{":
        return load_pem_public_keys(data)
    try:
        document = loads(data)
    except MalformedJSONError as error:
        raise KeyFormatError(f"key file is not valid JSON: {error}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise KeyFormatError('key file JSON has no "keys" list (expected the GET /v1/keys format)')
    if not entries:
        raise KeyFormatError('key file JSON lists no keys in "keys"')
    return [parse_key_entry(entry) for entry in entries]


def parse_key_entry(entry: object) -> PublicKey:
    """One published key: ``{"signer_key_id", "algorithm": "ECDSA_P256_SHA256", "public_key_pem", ...}``.

    The same shape is used by ``GET /v1/keys`` and by an export document's ``public_keys`` (ELS section 9). Other
    members (``first_used_at``) are informational and ignored.
    """
    if not isinstance(entry, Mapping):
        raise KeyFormatError("a key entry is not a JSON object")
    key_id = entry.get("signer_key_id")
    algorithm = entry.get("algorithm")
    pem = entry.get("public_key_pem")
    if not isinstance(key_id, str) or not isinstance(pem, str):
        raise KeyFormatError('a key entry needs string "signer_key_id" and "public_key_pem"')
    if algorithm != SIGNATURE_ALGORITHM:
        raise KeyFormatError(f"key {key_id}: algorithm {algorithm!r} is not {SIGNATURE_ALGORITHM}")
    key = load_pem_public_key(pem)
    if key.key_id != key_id:
        raise KeyFormatError(f"key entry says signer_key_id {key_id} but its PEM key has id {key.key_id}")
    return key


class TrustStore:
    """The keys an auditor trusts, plus key ids pinned for keys that an export document will supply.

    ``add`` and ``pin`` build the store from the auditor's arguments; ``with_document_keys`` returns a new store
    for one document, leaving this one unchanged, so one document's keys never leak into the next file's check.
    """

    def __init__(self, keys: Iterable[PublicKey] = (), pinned_ids: Iterable[str] = ()) -> None:
        self._keys: dict[str, PublicKey] = {}
        self._pinned: set[str] = set()
        for key in keys:
            self.add(key)
        for key_id in pinned_ids:
            self.pin(key_id)

    def add(self, key: PublicKey) -> None:
        """Trust ``key`` outright (it came from a PEM or ``/v1/keys`` file the auditor gave)."""
        self._keys[key.key_id] = key

    def pin(self, key_id: str) -> None:
        """Trust the key with this id if an export document lists it (ELS section 7)."""
        if not is_key_id(key_id):
            raise KeyFormatError(f"key id {key_id!r} is not 'sha256:' followed by 64 lowercase hex digits")
        self._pinned.add(key_id)

    @property
    def pinned_ids(self) -> frozenset[str]:
        return frozenset(self._pinned)

    def get(self, key_id: str) -> PublicKey | None:
        """The trusted key with this id, or None when no trusted key has it (a pin alone supplies no key)."""
        return self._keys.get(key_id)

    def trusts(self, key_id: str) -> bool:
        """Whether a signature naming ``key_id`` can be checked against a trusted key."""
        return key_id in self._keys

    def with_document_keys(self, keys: Iterable[PublicKey]) -> TrustStore:
        """A copy that also trusts those of a document's ``public_keys`` whose ids the auditor pinned."""
        store = TrustStore(self._keys.values(), self._pinned)
        for key in keys:
            if key.key_id in self._pinned:
                store.add(key)
        return store

    def __repr__(self) -> str:
        return f"TrustStore(keys={sorted(self._keys)}, pinned={sorted(self._pinned)})"
