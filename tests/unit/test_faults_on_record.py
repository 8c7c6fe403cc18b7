"""How the previous run ended, stalls, and signals as notes: the pure parts of 'faults leave a trace'."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from ds01_events.envelope import Event, Origin, encode_line, make_event
from watcher.last_run import Marker, find_last_run, gap_event, mark_running, mark_stopped
from watcher.signals import SignalInbox
from watcher.stall import StallWatch

if TYPE_CHECKING:
    from pathlib import Path


def _log(path: Path, *events: Event) -> None:
    path.write_bytes(b"".join(encode_line(e) for e in events))


def _own(event_type: str, when: str) -> Event:
    return make_event(event_type, source="ds01-watcher", timestamp=when)


def test_a_run_that_ended_with_stop_leaves_no_gap(tmp_path: Path) -> None:
    """watcher.start ... watcher.stop: clean, even if a marker was left behind."""
    log = tmp_path / "e.jsonl"
    _log(
        log,
        _own("watcher.start", "2026-01-01T00:00:00.000000Z"),
        _own("watcher.stop", "2026-01-01T01:00:00.000000Z"),
    )
    mark_running(tmp_path, Marker(pid=1, started="2026-01-01T00:00:00.000000Z"))
    assert not find_last_run(log, tmp_path).unclean


def test_a_run_without_stop_is_unclean_with_the_last_durable_time(tmp_path: Path) -> None:
    """The last line the watcher wrote bounds the gap; a direct append after it does not."""
    client = make_event("test.x", timestamp="2026-01-01T00:30:00.000000Z")
    client.origin = Origin(uid=1001)
    direct = make_event("test.direct", timestamp="2026-01-01T05:00:00.000000Z")
    log = tmp_path / "e.jsonl"
    _log(log, _own("watcher.start", "2026-01-01T00:00:00.000000Z"), client, direct)
    last = find_last_run(log, tmp_path)
    assert last.unclean
    assert last.last_event == "2026-01-01T00:30:00.000000Z"
    gap = gap_event(last, "2026-01-02T00:00:00.000000Z")
    assert gap is not None
    assert gap.event_type == "watcher.gap"
    assert gap.details["since"] == "2026-01-01T00:30:00.000000Z"
    assert gap.details["until"] == "2026-01-02T00:00:00.000000Z"
    assert gap.details["reason"] == "unclean stop"


def test_the_marker_tells_when_the_start_is_outside_the_tail(tmp_path: Path) -> None:
    """A long run's watcher.start is far back: the marker alone says it did not stop."""
    client = make_event("test.x", timestamp="2026-01-01T00:30:00.000000Z")
    client.origin = Origin(uid=1001)
    log = tmp_path / "e.jsonl"
    _log(log, client)
    assert not find_last_run(log, tmp_path).unclean
    assert mark_running(tmp_path, Marker(pid=7, started="2026-01-01T00:00:00.000000Z")) is None
    last = find_last_run(log, tmp_path)
    assert last.unclean
    gap = gap_event(last, "2026-01-02T00:00:00.000000Z")
    assert gap is not None
    assert gap.details["previous_pid"] == 7
    mark_stopped(tmp_path)
    assert not find_last_run(log, tmp_path).unclean


def test_a_missing_or_garbage_log_is_no_error(tmp_path: Path) -> None:
    """No log, or a log of torn and deep lines, never raises."""
    assert not find_last_run(tmp_path / "none", tmp_path).unclean
    log = tmp_path / "e.jsonl"
    log.write_bytes(b'{"source":"ds01-watcher",' + b"[" * 5000 + b"\n\xff\n")
    assert not find_last_run(log, tmp_path).unclean


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_is_reported_once_when_it_ends() -> None:
    """Two loops see the same 30 s stop: one watcher.stall with its duration."""
    got: list[Event] = []
    clock = _Clock()
    watch = StallWatch(lambda e: got.append(e) or True, 5.0, clock=clock, wall=lambda: 1e9)
    main, sink = watch.loop("main", 1.0), watch.loop("sink", 0.5)
    clock.now += 0.5
    main.beat()
    sink.beat()
    assert got == []
    clock.now += 30
    sink.beat()
    clock.now += 0.2
    main.beat()
    assert [e.event_type for e in got] == ["watcher.stall"]
    assert got[0].details["component"] == "sink"
    assert got[0].details["seconds"] == 30.0
    clock.now += 0.5
    main.beat()
    assert len(got) == 1


def test_signals_are_notes_read_by_the_loop() -> None:
    """A SIGHUP storm becomes one note; SIGTERM after it is not lost; wake() wakes."""
    inbox = SignalInbox()
    assert inbox.install()
    try:
        for _ in range(500):
            os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        assert inbox.wait(1.0) == {signal.SIGHUP, signal.SIGTERM}
        inbox.wake()
        assert inbox.wait(1.0) == set()
    finally:
        inbox.restore()
        inbox.close()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_a_log_others_may_write_cannot_vouch_for_a_clean_stop(tmp_path: Path) -> None:
    """A forged watcher.stop in a world-writable log does not hide the marker's unclean stop."""
    log = tmp_path / "e.jsonl"
    _log(log, _own("watcher.stop", "2026-01-01T01:00:00.000000Z"))
    log.chmod(0o666)
    mark_running(tmp_path, Marker(pid=1, started="2026-01-01T00:00:00.000000Z"))
    assert find_last_run(log, tmp_path).unclean
