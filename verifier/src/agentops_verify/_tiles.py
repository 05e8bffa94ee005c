"""The evidence log's storage layout (LOG.md section 4): C2SP ``tlog-tiles`` hash tiles and entry bundles.

A hash tile at level ``L`` holds up to 256 consecutive node hashes of tree level ``8 * L`` (level 0: leaf hashes);
a full one is 256 hashes (8,192 bytes) at ``tile/<L>/<N>``, the rightmost ones of a tree are partial, ``W`` < 256
hashes at ``tile/<L>/<N>.p/<W>``. Entry bundles hold the leaves themselves, each a big-endian 16-bit length and the
leaf bytes, at ``tile/entries/<N>[.p/<W>]``. ``<N>`` is written in zero-padded groups of three digits, every group
but the last prefixed with ``x`` (1234067 is ``x001/x234/067``).

``TileBuilder`` appends leaves and says which tiles to write; it keeps only the tiles that can still change (at most
255 hashes per level and 255 leaves). ``TileReader`` serves subtree hashes from stored tiles to the proof functions
of ``_merkle``. Paths here are relative to the log's prefix (``log/`` in the bucket). No I/O: the caller passes a
function that reads one tile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ._errors import EvidenceLogError
from ._merkle import HASH_SIZE, MAX_TREE_SIZE, fold_edge, leaf_hash, perfect_root

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
# C2SP tlog-tiles: <L> is between 0 and 63.
MAX_TILE_LEVEL = 63
# An entry is prefixed by a big-endian 16-bit length, so it holds at most this many bytes.
MAX_ENTRY_SIZE = 0xFFFF

TileRead = Callable[[str], bytes]
"""Reads one tile or entry bundle by its path (relative to the log's prefix); raises when it is not there."""


class TileError(EvidenceLogError):
    """A tile or entry bundle is missing, has the wrong size, or does not fit the rest of the log."""


def tile_index_path(index: int) -> str:
    """C2SP tlog-tiles ``<N>``: 3-digit zero-padded groups, all but the last prefixed with ``x``."""
    if index < 0:
        raise ValueError(f"a tile index is not negative: {index}")
    groups = []
    while True:
        index, group = divmod(index, 1000)
        groups.append(f"{group:03d}")
        if index == 0:
            break
    groups.reverse()
    return "/".join([*("x" + group for group in groups[:-1]), groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>`` for a full hash tile, ``tile/<L>/<N>.p/<W>`` for a partial one of ``width`` hashes."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} is not between 0 and {MAX_TILE_LEVEL}")
    return f"tile/{level}/{tile_index_path(index)}{_width_suffix(width)}"


def entry_bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>`` for a full entry bundle, ``tile/entries/<N>.p/<W>`` for a partial one."""
    return f"tile/entries/{tile_index_path(index)}{_width_suffix(width)}"


def _width_suffix(width: int) -> str:
    if width == TILE_WIDTH:
        return ""
    if not 0 < width < TILE_WIDTH:
        raise ValueError(f"a tile holds 1 to {TILE_WIDTH} entries, not {width}")
    return f".p/{width}"


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """C2SP tlog-tiles entry bundle: each entry as a big-endian 16-bit length followed by its bytes."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"an entry of {len(entry)} bytes does not fit a 16-bit length")
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def split_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle; ``TileError`` when its lengths do not add up to its size exactly."""
    entries = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise TileError("the entry bundle ends inside an entry's length")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(data):
            raise TileError("the entry bundle ends inside an entry")
        entries.append(data[offset : offset + length])
        offset += length
    return entries


def split_hash_tile(data: bytes, width: int) -> list[bytes]:
    """The ``width`` hashes of a hash tile; ``TileError`` unless it is exactly ``width`` hashes long."""
    if len(data) != width * HASH_SIZE:
        raise TileError(f"a tile of {width} hashes is {width * HASH_SIZE} bytes long, not {len(data)}")
    return [data[offset : offset + HASH_SIZE] for offset in range(0, len(data), HASH_SIZE)]


@dataclass(frozen=True)
class Tile:
    """One object to store: a hash tile (``level`` >= 0) or an entry bundle (``level`` None)."""

    level: int | None
    index: int
    width: int
    data: bytes

    @property
    def path(self) -> str:
        if self.level is None:
            return entry_bundle_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH


def partial_widths(size: int) -> Iterator[tuple[int, int, int]]:
    """C2SP tlog-tiles: ``(level, index, width)`` of each partial hash tile of a tree of ``size`` leaves, level 0
    first. Level ``L`` has a partial tile of ``floor(size / 256**L) mod 256`` hashes when that is not 0."""
    level = 0
    while size >> (TILE_HEIGHT * level):
        nodes = size >> (TILE_HEIGHT * level)
        if nodes % TILE_WIDTH:
            yield level, nodes // TILE_WIDTH, nodes % TILE_WIDTH
        level += 1


class TileBuilder:
    """Appends leaves to a tiled log and produces the tiles and entry bundles to store, byte for byte as C2SP
    tlog-tiles lays them out, so a rerun produces the same bytes.

    It holds the log's right edge as the tiles that can still change: the partial hash tile of each level and the
    partial entry bundle (at most 255 hashes per level and 255 leaves), which is all that the root and the next
    tiles depend on. ``resume`` loads them for a published size; ``append`` returns the full tiles a leaf
    completes; ``partial_tiles`` gives the partial ones of the current size; ``root`` the tree's root hash."""

    def __init__(self) -> None:
        self._size = 0
        self._levels: list[list[bytes]] = [[]]
        self._entries: list[bytes] = []

    @classmethod
    def resume(cls, size: int, read: TileRead, *, root: bytes | None = None) -> TileBuilder:
        """The builder of a log of ``size`` leaves, from its stored partial tiles and partial entry bundle.

        Checks that the partial entry bundle's leaves hash to the partial level-0 tile and, when ``root`` is given
        (the root of the last published checkpoint, of ``size`` leaves), that the tiles hash to it (LOG.md section
        4): the root depends on exactly these tiles, so an edited or forged one is refused before anything is
        appended to it."""
        if not 0 <= size <= MAX_TREE_SIZE:
            raise ValueError(f"tree size {size} is not between 0 and {MAX_TREE_SIZE}")
        builder = cls()
        builder._size = size
        builder._levels = [[] for _ in range(max(1, _levels_of(size)))]
        for level, index, width in partial_widths(size):
            builder._levels[level] = split_hash_tile(read(tile_path(level, index, width)), width)
        width = size % TILE_WIDTH
        if width:
            entries = split_entry_bundle(read(entry_bundle_path(size // TILE_WIDTH, width)))
            if len(entries) != width:
                raise TileError(f"the partial entry bundle holds {len(entries)} entries, not {width}")
            if [leaf_hash(entry) for entry in entries] != builder._levels[0]:
                raise TileError("the partial entry bundle does not hash to the partial level-0 tile")
            builder._entries = entries
        if root is not None and builder.root() != root:
            raise TileError(f"the stored tiles of the log of size {size} do not hash to its checkpoint's root")
        return builder

    @property
    def size(self) -> int:
        return self._size

    def append(self, entry: bytes) -> list[Tile]:
        """Add one leaf; return the full entry bundle and hash tiles it completes (usually none)."""
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"an entry of {len(entry)} bytes does not fit a 16-bit length")
        if self._size == MAX_TREE_SIZE:
            raise ValueError("the log is full")
        leaf_index = self._size
        completed = []
        self._entries.append(entry)
        if len(self._entries) == TILE_WIDTH:
            completed.append(Tile(None, leaf_index >> TILE_HEIGHT, TILE_WIDTH, encode_entry_bundle(self._entries)))
            self._entries = []
        carry = leaf_hash(entry)
        level = 0
        while True:
            if level == len(self._levels):
                self._levels.append([])
            hashes = self._levels[level]
            hashes.append(carry)
            if len(hashes) < TILE_WIDTH:
                break
            # A full tile: stored, and its root becomes the next hash of the tile one level up.
            completed.append(Tile(level, leaf_index >> (TILE_HEIGHT * (level + 1)), TILE_WIDTH, b"".join(hashes)))
            carry = perfect_root(hashes)
            self._levels[level] = []
            level += 1
        self._size += 1
        return completed

    def partial_tiles(self) -> list[Tile]:
        """The partial entry bundle and partial hash tiles of the current size (none is empty)."""
        tiles = []
        if self._entries:
            tiles.append(Tile(None, self._size >> TILE_HEIGHT, len(self._entries), encode_entry_bundle(self._entries)))
        for level, index, width in partial_widths(self._size):
            tiles.append(Tile(level, index, width, b"".join(self._levels[level])))
        return tiles

    def root(self) -> bytes:
        """MTH of the whole log: the complete subtrees within each partial tile, top level (leftmost) first."""
        edge = []
        for hashes in reversed(self._levels):
            start = 0
            for height in range(TILE_HEIGHT - 1, -1, -1):
                if len(hashes) >> height & 1:
                    edge.append(perfect_root(hashes[start : start + (1 << height)]))
                    start += 1 << height
        return fold_edge(edge)


def _levels_of(size: int) -> int:
    """How many tile levels a tree of ``size`` leaves has."""
    levels = 0
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return levels


class TileReader:
    """Subtree hashes (``_merkle.NodeReader``) of a tree of ``size`` leaves, read from its stored hash tiles.

    A subtree of height ``8 * L + r`` is ``2**r`` consecutive hashes of one level-``L`` tile, hashed together. The
    tiles read are kept for the reader's lifetime (a proof touches at most two per level), so make one reader per
    request."""

    def __init__(self, size: int, read: TileRead) -> None:
        if not 0 <= size <= MAX_TREE_SIZE:
            raise ValueError(f"tree size {size} is not between 0 and {MAX_TREE_SIZE}")
        self._size = size
        self._read = read
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def subtree_hash(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height
        last = first + (1 << height)
        if last << (TILE_HEIGHT * tile_level) > self._size:
            raise ValueError(f"the subtree {index} of height {level} is not complete in a tree of size {self._size}")
        hashes = self._tile(tile_level, first >> TILE_HEIGHT)
        offset = first % TILE_WIDTH
        return perfect_root(hashes[offset : offset + (1 << height)])

    def entry(self, index: int) -> bytes:
        """The leaf bytes at ``index``, from its entry bundle, checked against the leaf hash in the level-0 tile."""
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} is not in a tree of size {self._size}")
        bundle = index // TILE_WIDTH
        width = min(TILE_WIDTH, self._size - bundle * TILE_WIDTH)
        entries = split_entry_bundle(self._read(entry_bundle_path(bundle, width)))
        if len(entries) != width:
            raise TileError(f"the entry bundle {bundle} holds {len(entries)} entries, not {width}")
        entry = entries[index % TILE_WIDTH]
        if leaf_hash(entry) != self.subtree_hash(0, index):
            raise TileError(f"entry {index} does not hash to its leaf hash in the level-0 tile")
        return entry

    def _tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self._tiles:
            width = min(TILE_WIDTH, (self._size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH)
            self._tiles[key] = split_hash_tile(self._read(tile_path(level, index, width)), width)
        return self._tiles[key]
