"""The C-library search used for full scans finds exactly what ``bytes.find`` finds, in place."""

from __future__ import annotations

import mmap
import tempfile
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ds01_query.scan.bytescan import Searcher, finder

if TYPE_CHECKING:
    from pathlib import Path


@given(
    block=st.binary(max_size=300),
    needle=st.binary(min_size=1, max_size=6),
    start=st.integers(-5, 310),
    stop=st.integers(-5, 310),
)
def test_same_offsets_as_bytes_find(block: bytes, needle: bytes, start: int, stop: int) -> None:
    """Any needle, any bounds (negative, past the end, empty range): the offset bytes.find gives."""
    block = block + needle + block  # the needle is there at least once
    assert finder(block, worth_loading=0)(needle, start, stop) == block.find(needle, start, stop)


def test_every_occurrence_in_a_large_block() -> None:
    """Walking a block from hit to hit finds every occurrence, the last one included."""
    block = b'{"user":"bob"}\n' * 100_000 + b'{"user":"alice"}\n' + b"x" * 1000 + b'"alice"'
    find = finder(block)
    hits = []
    position = find(b'"alice"', 0, len(block))
    while position >= 0:
        hits.append(position)
        position = find(b'"alice"', position + 1, len(block))
    assert hits == [block.index(b'"alice"'), len(block) - 7]


@given(
    block=st.binary(min_size=1, max_size=300),
    needle=st.binary(min_size=2, max_size=6),
    start=st.integers(-5, 310),
    stop=st.integers(-5, 310),
)
def test_mapped_file_same_offsets(block: bytes, needle: bytes, start: int, stop: int) -> None:
    """Searching a map of the file in place (or a read-only one) gives bytes.find's offsets."""
    block = block + needle + block
    with tempfile.TemporaryFile() as handle:
        handle.write(block)
        handle.flush()
        for access in (mmap.ACCESS_COPY, mmap.ACCESS_READ):
            with (
                mmap.mmap(handle.fileno(), 0, access=access) as mapped,
                Searcher(mapped, worth_loading=0) as searcher,
            ):
                assert searcher.find(needle, start, stop) == block.find(needle, start, stop)


def test_searcher_holds_the_map_until_closed(tmp_path: Path) -> None:
    """The map's memory is held (searched in place) while the searcher is open, and let go after."""
    path = tmp_path / "log"
    path.write_bytes(b'{"user":"alice"}\n' * 1000)
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    searcher = Searcher(mapped, worth_loading=0)
    assert searcher.find(b'"alice"', 20, len(mapped)) == 17 + 8
    with pytest.raises(BufferError):
        mapped.close()  # exported to memmem: cannot be unmapped under it
    searcher.close()
    searcher.close()  # twice is harmless
    mapped.close()


def test_searchers_over_two_maps_close_in_any_order(tmp_path: Path) -> None:
    """Two open searchers (a log and its rotated sibling) each let their own map go."""
    maps = []
    for name in ("events.jsonl.1", "events.jsonl"):
        path = tmp_path / name
        path.write_bytes(b'{"user":"%s"}\n' % name.encode() * 100)
        with path.open("rb") as handle:
            maps.append(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY))
    first, second = (Searcher(m, worth_loading=0) for m in maps)
    assert first.find(b".1", 0, len(maps[0])) == 21
    assert second.find(b".1", 0, len(maps[1])) == -1
    first.close()
    maps[0].close()
    with pytest.raises(BufferError):
        maps[1].close()
    second.close()
    maps[1].close()


class _NoCApi:
    """Stands in for ``ctypes.pythonapi``: any use of the interpreter's C API fails."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(name)

    def __getitem__(self, name: str) -> object:
        raise AssertionError(name)


def test_the_map_is_searched_in_place_without_the_c_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map's address comes from ctypes' own from_buffer, never from ctypes.pythonapi."""
    import ctypes

    monkeypatch.setattr(ctypes, "pythonapi", _NoCApi())
    path = tmp_path / "log"
    path.write_bytes(b'{"user":"bob"}\n' * 1000 + b'{"user":"alice"}\n')
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    with Searcher(mapped, worth_loading=0) as searcher:
        assert searcher.find(b'"alice"', 0, len(mapped)) == 15 * 1000 + 8
        with pytest.raises(BufferError):
            mapped.close()  # held by the searcher: searched in place, in C
    mapped.close()
