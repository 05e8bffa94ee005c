"""The keys a sealer trusts (ELS section 8, rev 2): the published key objects, and the check of a stored seal.

The table is attacker-written, so a seal found stored in it is reused only when a published key object signed it over
its own ELS section 5 bytes; a key the table names is never enough. Key objects are write-once and never removed, so
a key set read again only grows: a seal stored by another sealer under the next (or the previous) key is recognised
once its key object is read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from agentops_verify import (
    CHAIN_SEAL,
    MalformedJSONError,
    PublicKey,
    TrustStore,
    load_pem_public_key,
    loads,
    seal_signed_bytes,
    verify_signature,
)

from agentops_server.archive import Archive
from agentops_server.store import SigningKeyRecord, StoredBatch


class PublishedKeySet:
    """The published key set by ``signer_key_id``, read again from the bucket when asked for a key not seen yet."""

    def __init__(self, archive: Archive, records: Iterable[SigningKeyRecord]) -> None:
        self._archive = archive
        self._keys = _keys_by_id(records)

    def trust_store(self) -> TrustStore:
        return TrustStore(self._keys.values())

    def key(self, key_id: object) -> PublicKey | None:
        """The key object named ``key_id``; None when the bucket has no such key (another sealer, with the next key,
        may have published it since this set was read, so an unknown id reads the key objects again)."""
        if not isinstance(key_id, str):
            return None
        if key_id not in self._keys:
            self._keys = {**self._keys, **_keys_by_id(self._archive.published_keys())}
        return self._keys.get(key_id)


def signed_by_a_published_key(seal: StoredBatch, keys: PublishedKeySet) -> bool:
    """Whether a stored seal batch is one seal event of its session signed over its own ELS section 5 bytes by the
    published key its ``signer_key_id`` names (the rest of the chain is checked by the verification that follows)."""
    if len(seal.lines) != 1:
        return False
    try:
        event = loads(seal.lines[0])
        payload = event["payload"]
        signature = base64.b64decode(payload["signature"], validate=True)
        signed = seal_signed_bytes(event["session_id"], event["event_id"], payload)
    except (MalformedJSONError, KeyError, TypeError, ValueError):
        return False
    if event.get("event_type") != CHAIN_SEAL or event["session_id"] != seal.session_id:
        return False
    key = keys.key(payload.get("signer_key_id"))
    return key is not None and verify_signature(key, signed, signature)


def _keys_by_id(records: Iterable[SigningKeyRecord]) -> dict[str, PublicKey]:
    """Valid key objects only (``Archive.published_keys``), by ``signer_key_id``."""
    keys = (load_pem_public_key(record.public_key_pem) for record in records)
    return {key.key_id: key for key in keys}
