"""The sink on an ordinary directory: group commit, rotation by inode, refusals counted."""

from __future__ import annotations

import io
import os
import stat
from typing import TYPE_CHECKING

import msgspec

from ds01_events.envelope import decode_line, make_event
from watcher.sink import Sink

if TYPE_CHECKING:
    from pathlib import Path


def _lines(path: Path) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def test_every_event_written_once_in_order_with_fewer_syncs(tmp_path: Path) -> None:
    """5,000 events land once each, in submit order, in fewer batches than events."""
    path = tmp_path / "log" / "events.jsonl"
    sink = Sink(str(path), group=None)
    sink.start()
    events = [make_event("test.seq", details={"n": n}) for n in range(5000)]
    assert all(sink.submit(event) for event in events)
    sink.stop(10)
    lines = [decode_line(line) for line in path.read_bytes().splitlines()]
    assert [event.id for event in lines] == [event.id for event in events]
    assert 0 < sink.batches < 5000
    assert sink.written == 5000


def test_new_file_is_0640_whatever_the_umask(tmp_path: Path) -> None:
    """The sink creates the log 0640 even under a permissive umask."""
    old = os.umask(0)
    try:
        sink = Sink(str(tmp_path / "e.jsonl"), group=None)
        sink.start()
        sink.submit(make_event("test.one"))
        sink.stop(5)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "e.jsonl").stat().st_mode) == 0o640


def test_follows_a_rename_and_creates_the_new_file(tmp_path: Path) -> None:
    """After the log is renamed away, the next batch goes to a new file at the path."""
    path = tmp_path / "e.jsonl"
    sink = Sink(str(path), group=None)
    sink.start()
    sink.submit(make_event("test.before"))
    while sink.written < 1:
        os.sched_yield()
    path.rename(tmp_path / "e.jsonl.1")
    sink.submit(make_event("test.after"))
    sink.stop(5)
    assert [line["event_type"] for line in _lines(tmp_path / "e.jsonl.1")] == ["test.before"]
    assert [line["event_type"] for line in _lines(path)] == ["test.after"]


def test_reopen_request_reopens_the_path(tmp_path: Path) -> None:
    """reopen() makes the next batch go to whatever file is at the path now."""
    path = tmp_path / "e.jsonl"
    sink = Sink(str(path), group=None)
    sink.start()
    sink.submit(make_event("test.before"))
    while sink.written < 1:
        os.sched_yield()
    sink.reopen()
    sink.submit(make_event("test.after"))
    sink.stop(5)
    assert [line["event_type"] for line in _lines(path)] == ["test.before", "test.after"]


def test_a_full_queue_refuses_counts_and_reports_a_gap(tmp_path: Path) -> None:
    """Events the bound refuses are counted and reported in one watcher.gap event."""
    path = tmp_path / "e.jsonl"
    err = io.StringIO()
    sink = Sink(str(path), queue_size=10, group=None, stderr=err)
    # Not started: the queue fills and the rest is refused.
    results = [sink.submit(make_event("test.burst")) for _ in range(25)]
    assert results.count(True) == 10
    assert sink.dropped == 15
    sink.start()
    sink.stop(5)
    lines = _lines(path)
    gaps = [line for line in lines if line["event_type"] == "watcher.gap"]
    assert len(gaps) == 1
    assert gaps[0]["details"]["dropped"] == 15  # type: ignore[index]
    assert sum(line["event_type"] == "test.burst" for line in lines) == 10


def test_group_is_applied_when_it_exists(tmp_path: Path) -> None:
    """A created log gets the configured group (root's own group here)."""
    path = tmp_path / "e.jsonl"
    group = __import__("grp").getgrgid(os.getegid()).gr_name
    sink = Sink(str(path), group=group)
    sink.start()
    sink.submit(make_event("test.one"))
    sink.stop(5)
    assert path.stat().st_gid == os.getegid()
    assert sink.healthy() is False  # stopped
