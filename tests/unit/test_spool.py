"""The spool drain: owner attribution, nothing followed, bad files refused and counted."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ds01_events.envelope import Event, encode_line, make_event
from watcher.intake.spool import SpoolDrain

if TYPE_CHECKING:
    from pathlib import Path


class Collect:
    """A Submit that keeps what it gets."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.reports: list[Event] = []
        self.rejected: list[tuple[str, int | None]] = []

    def __call__(self, event: Event, /) -> bool:
        """Keep the event (the drain's own reports apart); always accepted."""
        if event.event_type == "ingest.quarantined":
            self.reports.append(event)
        else:
            self.events.append(event)
        return True

    def reject(self, reason: str, uid: int | None) -> None:
        """Keep the refusal."""
        self.rejected.append((reason, uid))


def _drain(spool: Path, **kwargs: object) -> tuple[Collect, SpoolDrain]:
    got = Collect()
    return got, SpoolDrain(str(spool), got, got.reject, **kwargs)  # type: ignore[arg-type]


def test_events_are_attributed_to_the_file_owner_and_files_removed(tmp_path: Path) -> None:
    """Each line of a .json file is submitted with origin = the file's owner; the file goes."""
    forged = make_event("test.spooled", user="mallory")
    body = encode_line(make_event("test.spooled")) + encode_line(forged)
    spooled = tmp_path / "1-a.json"
    spooled.write_bytes(body.replace(b'"host"', b'"origin":{"uid":0},"host"', 1))
    os.chown(spooled, 65534, 65534)
    got, drain = _drain(tmp_path)
    report = drain.drain()
    assert report.submitted == 2
    assert [e.origin.uid for e in got.events if e.origin] == [65534, 65534]
    assert all(e.origin is not None and e.origin.pid is None for e in got.events)
    assert got.events[1].user == "mallory"
    assert not spooled.exists()


def test_tmp_files_are_left_alone(tmp_path: Path) -> None:
    """A *.tmp file is still being written: not read, not removed."""
    (tmp_path / "1-a.tmp").write_bytes(encode_line(make_event("test.spooled")))
    got, drain = _drain(tmp_path)
    drain.drain()
    assert got.events == []
    assert (tmp_path / "1-a.tmp").exists()


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    """A symlink is refused and removed; its target is neither read nor touched."""
    target = tmp_path / "secret"
    target.write_bytes(encode_line(make_event("test.secret")))
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "x.json").symlink_to(target)
    got, drain = _drain(spool)
    assert drain.drain().rejected == {"symlink": 1}
    assert got.events == []
    assert target.exists()
    assert not (spool / "x.json").is_symlink()
    assert [(e.details["reason"], e.details["uid"]) for e in got.reports] == [("symlink", 0)]


def test_fifo_hardlink_and_huge_files_are_refused(tmp_path: Path) -> None:
    """Non-regular, hard-linked and oversized files are refused and counted per reason."""
    spool = tmp_path / "spool"
    spool.mkdir()
    os.mkfifo(spool / "a.json")
    other = tmp_path / "other"
    other.write_bytes(encode_line(make_event("test.borrowed")))
    os.link(other, spool / "b.json")
    (spool / "c.json").write_bytes(b"x" * 2000)
    got, drain = _drain(spool, max_bytes=1000)
    report = drain.drain()
    assert report.rejected == {"not_regular": 1, "hardlink": 1, "oversize": 1}
    assert got.events == []
    assert other.exists()
    assert sorted(os.listdir(spool)) == []
    assert sorted(reason for reason, _ in got.rejected) == ["hardlink", "not_regular", "oversize"]


def test_invalid_lines_are_counted_and_valid_ones_kept(tmp_path: Path) -> None:
    """In a mixed file, bad lines are counted per reason and good lines submitted."""
    good = encode_line(make_event("test.good"))
    (tmp_path / "m.json").write_bytes(good + b"garbage\n" + b"\xff\xfe\n" + good)
    _got, drain = _drain(tmp_path)
    report = drain.drain()
    assert report.submitted == 2
    assert report.rejected == {"invalid": 1, "binary": 1}


def test_no_room_defers_the_file(tmp_path: Path) -> None:
    """When the sink has no room the file stays for the next pass, nothing half-submitted."""
    (tmp_path / "a.json").write_bytes(encode_line(make_event("test.later")))
    got, drain = _drain(tmp_path, has_room=lambda _n: False)
    assert drain.drain().deferred == 1
    assert got.events == []
    assert (tmp_path / "a.json").exists()


def test_deep_nesting_is_a_counted_reject_not_an_exception(tmp_path: Path) -> None:
    """A line nesting `[` 1000 deep is refused as too_deep; the lines around it are kept."""
    good = encode_line(make_event("test.good"))
    deep = good.replace(b'"host"', b'"details":{"a":' + b"[" * 1000 + b"]" * 1000 + b'},"host"')
    (tmp_path / "a.json").write_bytes(good + deep + good)
    got, drain = _drain(tmp_path)
    report = drain.drain()
    assert report.rejected == {"too_deep": 1}
    assert len(got.events) == 2
    assert not (tmp_path / "a.json").exists()


def test_a_file_of_100000_lines_is_set_aside_and_later_files_drain(tmp_path: Path) -> None:
    """A file with too many lines is quarantined, reported once, and blocks nothing after it."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "0-wall.json").write_bytes(b"{}\n" * 100_000)
    os.chown(spool / "0-wall.json", 65534, 65534)
    later = make_event("test.later")
    (spool / "1-later.json").write_bytes(encode_line(later))
    got, drain = _drain(spool, has_room=lambda n: n <= 65_536)
    report = drain.drain()
    assert [e.event_type for e in got.events] == ["test.later"]
    assert report.rejected == {"too_many_lines": 1}
    assert report.deferred == 0
    assert os.listdir(spool) == []
    quarantine = tmp_path / "spool.quarantine"
    assert (quarantine.stat().st_mode & 0o7777) == 0o700
    (kept,) = quarantine.iterdir()
    assert kept.stat().st_size == 300_000
    assert [(e.details["reason"], e.details["uid"]) for e in got.reports] == [
        ("too_many_lines", 65534)
    ]
    assert got.reports[0].details["moved_to"] == str(kept)
    drain.drain()
    assert len(got.reports) == 1


def test_a_directory_in_the_spool_is_moved_aside(tmp_path: Path) -> None:
    """A non-empty directory named *.json is quarantined once, not retried every pass."""
    spool = tmp_path / "spool"
    (spool / "d.json").mkdir(parents=True)
    (spool / "d.json" / "inner").write_bytes(b"data")
    got, drain = _drain(spool)
    assert drain.drain().rejected == {"not_regular": 1}
    assert drain.drain().rejected == {}
    assert (tmp_path / "spool.quarantine").exists()
    assert len(got.reports) == 1


def test_a_file_others_may_write_is_refused(tmp_path: Path) -> None:
    """A group- or world-writable file could hold anyone's lines: refused, not attributed."""
    spool = tmp_path / "spool"
    spool.mkdir()
    for name, mode in (("a.json", 0o666), ("b.json", 0o620)):
        (spool / name).write_bytes(encode_line(make_event("test.planted")))
        (spool / name).chmod(mode)
    got, drain = _drain(spool)
    assert drain.drain().rejected == {"writable_by_others": 2}
    assert got.events == []


def test_watcher_only_types_are_refused_from_the_spool(tmp_path: Path) -> None:
    """watcher.*, container.* and source ds01-watcher are counted rejects; gpu.allocate stays."""
    lines = [
        encode_line(make_event("watcher.stop")),
        encode_line(make_event("container.start", details={"container": "c"})),
        encode_line(make_event("test.x", source="ds01-watcher")),
        encode_line(make_event("gpu.allocate", source="allocator.sh")),
    ]
    (tmp_path / "a.json").write_bytes(b"".join(lines))
    got, drain = _drain(tmp_path)
    assert drain.drain().rejected == {"reserved_type": 2, "reserved_source": 1}
    assert [e.event_type for e in got.events] == ["gpu.allocate"]


def test_the_file_time_is_the_client_time(tmp_path: Path) -> None:
    """A spooled event carries the spool file's mtime, not what its line claims."""
    event = make_event("test.dated", timestamp="2020-01-01T00:00:00.000000Z")
    spooled = tmp_path / "a.json"
    spooled.write_bytes(encode_line(event))
    os.utime(spooled, (1_800_000_000.25, 1_800_000_000.25))
    got, drain = _drain(tmp_path)
    drain.drain()
    assert got.events[0].timestamp == "2027-01-15T08:00:00.250000Z"
