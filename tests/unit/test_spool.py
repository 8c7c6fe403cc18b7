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
        self.rejected: list[tuple[str, int | None]] = []

    def __call__(self, event: Event, /) -> bool:
        """Keep the event; always accepted."""
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
