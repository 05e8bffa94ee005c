"""The log's storage layout (LOG.md section 4): C2SP tlog-tiles paths, partial tiles and entry bundles, and the
``TileBuilder`` that the sealer publishes with (write-once tiles, identical bytes on a rerun, a resumed log checked
against its published root)."""

from __future__ import annotations

import pytest
from agentops_verify import (
    TILE_WIDTH,
    Tile,
    TileBuilder,
    TileError,
    TileReader,
    encode_entry_bundle,
    entry_bundle_path,
    leaf_hash,
    split_entry_bundle,
    tile_path,
)
from agentops_verify._tiles import partial_widths, tile_index_path


def entry(index: int) -> bytes:
    return f'{{"leaf":{index}}}'.encode()


def build(size: int) -> tuple[TileBuilder, dict[str, bytes]]:
    """A log of ``size`` entries and everything it stored (full tiles as they fill, partial tiles at the end)."""
    builder = TileBuilder()
    stored: dict[str, bytes] = {}
    for index in range(size):
        for tile in builder.append(entry(index)):
            stored[tile.path] = tile.data
    for tile in builder.partial_tiles():
        stored[tile.path] = tile.data
    return builder, stored


# --- Paths (C2SP tlog-tiles, "Merkle Tree" and "Log entries") ----------------------------------------------------


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),  # the example of the C2SP text
        (1_000_000, "x001/x000/000"),
        (2**40, "x001/x099/x511/x627/776"),
    ],
)
def test_tile_index_is_written_in_x_prefixed_groups_of_three_digits(index: int, encoded: str) -> None:
    assert tile_index_path(index) == encoded


def test_full_and_partial_tile_paths() -> None:
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 5, 17) == "tile/2/005.p/17"
    assert tile_path(63, 0, 1) == "tile/63/000.p/1"
    assert entry_bundle_path(1234067) == "tile/entries/x001/x234/067"
    assert entry_bundle_path(3, 255) == "tile/entries/003.p/255"


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda: tile_path(64, 0), "level"),
        (lambda: tile_path(-1, 0), "level"),
        (lambda: tile_path(0, 0, 0), "1 to 256"),
        (lambda: tile_path(0, 0, 257), "1 to 256"),
        (lambda: entry_bundle_path(0, 0), "1 to 256"),
        (lambda: tile_path(0, -1), "not negative"),
    ],
)
def test_paths_outside_the_layout_are_refused(make_path: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_path()  # type: ignore[operator]


def test_size_70000_is_stored_as_the_c2sp_example_says() -> None:
    """C2SP: 273 full level-0 tiles, a partial level-0 tile of width 112, one full level-1 tile, a partial level-1
    tile of width 17, a partial level-2 tile of width 1."""
    assert list(partial_widths(70_000)) == [(0, 273, 112), (1, 1, 17), (2, 0, 1)]
    _, stored = build(70_000)
    level0 = [path for path in stored if path.startswith("tile/0/")]
    assert len(level0) == 274
    assert "tile/0/272" in stored
    assert "tile/0/273.p/112" in stored
    assert sorted(path for path in stored if path.startswith("tile/1/")) == ["tile/1/000", "tile/1/001.p/17"]
    assert [path for path in stored if path.startswith("tile/2/")] == ["tile/2/000.p/1"]
    entries = [path for path in stored if path.startswith("tile/entries/")]
    assert len(entries) == 274
    assert entry_bundle_path(273, 112) in stored
    assert all(len(stored[tile_path(0, index)]) == 8192 for index in range(273))
    assert len(stored[tile_path(0, 273, 112)]) == 112 * 32


def test_size_256_is_one_full_tile_and_a_partial_level_1_tile_of_width_1() -> None:
    builder, stored = build(256)
    assert sorted(stored) == ["tile/0/000", "tile/1/000.p/1", "tile/entries/000"]
    assert stored["tile/1/000.p/1"] == builder.root()


def test_empty_tiles_are_never_produced() -> None:
    for size in (0, 256, 512, 65536):
        assert all(width > 0 for _, _, width in partial_widths(size))
    assert TileBuilder().partial_tiles() == []


def test_level_1_hash_is_the_root_of_the_full_level_0_tile_below() -> None:
    _, stored = build(512)
    level0 = stored["tile/0/001"]
    hashes = [level0[offset : offset + 32] for offset in range(0, 8192, 32)]
    assert hashes == [leaf_hash(entry(index)) for index in range(256, 512)]
    reader = TileReader(512, stored.__getitem__)
    assert stored["tile/1/000.p/2"][32:] == reader.subtree_hash(8, 1)


# --- Entry bundles -----------------------------------------------------------------------------------------------


def test_entry_bundle_is_big_endian_16_bit_lengths_and_the_entries() -> None:
    assert encode_entry_bundle([b"ab", b"", b"x" * 300]) == b"\x00\x02ab\x00\x00\x01\x2c" + b"x" * 300
    assert split_entry_bundle(b"\x00\x02ab\x00\x00\x01\x2c" + b"x" * 300) == [b"ab", b"", b"x" * 300]


@pytest.mark.parametrize("data", [b"\x00", b"\x00\x03ab", b"\x00\x02ab\x00"])
def test_truncated_entry_bundle_is_refused(data: bytes) -> None:
    with pytest.raises(TileError, match="ends inside"):
        split_entry_bundle(data)


def test_entry_longer_than_a_16_bit_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16-bit"):
        encode_entry_bundle([b"x" * 65536])
    with pytest.raises(ValueError, match="16-bit"):
        TileBuilder().append(b"x" * 65536)


# --- Building, resuming and reading ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 513, 1000])
def test_tiles_and_bundles_are_the_leaves_laid_out(size: int) -> None:
    builder, stored = build(size)
    reader = TileReader(size, stored.__getitem__)
    for index in range(size):
        assert reader.entry(index) == entry(index)
        assert reader.subtree_hash(0, index) == leaf_hash(entry(index))
    assert builder.size == size


@pytest.mark.parametrize(("published", "total"), [(0, 300), (1, 300), (255, 600), (256, 600), (257, 600), (300, 70000)])
def test_resumed_log_writes_the_same_bytes_as_one_that_never_stopped(published: int, total: int) -> None:
    """A sealer run that resumes from the stored tiles of the last checkpoint (or a crashed run retried) produces
    exactly the tiles of a log built in one go: write-once objects never see two contents."""
    _, straight = build(total)
    first, stored = build(published)
    resumed = TileBuilder.resume(published, stored.__getitem__)
    assert resumed.size == published
    assert resumed.root() == first.root()
    for index in range(published, total):
        for tile in resumed.append(entry(index)):
            assert straight[tile.path] == tile.data
            stored[tile.path] = tile.data
    for tile in resumed.partial_tiles():
        stored[tile.path] = tile.data
    assert resumed.root() == build(total)[0].root()
    for path, data in straight.items():
        assert stored[path] == data


def test_edited_partial_tile_is_refused_against_the_checkpoint_root() -> None:
    """A forged or edited log state: the root rebuilt from the stored partial tiles is not the checkpoint's, so
    the sealer stops before appending to it."""
    builder, stored = build(70_000)
    assert TileBuilder.resume(70_000, stored.__getitem__, root=builder.root()).size == 70_000
    stored[tile_path(1, 1, 17)] = b"\xff" + stored[tile_path(1, 1, 17)][1:]
    assert TileBuilder.resume(70_000, stored.__getitem__).root() != builder.root()
    with pytest.raises(TileError, match="do not hash to its checkpoint's root"):
        TileBuilder.resume(70_000, stored.__getitem__, root=builder.root())


def test_partial_entry_bundle_that_does_not_match_its_tile_is_refused() -> None:
    _, stored = build(300)
    stored[entry_bundle_path(1, 44)] = encode_entry_bundle([entry(index + 1) for index in range(256, 300)])
    with pytest.raises(TileError, match="does not hash to the partial level-0 tile"):
        TileBuilder.resume(300, stored.__getitem__)


def test_partial_tile_of_the_wrong_length_is_refused() -> None:
    _, stored = build(300)
    stored[tile_path(0, 1, 44)] = stored[tile_path(0, 1, 44)][:-1]
    with pytest.raises(TileError, match="44 hashes"):
        TileBuilder.resume(300, stored.__getitem__)
    with pytest.raises(TileError, match="44 hashes"):
        TileReader(300, stored.__getitem__).subtree_hash(0, 299)


def test_entry_that_does_not_hash_to_its_tile_is_refused_by_the_reader() -> None:
    _, stored = build(10)
    stored[entry_bundle_path(0, 10)] = encode_entry_bundle([entry(index) for index in range(9)] + [b"forged"])
    with pytest.raises(TileError, match="does not hash to its leaf hash"):
        TileReader(10, stored.__getitem__).entry(9)


def test_tile_reports_where_it_is_stored() -> None:
    assert Tile(None, 2, 10, b"").path == "tile/entries/002.p/10"
    assert Tile(3, 2, TILE_WIDTH, b"").path == "tile/3/002"
    assert Tile(3, 2, 10, b"").is_partial
