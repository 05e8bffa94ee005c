"""Reading an archive object as a stream of chunks: lines, checksum and the byte index that later pages seek with."""

from __future__ import annotations

import hashlib
import itertools

from agentops_server.archive_reader import ArchiveLines
from hypothesis import given, settings
from hypothesis import strategies as st

_LINES = st.lists(
    st.binary(min_size=1, max_size=30).map(lambda raw: raw.replace(b"\n", b"x").strip() or b"{}"), max_size=40
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in itertools.pairwise(points)]


@settings(max_examples=300, deadline=None)
@given(lines=_LINES, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12), stride=st.integers(1, 5))
def test_any_chunking_gives_the_same_lines_checksum_and_index(lines: list[bytes], cuts: list[int], stride: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    reader = ArchiveLines(_chunks(data, cuts), stride)

    assert list(reader) == lines
    assert reader.line_count == len(lines)
    assert reader.sha256 == hashlib.sha256(data).hexdigest()
    # Offset k is where line k * stride starts; the last entry is the object's length.
    starts = [sum(len(line) + 1 for line in lines[:index]) for index in range(0, len(lines), stride)]
    assert reader.offsets == [*starts, len(data)]
    for block, offset in enumerate(reader.offsets[:-1]):
        assert data[offset:].split(b"\n", 1)[0] == lines[block * stride]


def test_blank_lines_and_a_missing_final_newline_are_read_as_the_verifier_reads_them() -> None:
    data = b'{"a":1}\n\n \t\r\n\x0c\n{"b":2}'

    reader = ArchiveLines([data[:5], data[5:]], 1)

    # Only JSON whitespace makes a line blank; a form feed is a (malformed) line the verifier must see.
    assert list(reader) == [b'{"a":1}', b"\x0c", b'{"b":2}']
    assert reader.offsets == [0, 13, 15, len(data)]
