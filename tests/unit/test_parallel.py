"""A scan shared out to worker processes gives exactly the one-process answer."""

from __future__ import annotations

import gzip
import itertools
import os
import signal
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.corpus import START, generate
from ds01_query.cli.runner import UserError, worker_count
from ds01_query.engine import reader
from ds01_query.engine.query import Filters, needles
from ds01_query.scan import parallel, search
from ds01_query.scan.search import ScanStats, Segment

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

SHARE = 4096  # tiny shares, so small files are cut into many

FILTERS = [
    Filters(users=("alice",)),
    Filters(users=("józef", "1.10")),
    Filters(types=("gpu",)),
    Filters(types=("*.denied",)),
    Filters(containers=("a",)),  # a container_id prefix
    Filters(grep="MIG-3"),
    Filters(),
    Filters(since=START + timedelta(days=1), until=START + timedelta(days=2)),
    Filters(users=("bob",), since=START + timedelta(hours=30)),
]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three plain files and a .gz between them, with malformed lines, 3 days of events."""
    root = tmp_path_factory.mktemp("parallel")
    lines = list(
        generate(
            4000,
            seed=3,
            span=timedelta(days=3),
            variety=True,
            malformed=0.01,
            disorder=timedelta(seconds=60),
        )
    )
    parts = [lines[:900], lines[900:1900], lines[1900:2800], lines[2800:]]
    paths = [
        root / "events.jsonl.2",
        root / "events.jsonl.1.gz",
        root / "a.jsonl",
        root / "events.jsonl",
    ]
    for path, part in zip(paths, parts, strict=True):
        data = ("\n".join(part) + "\n").encode()
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)
    return paths


def _answer(
    files: Sequence[Path], filters: Filters, workers: int, **options: object
) -> tuple[list[bytes], dict[str, int]]:
    stats = ScanStats()
    segments = search.segments_to_read(files, filters)
    if workers == 1:
        found = search.scan(segments, needles(filters), filters, stats)
    else:
        found = parallel.iter_matches(
            segments, filters, stats, workers=workers, share_bytes=SHARE, **options
        )  # type: ignore[arg-type]
    lines = [m.line for m in found]
    return lines, stats.where


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("workers", [2, 3, 7])
def test_workers_give_the_one_process_answer(
    log: list[Path], filters: Filters, workers: int
) -> None:
    """Same lines in the same order, same malformed counts per file, for any filter."""
    expected = _answer(log, filters, 1)
    assert expected[0], "the filter should match something"
    assert _answer(log, filters, workers) == expected


def test_events_of_worker_lines_decode_like_the_parent(log: list[Path]) -> None:
    """A match a worker found decodes, on first use, to the event one process gives."""
    filters = Filters(types=("container",))
    stats = ScanStats()
    single = [
        m.event
        for m in search.scan(
            search.segments_to_read(log, filters), needles(filters), filters, stats
        )
    ]
    found = parallel.iter_matches(
        search.segments_to_read(log, filters), filters, ScanStats(), workers=3, share_bytes=SHARE
    )
    assert [m.event for m in found] == single


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=400),
    workers=st.integers(min_value=2, max_value=9),
    share=st.integers(min_value=1, max_value=20000),
    start_line=st.integers(min_value=0, max_value=50),
)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_shares_cover_every_byte_once_cut_at_line_starts(
    tmp_path: Path, sizes: list[int], workers: int, share: int, start_line: int
) -> None:
    """Shares are contiguous, meet at line starts, are at most ``workers``, none empty."""
    path = tmp_path / "log.jsonl"
    data = b"".join(b"x" * (n - 1) + b"\n" for n in sizes)
    path.write_bytes(data)
    starts = [0]
    for n in sizes:
        starts.append(starts[-1] + n)
    begin = starts[min(start_line, len(sizes) - 1)]
    shares = parallel.plan_shares([Segment(path, begin)], workers, share)
    assert 1 <= len(shares) <= workers
    pieces = [seg for share_ in shares for seg in share_]
    assert pieces[0].start == begin
    assert pieces[-1].end is None
    for left, right in itertools.pairwise(pieces):
        assert left.end == right.start
        assert right.start in starts
    # Each cut is at the first line start past an even split, so every share but the
    # last carries at least ``share_bytes``; the last holds what is left (a line, at worst).
    weights = [sum(search.segment_weight(s) for s in sh) for sh in shares]
    assert all(w >= share for w in weights[:-1])
    assert weights[-1] > 0


def test_a_compressed_file_is_never_cut(log: list[Path]) -> None:
    """A .gz file goes whole to one share, whatever the share size."""
    shares = parallel.plan_shares(search.segments_to_read(log, Filters()), 8, 1)
    gz = [seg for share in shares for seg in share if str(seg.path).endswith(".gz")]
    assert len(gz) == 1
    assert (gz[0].start, gz[0].end) == (0, None)


def _dies_half_way(
    share: Sequence[Segment], wanted: Sequence[bytes] | None, filters: Filters, fd: int
) -> None:
    """Report the first half of its first segment honestly, write lines it never reports, die."""
    first = share[0]
    report = b""
    if not str(first.path).endswith(".gz"):
        end = first.end if first.end is not None else os.path.getsize(first.path)
        cut = reader.next_line_start(first.path, (first.start + end) // 2)
        stats = ScanStats()
        found = search.scan([Segment(first.path, first.start, cut)], wanted, filters, stats)
        report = b"".join(m.line + b"\n" for m in found)
        report += b"\0%d %d %d\n" % (0, cut, stats.malformed)
    os.write(fd, report + b'{"user":"alice","unreported":true}\n')
    os.kill(os.getpid(), signal.SIGKILL)


def _dies_at_once(
    share: Sequence[Segment], wanted: Sequence[bytes] | None, filters: Filters, fd: int
) -> None:
    msg = "worker failed before writing anything"
    raise RuntimeError(msg)


@pytest.mark.parametrize("read", [_dies_half_way, _dies_at_once])
@pytest.mark.parametrize("filters", [Filters(users=("alice",)), Filters()])
def test_a_worker_that_dies_costs_nothing_but_time(
    log: list[Path], read: object, filters: Filters
) -> None:
    """The parent reads the rest of a dead worker's share from its last report: no loss, no repeat."""
    expected = _answer(log, filters, 1)
    assert _answer(log, filters, 3, read=read) == expected


def test_stopping_early_kills_and_reaps_every_worker(log: list[Path]) -> None:
    """Closing the scan after the first match leaves no worker running and no pipe open."""
    before = len(os.listdir("/proc/self/fd"))
    filters = Filters()
    found = parallel.iter_matches(
        search.segments_to_read(log, filters), filters, ScanStats(), workers=4, share_bytes=SHARE
    )
    next(found)
    found.close()
    assert len(os.listdir("/proc/self/fd")) == before
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_a_scan_too_small_to_share_uses_no_worker(log: list[Path]) -> None:
    """Below two shares' worth of bytes everything is read in this process."""
    segments = search.segments_to_read(log, Filters())
    assert len(parallel.plan_shares(segments, 4)) == 1
    total = sum(search.segment_weight(s) for s in segments)
    assert len(parallel.plan_shares(segments, 4, total // 2)) == 2


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("3", 3), ("12", 12)])
def test_workers_setting_is_taken_as_given(value: str, expected: int) -> None:
    """DS01_EVENTS_WORKERS sets the number of processes; 1 reads in one."""
    assert worker_count({"DS01_EVENTS_WORKERS": value}) == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "٣"])
def test_bad_workers_setting_is_one_clear_usage_error(value: str) -> None:
    """A value that is not a count of at least 1 is a usage error naming the variable."""
    with pytest.raises(UserError) as caught:
        worker_count({"DS01_EVENTS_WORKERS": value})
    assert caught.value.code == 2
    assert "DS01_EVENTS_WORKERS" in str(caught.value)


def test_default_workers_are_the_usable_cpus_at_most_four() -> None:
    """Without the setting: the CPUs this process may run on, never more than 4."""
    assert worker_count({}) == min(len(os.sched_getaffinity(0)), 4)
