"""The evidence log's Merkle tree (LOG.md section 1): RFC 9162 section 2.1 with SHA-256.

Leaf hash ``SHA-256(0x00 || leaf)``, interior node ``SHA-256(0x01 || left || right)``. Proofs are made from any
source of subtree hashes (a ``NodeReader``: the sealer's and the API's tiles, a test's list of leaves) and checked
with the verification algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2. No I/O: hashes in, hashes or errors out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from ._errors import EvidenceLogError

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
# RFC 9162 section 2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()
# A tree of 2**63 leaves is far beyond any deployment; it bounds the loops below and the sizes a note may state.
MAX_TREE_SIZE = 2**63 - 1


class ProofError(EvidenceLogError):
    """An inclusion or consistency proof is malformed or does not lead to the expected root."""


class NodeReader(Protocol):
    """Where proofs come from: the hash of a complete subtree of the tree being proven."""

    def subtree_hash(self, level: int, index: int) -> bytes:
        """MTH of the ``2**level`` leaves starting at leaf ``index * 2**level`` (all of them in the tree)."""
        ...


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 section 2.1.1: ``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of a complete subtree given its ``2**h`` bottom hashes (leaf hashes, or the roots of equal subtrees)."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a complete subtree has a power-of-two number of hashes, not {len(level)}")
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def fold_edge(edge: Sequence[bytes]) -> bytes:
    """MTH of a tree given its right edge: the roots of its complete subtrees, largest (leftmost) first.

    RFC 9162 section 2.1.1 splits ``n`` leaves at the largest power of two below ``n``, so a tree is its complete
    subtrees, one per set bit of ``n``, hashed together from the right."""
    if not edge:
        return EMPTY_ROOT
    root = edge[-1]
    for subtree in reversed(edge[:-1]):
        root = node_hash(subtree, root)
    return root


def _split(size: int) -> int:
    """RFC 9162 section 2.1.1: the largest power of two smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _range_hash(start: int, end: int, nodes: NodeReader) -> bytes:
    """MTH of leaves ``start`` to ``end`` (exclusive), a range the RFC's recursion reaches, so ``start`` is a
    multiple of a power of two at least ``end - start`` and the range is its complete subtrees, largest first."""
    edge = []
    position = start
    remaining = end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            edge.append(nodes.subtree_hash(level, position >> level))
            position += 1 << level
    return fold_edge(edge)


def tree_root(size: int, nodes: NodeReader) -> bytes:
    """MTH of the first ``size`` leaves."""
    _check_size(size, minimum=0)
    return _range_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: NodeReader) -> list[bytes]:
    """RFC 9162 section 2.1.3.1: ``PATH(index, D[0:size])``, the proof that leaf ``index`` is in the tree."""
    _check_size(size, minimum=1)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    proof = []
    start, end = 0, size
    while end - start > 1:
        split = start + _split(end - start)
        if index < split:
            proof.append(_range_hash(split, end, nodes))
            end = split
        else:
            proof.append(_range_hash(start, split, nodes))
            start = split
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, nodes: NodeReader) -> list[bytes]:
    """RFC 9162 section 2.1.4.1: ``PROOF(old_size, D[0:new_size])``, empty when the sizes are equal.

    A proof from size 0 proves nothing (every tree extends the empty one) and is refused (LOG.md section 5)."""
    _check_size(new_size, minimum=1)
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}: need 0 < old <= new")
    proof = []
    start, end = 0, new_size
    # SUBPROOF(m, D[start:end], b), m = old_size - start; b stays true while the old tree is a left part of this one.
    starts_at_left_edge = True
    while old_size != end:
        split = start + _split(end - start)
        if old_size <= split:
            proof.append(_range_hash(split, end, nodes))
            end = split
        else:
            proof.append(_range_hash(start, split, nodes))
            start = split
            starts_at_left_edge = False
    if not starts_at_left_edge:
        proof.append(_range_hash(start, end, nodes))
    proof.reverse()
    return proof


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root that ``proof`` leads to from leaf hash ``leaf`` at ``index``."""
    _check_hash(leaf, "leaf hash")
    _check_proof(proof)
    if not 0 < size <= MAX_TREE_SIZE:
        raise ProofError(f"tree size {size} is not between 1 and {MAX_TREE_SIZE}")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn = index, size - 1
    root = leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            root = node_hash(root, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return root


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2: raise ``ProofError`` unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the
    tree of ``size`` leaves with root hash ``root``."""
    _check_hash(root, "root hash")
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"the inclusion proof for leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 section 2.1.4.2: raise ``ProofError`` unless ``proof`` shows that the tree of ``new_size`` leaves
    with root ``new_root`` extends the tree of ``old_size`` leaves with root ``old_root``.

    Equal sizes need an empty proof and equal roots. Size 0 is refused: every tree extends the empty tree, so such
    a proof shows nothing."""
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    _check_proof(proof)
    if not 0 < old_size <= new_size <= MAX_TREE_SIZE:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}: need 0 < old <= new")
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between trees of the same size must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    # Step 2: when the old tree is a complete subtree, its root is the proof's implicit first element.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_hash = new_hash = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            old_hash = node_hash(sibling, old_hash)
            new_hash = node_hash(sibling, new_hash)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            new_hash = node_hash(new_hash, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if old_hash != old_root:
        raise ProofError(f"the consistency proof does not lead to the root of the old tree of size {old_size}")
    if new_hash != new_root:
        raise ProofError(f"the consistency proof does not lead to the root of the new tree of size {new_size}")


def _check_size(size: int, *, minimum: int) -> None:
    if not minimum <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {size} is not between {minimum} and {MAX_TREE_SIZE}")


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"the {what} is {len(value)} bytes long, not {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes]) -> None:
    # A tree of at most 2**63 leaves is at most 63 levels deep, and each level contributes at most one hash.
    if len(proof) > 64:
        raise ProofError(f"a proof of {len(proof)} hashes is longer than any tree is deep")
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {position} is {len(value)} bytes long, not {HASH_SIZE}")
