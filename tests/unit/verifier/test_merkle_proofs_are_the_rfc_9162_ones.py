"""The evidence log's Merkle tree (LOG.md section 1, RFC 9162 section 2.1): roots, inclusion and consistency proofs.

Trees of 0 to 70 leaves, and trees around the tile boundaries (255, 256, 257 leaves and 65,536 +- 1), are built with
``TileBuilder`` and their tiles stored at every size, as the sealer publishes them. Every proof made from the tiles
(``TileReader``) is compared with a straightforward recursive transcription of RFC 9162 sections 2.1.1 (MTH),
2.1.3.1 (PATH) and 2.1.4.1 (PROOF, SUBPROOF), and must verify; every edited proof must not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from agentops_verify import (
    EMPTY_ROOT,
    ProofError,
    TileBuilder,
    TileReader,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 9162 section 2.1, transcribed literally -----------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """2.1.1: MTH({}) = SHA-256(); MTH({d0}) = SHA-256(0x00 || d0); else split at k."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[0])
    k = largest_power_of_two_below(n)
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """2.1.3.1: PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return subproof(m, leaves, start_of_tree=True)


def subproof(m: int, leaves: Sequence[bytes], *, start_of_tree: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if start_of_tree else [mth(leaves)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*subproof(m, leaves[:k], start_of_tree=start_of_tree), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], start_of_tree=False), mth(leaves[:k])]


# --- Trees as the log stores them --------------------------------------------------------------------------------


def leaf_data(index: int) -> bytes:
    return f"leaf {index}".encode()


class StoredLog:
    """A log of ``size`` leaves whose partial tiles were published at each size in ``published``."""

    def __init__(self, size: int, published: set[int]) -> None:
        self.tiles: dict[str, bytes] = {}
        builder = TileBuilder()
        self.roots = {0: builder.root()} if 0 in published else {}
        for index in range(size):
            for tile in builder.append(leaf_data(index)):
                self.tiles[tile.path] = tile.data
            if builder.size in published:
                for tile in builder.partial_tiles():
                    self.tiles[tile.path] = tile.data
                self.roots[builder.size] = builder.root()

    def reader(self, size: int) -> TileReader:
        return TileReader(size, self.tiles.__getitem__)


SMALL = 70
SMALL_LOG = StoredLog(SMALL, set(range(SMALL + 1)))
SMALL_LEAVES = [leaf_data(index) for index in range(SMALL)]
BOUNDARY_SIZES = (255, 256, 257)
BOUNDARY_LOG = StoredLog(257, set(range(258)))
BOUNDARY_LEAVES = [leaf_data(index) for index in range(257)]


@cache
def reference_root(size: int) -> bytes:
    return mth(BOUNDARY_LEAVES[:size])


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert sha256(b"") == EMPTY_ROOT
    assert TileBuilder().root() == EMPTY_ROOT
    assert tree_root(0, SMALL_LOG.reader(0)) == EMPTY_ROOT


def test_leaf_and_node_hashes_have_their_rfc_9162_prefixes() -> None:
    assert leaf_hash(b"abc") == sha256(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)


@pytest.mark.parametrize("size", range(SMALL + 1))
def test_root_of_every_small_tree_is_the_rfc_mth(size: int) -> None:
    expected = mth(SMALL_LEAVES[:size])
    assert SMALL_LOG.roots[size] == expected
    assert tree_root(size, SMALL_LOG.reader(size)) == expected


@pytest.mark.parametrize("size", range(1, SMALL + 1))
def test_every_inclusion_proof_of_every_small_tree_is_the_rfc_path_and_verifies(size: int) -> None:
    reader = SMALL_LOG.reader(size)
    root = SMALL_LOG.roots[size]
    for index in range(size):
        made = inclusion_proof(index, size, reader)
        assert made == path(index, SMALL_LEAVES[:size])
        verify_inclusion(leaf_hash(SMALL_LEAVES[index]), index, size, made, root)


@pytest.mark.parametrize("new_size", range(1, SMALL + 1))
def test_every_consistency_proof_of_every_small_tree_is_the_rfc_proof_and_verifies(new_size: int) -> None:
    reader = SMALL_LOG.reader(new_size)
    for old_size in range(1, new_size + 1):
        made = consistency_proof(old_size, new_size, reader)
        assert made == proof(old_size, SMALL_LEAVES[:new_size])
        verify_consistency(old_size, new_size, SMALL_LOG.roots[old_size], SMALL_LOG.roots[new_size], made)


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_every_proof_around_the_first_tile_boundary_is_the_rfc_one(size: int) -> None:
    reader = BOUNDARY_LOG.reader(size)
    leaves = BOUNDARY_LEAVES[:size]
    assert tree_root(size, reader) == reference_root(size) == BOUNDARY_LOG.roots[size]
    for index in range(size):
        made = inclusion_proof(index, size, reader)
        assert made == path(index, leaves)
        verify_inclusion(leaf_hash(leaves[index]), index, size, made, reference_root(size))
    for old_size in range(1, size + 1):
        made = consistency_proof(old_size, size, reader)
        assert made == proof(old_size, leaves)
        verify_consistency(old_size, size, reference_root(old_size), reference_root(size), made)


LARGE_SIZES = (65535, 65536, 65537)


@pytest.fixture(scope="module")
def large_log() -> StoredLog:
    """A tree that reaches the third tile level (65,536 leaves fill one level-1 tile)."""
    return StoredLog(max(LARGE_SIZES), set(LARGE_SIZES))


@pytest.mark.parametrize("size", LARGE_SIZES)
def test_proofs_around_the_second_tile_boundary_are_the_rfc_ones(large_log: StoredLog, size: int) -> None:
    leaves = [leaf_data(index) for index in range(size)]
    leaf_hashes = [leaf_hash(leaf) for leaf in leaves]

    @cache
    def mth_of(start: int, end: int) -> bytes:
        # MTH of leaves[start:end] as 2.1.1 defines it, memoized over ranges so a 65,536-leaf tree stays fast.
        if end - start == 1:
            return leaf_hashes[start]
        k = largest_power_of_two_below(end - start)
        return node_hash(mth_of(start, start + k), mth_of(start + k, end))

    def path_of(m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = largest_power_of_two_below(end - start)
        if m < k:
            return [*path_of(m, start, start + k), mth_of(start + k, end)]
        return [*path_of(m - k, start + k, end), mth_of(start, start + k)]

    def subproof_of(m: int, start: int, end: int, *, start_of_tree: bool) -> list[bytes]:
        if m == end - start:
            return [] if start_of_tree else [mth_of(start, end)]
        k = largest_power_of_two_below(end - start)
        if m <= k:
            return [*subproof_of(m, start, start + k, start_of_tree=start_of_tree), mth_of(start + k, end)]
        return [*subproof_of(m - k, start + k, end, start_of_tree=False), mth_of(start, start + k)]

    reader = large_log.reader(size)
    assert tree_root(size, reader) == mth_of(0, size) == large_log.roots[size]
    for index in (0, 1, 255, 256, 257, 65279, 65280, size - 2, size - 1):
        made = inclusion_proof(index, size, reader)
        assert made == path_of(index, 0, size)
        verify_inclusion(leaf_hashes[index], index, size, made, large_log.roots[size])
    for old_size in (1, 2, 255, 256, 257, 65280, *LARGE_SIZES):
        if old_size <= size:
            made = consistency_proof(old_size, size, reader)
            assert made == subproof_of(old_size, 0, size, start_of_tree=True)
            verify_consistency(old_size, size, mth_of(0, old_size), large_log.roots[size], made)


# --- Edited proofs are refused -----------------------------------------------------------------------------------

SIZE = 13
ROOT = SMALL_LOG.roots[SIZE]


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x01]) + value[1:]


@pytest.mark.parametrize("index", range(SIZE))
def test_inclusion_proof_with_any_hash_edited_is_refused(index: int) -> None:
    good = inclusion_proof(index, SIZE, SMALL_LOG.reader(SIZE))
    for position in range(len(good)):
        edited = [flip(value) if at == position else value for at, value in enumerate(good)]
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(SMALL_LEAVES[index]), index, SIZE, edited, ROOT)


# A proof does not pin the tree size on its own: sizes whose trees have the same shape along the leaf's path (13 and
# 14 for leaf 0) accept the same proof. The signed checkpoint binds size and root together (LOG.md section 3).
@pytest.mark.parametrize("index", range(SIZE))
def test_inclusion_proof_shortened_lengthened_or_for_another_position_is_refused(index: int) -> None:
    good = inclusion_proof(index, SIZE, SMALL_LOG.reader(SIZE))
    leaf = leaf_hash(SMALL_LEAVES[index])
    attempts = [
        (leaf, index, SIZE, good[:-1]),
        (leaf, index, SIZE, [*good, good[-1]]),
        (leaf, index, SIZE, [good[0], *good]),
        (leaf, (index + 1) % SIZE, SIZE, good),
        (leaf, index, 2 * SIZE, good),
        (leaf, SIZE, SIZE, good),
        (leaf_hash(b"another leaf"), index, SIZE, good),
    ]
    for attempt in attempts:
        with pytest.raises(ProofError):
            verify_inclusion(*attempt, ROOT)


@pytest.mark.parametrize("old_size", range(1, SIZE))
def test_consistency_proof_edited_shortened_or_for_other_sizes_is_refused(old_size: int) -> None:
    good = consistency_proof(old_size, SIZE, SMALL_LOG.reader(SIZE))
    old_root = SMALL_LOG.roots[old_size]
    for position in range(len(good)):
        edited = [flip(value) if at == position else value for at, value in enumerate(good)]
        with pytest.raises(ProofError):
            verify_consistency(old_size, SIZE, old_root, ROOT, edited)
    attempts = [
        (old_size, SIZE, old_root, ROOT, good[:-1]),
        (old_size, SIZE, old_root, ROOT, [*good, good[-1]]),
        (old_size, SIZE, old_root, flip(ROOT), good),
        (old_size, SIZE, flip(old_root), ROOT, good),
        (old_size, 2 * SIZE, old_root, ROOT, good),
        (old_size + 1, SIZE, old_root, ROOT, good),
        (old_size, SIZE, ROOT, old_root, good),
    ]
    for attempt in attempts:
        with pytest.raises(ProofError):
            verify_consistency(*attempt)


def test_consistency_from_size_zero_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="0 < old <= new"):
        consistency_proof(0, SIZE, SMALL_LOG.reader(SIZE))
    with pytest.raises(ProofError):
        verify_consistency(0, SIZE, EMPTY_ROOT, ROOT, [])


def test_equal_sizes_need_an_empty_proof_and_one_root() -> None:
    assert consistency_proof(SIZE, SIZE, SMALL_LOG.reader(SIZE)) == []
    verify_consistency(SIZE, SIZE, ROOT, ROOT, [])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(SIZE, SIZE, ROOT, flip(ROOT), [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(SIZE, SIZE, ROOT, ROOT, [ROOT])


def test_hashes_of_the_wrong_length_are_refused_before_any_hashing() -> None:
    good = inclusion_proof(3, SIZE, SMALL_LOG.reader(SIZE))
    with pytest.raises(ProofError, match="proof hash 1"):
        root_from_inclusion_proof(leaf_hash(SMALL_LEAVES[3]), 3, SIZE, [good[0], good[1][:31], *good[2:]])
    with pytest.raises(ProofError, match="leaf hash"):
        root_from_inclusion_proof(b"", 3, SIZE, good)
    with pytest.raises(ProofError, match="longer than any tree"):
        root_from_inclusion_proof(leaf_hash(SMALL_LEAVES[3]), 3, SIZE, [ROOT] * 65)


def test_proofs_cannot_be_asked_for_leaves_or_sizes_outside_the_tree() -> None:
    reader = SMALL_LOG.reader(SIZE)
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(SIZE, SIZE, reader)
    with pytest.raises(ValueError, match="0 < old <= new"):
        consistency_proof(SIZE, SIZE - 1, reader)
    with pytest.raises(ValueError, match="not complete"):
        reader.subtree_hash(4, 0)  # 16 leaves, but the tree has 13
