"""The sink as the trail's single writer: its own time, its own ids, its own file."""

from __future__ import annotations

import io
import os
import stat
from typing import TYPE_CHECKING

import msgspec

from ds01_events.envelope import Origin, make_event
from watcher.sink import Sink

if TYPE_CHECKING:
    from pathlib import Path

CLIENT = Origin(uid=1001, gid=1001, pid=42)


def _lines(path: Path) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def _write(path: Path, *events: object, stderr: io.StringIO | None = None) -> Sink:
    sink = Sink(str(path), group=None, stderr=stderr or io.StringIO())
    sink.start()
    for event in events:
        sink.submit(event)  # type: ignore[arg-type]
    sink.stop(5)
    return sink


def test_clients_events_get_the_writers_time_in_order(tmp_path: Path) -> None:
    """A backdated and a future-dated client event are stamped now, in order; their time is kept."""
    old = make_event("test.old", timestamp="2020-01-01T00:00:00.000000Z")
    future = make_event("test.future", timestamp="2099-01-01T00:00:00.000000Z")
    own = make_event("watcher.start", source="ds01-watcher")
    for event in (old, future):
        event.origin = CLIENT
    path = tmp_path / "e.jsonl"
    _write(path, old, future, own)
    lines = _lines(path)
    stamps = [line["timestamp"] for line in lines[:2]]
    assert stamps == sorted(stamps)
    assert all(s > "2026" and s < "2099" for s in stamps)  # type: ignore[operator]
    assert [line["details"] for line in lines[:2]] == [
        {"client_timestamp": "2020-01-01T00:00:00.000000Z"},
        {"client_timestamp": "2099-01-01T00:00:00.000000Z"},
    ]
    assert lines[2]["timestamp"] == own.timestamp  # the watcher's own keep theirs
    assert "details" not in lines[2] or "client_timestamp" not in lines[2]["details"]  # type: ignore[operator]


def test_a_reused_id_is_replaced_and_the_claim_kept(tmp_path: Path) -> None:
    """A client event reusing an id already written gets a fresh id; the reused one is kept."""
    own = make_event("watcher.start", source="ds01-watcher")
    claimed = own.id
    copy = make_event("test.shadow", event_id=claimed)
    copy.origin = CLIENT
    path = tmp_path / "e.jsonl"
    _write(path, own, copy)
    lines = _lines(path)
    assert lines[0]["id"] == claimed
    assert lines[1]["id"] != claimed
    assert lines[1]["details"]["client_id"] == claimed  # type: ignore[index]


def test_ids_from_the_logs_tail_count_as_written(tmp_path: Path) -> None:
    """An id seen in the previous run's tail is not reused by a client either."""
    copy = make_event("test.shadow")
    copy.origin = CLIENT
    sink = Sink(str(tmp_path / "e.jsonl"), group=None)
    claimed = copy.id
    sink.seen_ids([claimed])
    sink.start()
    sink.submit(copy)
    sink.stop(5)
    assert _lines(tmp_path / "e.jsonl")[0]["id"] != claimed


def test_a_planted_world_writable_log_is_moved_aside(tmp_path: Path) -> None:
    """A log file others may write is renamed .foreign-<epoch>, kept, and a new one made."""
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"planted":1}\n')
    path.chmod(0o666)
    err = io.StringIO()
    _write(path, make_event("test.after"), stderr=err)
    (aside,) = tmp_path.glob("e.jsonl.foreign-*")
    assert aside.read_bytes() == b'{"planted":1}\n'
    assert [line["event_type"] for line in _lines(path)] == ["test.after"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert "writable by others" in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_a_log_owned_by_another_user_is_moved_aside(tmp_path: Path) -> None:
    """A log file owned by someone else is not appended to."""
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"theirs\n")
    os.chown(path, 65534, 65534)
    err = io.StringIO()
    _write(path, make_event("test.after"), stderr=err)
    assert path.stat().st_uid == os.geteuid()
    assert "owned by uid 65534" in err.getvalue()
    (aside,) = tmp_path.glob("e.jsonl.foreign-*")
    assert aside.read_bytes() == b"theirs\n"


def test_a_symlink_or_fifo_at_the_path_is_moved_not_followed(tmp_path: Path) -> None:
    """A symlink (to /etc/passwd-like targets) or a FIFO is renamed itself; its target untouched."""
    target = tmp_path / "target"
    target.write_bytes(b"secret\n")
    path = tmp_path / "e.jsonl"
    path.symlink_to(target)
    _write(path, make_event("test.one"))
    assert target.read_bytes() == b"secret\n"
    assert not path.is_symlink()
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    _write(fifo, make_event("test.two"))
    assert stat.S_ISREG(fifo.stat().st_mode)
    assert [line["event_type"] for line in _lines(fifo)] == ["test.two"]
    assert len(list(tmp_path.glob("*.foreign-*"))) == 2
