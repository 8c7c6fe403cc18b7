"""Reading blocks of whole lines and decoding them: the two decoders agree, no line is cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ds01_query.engine.decoding import EventDecoder
from ds01_query.engine.reader import iter_blocks, iter_chunks
from ds01_query.scan import search
from ds01_query.scan.search import candidate_lines

if TYPE_CHECKING:
    from pathlib import Path

_msgspec_decode = msgspec.json.Decoder().decode

EDGE_LINES = [
    b'{"user":"alice"}',
    b'{"user":"al\\u0069ce","us\\u0065r":"bob"}',
    b'{"a":"\\ud800"}',
    b'{"a":"\\uD83D\\uDE00"}',
    b'{"a":"\\ud83d\\ude00"}',
    b'{"a":NaN}',
    b'{"a":-Infinity}',
    b'{"a":1e999}',
    b'{"a":-1e400}',
    b'{"a":1.5e300}',
    b'{"a":123456789012345678901234567890}',
    b'{"a":"x\x01"}',
    b'{"a":"\xff"}',
    b'\xef\xbb\xbf{"a":1}',
    b'  {"a" : 1 } \r',
    b'{"a":1}{"b":2}',
    b"[1, 2]",
    b"{broken",
    b'{"user":"a","user":"b"}',
    b'{"a":"\\x"}',
    b'{"a":01}',
]


def _reference(line: bytes) -> object:
    try:
        value = _msgspec_decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


@pytest.mark.parametrize("line", EDGE_LINES)
def test_stdlib_decoder_agrees_with_msgspec(line: bytes) -> None:
    """The decoder used for the first lines gives what msgspec gives, on every edge case."""
    assert EventDecoder()(line) == _reference(line)


FRESH_PROCESS = """
import ast, sys
from ds01_query.engine.decoding import EventDecoder
decode = EventDecoder()
decode(b'{"user": "alice"}')
print("re" in sys.modules)
print(repr([decode(line) for line in ast.literal_eval(sys.stdin.read())]))
"""


def test_stdlib_decoder_in_a_fresh_process() -> None:
    """Before anything loads json, every edge case still decodes as msgspec decodes it."""
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS],
        input=repr(EDGE_LINES),
        capture_output=True,
        text=True,
        check=True,
    )
    re_loaded, got = result.stdout.splitlines()
    assert re_loaded == "False"  # a good line costs no import of json or re
    assert got == repr([_reference(line) for line in EDGE_LINES])


@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists))
def test_decoders_agree_on_any_value(value: object) -> None:
    """Whatever a user or detail holds, both decoders read the same event."""
    for ascii_only in (True, False):
        line = json.dumps({"user": value, "x": [value]}, ensure_ascii=ascii_only).encode()
        assert EventDecoder()(line) == _reference(line)
        assert EventDecoder(cheap_lines=0)(line) == _reference(line)


def _write(path: Path, lines: list[bytes], *, final_newline: bool = True) -> None:
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))


@pytest.mark.parametrize("size", [7, 16, 64, 1 << 16])
@pytest.mark.parametrize("final_newline", [True, False])
def test_blocks_hold_whole_lines(tmp_path: Path, size: int, final_newline: bool) -> None:
    """Every line comes back once and whole, whatever the block size; longer lines too."""
    lines = [b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i * 7 % 40)) for i in range(200)]
    path = tmp_path / "events.jsonl"
    _write(path, lines, final_newline=final_newline)
    seen: list[bytes] = []
    for block, stop in iter_blocks(path, size=size):
        body = block[:stop]
        assert final_newline is False or body.endswith(b"\n")
        seen.extend(x for x in body.split(b"\n") if x)
    assert seen == lines
    assert b"".join(iter_chunks(path, size=size)) == path.read_bytes()


def test_blocks_stop_after_the_line_holding_end(tmp_path: Path) -> None:
    """An end offset inside a line finishes that line and reads nothing after it."""
    lines = [b'{"n":%d}' % i for i in range(100)]
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    data = path.read_bytes()
    start = data.index(b'{"n":10}')
    end = data.index(b'{"n":20}') + 3
    got = b"".join(block[:stop] for block, stop in iter_blocks(path, start, end, size=16))
    assert got == data[start : data.index(b'{"n":21}')]


def test_candidates_ignore_bytes_past_stop() -> None:
    """A needle in the partial line after ``stop`` is not a candidate."""
    block = b'{"user":"alice"}\n{"user":"bob"}\n{"user":"ali'
    stop = block.rindex(b"\n") + 1
    assert list(candidate_lines(block, (b'"alice"', b"\\"), stop)) == [b'{"user":"alice"}']
    assert list(candidate_lines(block, (b'"bob"',), stop)) == [b'{"user":"bob"}']
    assert list(candidate_lines(block, None, stop)) == [b'{"user":"alice"}', b'{"user":"bob"}']


@pytest.mark.parametrize("window", [16, 64, 1 << 20])
@pytest.mark.parametrize("final_newline", [True, False])
def test_mapped_scan_finds_what_reading_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, final_newline: bool
) -> None:
    """The mapped full scan yields the read path's candidates, whatever the window and range."""
    lines = [
        b'{"n":%d,"user":"%s","pad":"%s"}'
        % (i, [b"alice", b"bob", b"al\\u0069ce"][i % 3], b"x" * (i * 7 % 40))
        for i in range(300)
    ]
    path = tmp_path / "events.jsonl"
    _write(path, lines, final_newline=final_newline)
    data = path.read_bytes()
    monkeypatch.setattr(search, "SCAN_WINDOW", window)
    wanted = (b'"alice"', b"\\u006")
    for start, end in [(0, None), (data.index(b'{"n":10,'), data.index(b'{"n":200,') + 5)]:
        read = [
            line
            for block, stop in iter_blocks(path, start, end)
            for line in candidate_lines(block, wanted, stop)
        ]
        assert list(search.mapped_candidates(path, wanted, start, end)) == read
        assert len(read) > 60
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert list(search.mapped_candidates(tmp_path / "empty.jsonl", wanted)) == []


SCAN_RSS = """
import sys
from ds01_query.scan import search
search.SCAN_WINDOW = 1 << 20
def mapped_kib():
    with open("/proc/self/status") as status:
        return next(int(x.split()[1]) for x in status if x.startswith("RssFile:"))
before = mapped_kib()
found, most = 0, 0
for _ in search.mapped_candidates(sys.argv[1], (b'"alice"', b"\\\\u006")):
    found += 1
    most = max(most, mapped_kib() - before)
print(found, most)
"""


def test_full_scan_memory_stays_flat(tmp_path: Path) -> None:
    """Scanning a 64 MiB file through its map keeps no more of it mapped than a few windows."""
    path = tmp_path / "events.jsonl"
    line = b'{"user":"bob","details":{"pad":"' + b"x" * 200 + b'"}}\n'
    with path.open("wb") as handle:
        for _ in range(64):
            handle.write(line * ((1 << 20) // len(line)) + b'{"user":"alice"}\n')
        # Into the page cache as a log read back is: by readahead, in large folios (a
        # fault maps a whole folio, reaching back into windows already let go).
        handle.flush()
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", SCAN_RSS, str(path)], capture_output=True, text=True, check=True
    )
    found, most_kib = map(int, result.stdout.split())
    assert found == 64
    assert most_kib < 8 * 1024  # every page kept mapped would be 64 MiB


BISECTED_QUERY = """
import sys
from ds01_query.cli.main import main
main(["--file", sys.argv[1], "--since", "2025-11-22T05:00:00Z", "--json", "--all"])
heavy = ["datetime", "re", "json", "typing", "ctypes", "mmap", "msgspec", "typer"]
heavy += ["ds01_query.scan.bytescan"]
sys.stderr.write(" ".join(name for name in heavy if name in sys.modules))
"""


def test_a_bisected_query_loads_only_what_it_needs(tmp_path: Path) -> None:
    """A --since query loads none of the modules whose import costs more than the query."""
    path = tmp_path / "events.jsonl"
    _write(
        path,
        [b'{"timestamp":"2025-11-22T0%d:00:00.000000Z","event_type":"a.b"}' % h for h in range(9)],
    )
    result = subprocess.run(
        [sys.executable, "-c", BISECTED_QUERY, str(path)], capture_output=True, check=True
    )
    assert result.stdout.count(b"\n") == 4
    assert result.stderr == b""


def test_a_long_scan_decodes_with_msgspec_from_its_first_line() -> None:
    """Told that more than the cheap lines are coming, the decoder switches at once."""
    decoder = EventDecoder()
    before = decoder.decode
    decoder.expect(10)  # a few lines: the stdlib decoder, no import
    assert decoder.decode == before
    decoder.expect(1_000_000)
    assert decoder.decode != before
    assert decoder(b'{"user":"alice"}') == {"user": "alice"}
    assert decoder(b'{"user":') is None
