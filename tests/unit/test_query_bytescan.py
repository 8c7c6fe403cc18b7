"""The C-library search used for full scans finds exactly what ``bytes.find`` finds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ds01_events.bytescan import finder


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
