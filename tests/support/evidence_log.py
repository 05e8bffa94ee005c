"""Evidence logs for tests, laid out as the archive bucket holds them (LOG.md sections 2 to 4).

``PublishedLog`` archives sealed chains under ``sessions/`` and publishes their leaves under ``log/`` the way the
sealer does: tiles and entry bundles first (write-once: a second write must carry the same bytes), then the signed
checkpoint. Every hash, tile and note comes from ``agentops_verify``; only the signing key is the test's, and it
signs like the sealer's KMS key with its ``s`` normalized to the low half (ELS section 5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from agentops_verify import (
    Checkpoint,
    LogLeaf,
    PublicKey,
    SealedChainFacts,
    TileBuilder,
    load_pem_public_key,
    sign_checkpoint,
)
from agentops_verify._ecdsa import N
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from tests.support.chains import Event, to_jsonl
from tests.support.keys import TestSigner

ORIGIN = "agentops-replay-test/evidence-log"


def low_s(signature: bytes) -> bytes:
    """The same ECDSA signature with ``s`` replaced by ``n - s`` when it is in the high half (ELS section 5)."""
    r, s = decode_dss_signature(signature)
    return encode_dss_signature(r, min(s, N - s))


def low_s_signer(signer: TestSigner) -> Callable[[bytes], bytes]:
    """A checkpoint signer as the sealer builds it from KMS: sign, then normalize ``s``."""
    return lambda message: low_s(signer.sign(message))


def public_key(signer: TestSigner) -> PublicKey:
    return load_pem_public_key(signer.public_key_pem)


def sign_note(checkpoint: Checkpoint, signer: TestSigner) -> bytes:
    return sign_checkpoint(checkpoint, key=public_key(signer), sign=low_s_signer(signer))


def chain_facts(events: Sequence[Event]) -> SealedChainFacts:
    """What a sealed chain's leaf states about it (LOG.md section 2), read off its seal event."""
    seal = events[-1]
    return SealedChainFacts(
        session_id=seal["session_id"],
        seal_event_hash=seal["event_hash"],
        event_count=len(events),
        seal_timestamp=seal["payload"]["seal_timestamp"],
        signer_key_id=seal["payload"]["signer_key_id"],
    )


def leaf_for(events: Sequence[Event]) -> LogLeaf:
    """The leaf of a sealed chain archived as ``to_jsonl(events)``."""
    return LogLeaf.for_archive(chain_facts(events), hashlib.sha256(to_jsonl(events)).hexdigest())


class PublishedLog:
    """A directory laid out like the archive bucket: ``sessions/<session_id>.jsonl`` and ``log/``."""

    def __init__(self, root: Path, signer: TestSigner, origin: str = ORIGIN) -> None:
        self.root = root
        self.signer = signer
        self.origin = origin
        self.builder = TileBuilder()
        self.archives.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def archives(self) -> Path:
        return self.root / "sessions"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def archive(self, events: Sequence[Event]) -> Path:
        path = self.archives / f"{events[0]['session_id']}.jsonl"
        path.write_bytes(to_jsonl(events))
        return path

    def add(self, events: Sequence[Event], *, leaf: LogLeaf | None = None) -> LogLeaf:
        """Archive a sealed chain and append its leaf (or ``leaf``, to log something else) to the log."""
        self.archive(events)
        logged = leaf if leaf is not None else leaf_for(events)
        self.append(logged.to_bytes())
        return logged

    def append(self, entry: bytes) -> None:
        for tile in self.builder.append(entry):
            self._write_once(tile.path, tile.data)

    def publish(self) -> bytes:
        """Write the partial tiles of the current size, then the signed checkpoint; return the checkpoint note."""
        for tile in self.builder.partial_tiles():
            self._write_once(tile.path, tile.data)
        note = sign_note(Checkpoint(self.origin, self.builder.size, self.builder.root()), self.signer)
        (self.log_dir / "checkpoint").write_bytes(note)
        return note

    def path_of(self, tile_path: str) -> Path:
        return self.log_dir.joinpath(*tile_path.split("/"))

    def _write_once(self, tile_path: str, data: bytes) -> None:
        path = self.path_of(tile_path)
        if path.exists():
            assert path.read_bytes() == data, f"{tile_path} was written twice with different bytes"
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
