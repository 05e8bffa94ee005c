"""The evidence log of the matrix's world (LOG.md sections 2 to 5): the deployment's log holding the genuine sessions,
and the log proofs its API would serve, made from the stored tiles as the API makes them.

Proofs are JSON objects (``GET /v1/sessions/{id}/log-proof``); an attack edits a deep copy. Receipts are the JSON
Lines the SDK keeps (LOG.md section 7): one line per event the service acknowledged, the seal never among them.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Sequence
from typing import Any

from agentops_verify import Checkpoint, LogLeaf, LogProof, TileBuilder, TileReader, inclusion_proof

from tests.support.chains import Event
from tests.support.evidence_log import ORIGIN, leaf_for, sign_note
from tests.support.keys import TestSigner
from tests.tamper.matrix.world import World, world

RECEIPT_KEYS = ("session_id", "sequence_number", "event_id", "event_hash")


class MemoryLog:
    """A log kept in memory: tiles by path, a signed checkpoint, and proofs against it."""

    def __init__(self, signer: TestSigner, leaves: Sequence[LogLeaf], origin: str = ORIGIN) -> None:
        builder = TileBuilder()
        self.tiles: dict[str, bytes] = {}
        for leaf in leaves:
            self.tiles.update((tile.path, tile.data) for tile in builder.append(leaf.to_bytes()))
        self.tiles.update((tile.path, tile.data) for tile in builder.partial_tiles())
        self.size = builder.size
        self.note = sign_note(Checkpoint(origin, self.size, builder.root()), signer).decode()

    def proof(self, leaf_index: int) -> dict[str, Any]:
        reader = TileReader(self.size, self.tiles.__getitem__)
        leaf = LogLeaf.from_bytes(reader.entry(leaf_index))
        path = tuple(inclusion_proof(leaf_index, self.size, reader))
        return LogProof(self.note, leaf_index, leaf, path).to_dict()


@functools.cache
def deployment_log() -> MemoryLog:
    """The deployment's log, signed by its seal key: the other session at leaf 0, the sealed session at leaf 1, and
    one more so that the sealed session's proof has a hash on each side."""
    w = world()
    return MemoryLog(w.current, [leaf_for(w.other), leaf_for(w.sealed), leaf_for(w.with_log_drop)])


def genuine_proof() -> dict[str, Any]:
    """The proof of ``world().sealed``, served for its archive as stored (``to_jsonl``)."""
    return copy.deepcopy(deployment_log().proof(1))


def edited_proof(path: str, value: object) -> dict[str, Any]:
    """The genuine proof with the member at ``path`` (dotted, list positions as numbers) replaced."""
    proof = genuine_proof()
    node: Any = proof
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return proof


def flipped_hash(encoded: str) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def checkpoint_with_root(note: str, root: bytes) -> str:
    """The checkpoint note with its root line replaced and its signature line kept."""
    origin, size, _, *rest = note.split("\n")
    return "\n".join([origin, size, base64.b64encode(root).decode("ascii"), *rest])


def log_signed_by(w: World, signer: TestSigner) -> MemoryLog:
    """The same leaves published under the same origin by someone holding ``signer``."""
    return MemoryLog(signer, [leaf_for(w.other), leaf_for(w.sealed), leaf_for(w.with_log_drop)])


def receipts(events: Sequence[Event]) -> tuple[bytes, ...]:
    """The receipts the SDK kept for ``events`` (all but a final seal, which the agent never appends)."""
    acknowledged = events[:-1] if events[-1]["event_type"] == "CHAIN_SEAL" else events
    return tuple(json.dumps({key: event[key] for key in RECEIPT_KEYS}).encode() + b"\n" for event in acknowledged)
