"""Time filters never let one line (or a burst of them) stand for a whole file."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ds01_query.cli import runner

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _line(when: datetime, user: str = "alice", kind: str = "container.start") -> str:
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {"timestamp": stamp, "event_type": kind, "user": user, "host": "h", "id": "x"}
    return json.dumps(event, separators=(",", ":"))


def _genuine(start: datetime, stop: datetime, count: int, user: str = "alice") -> list[str]:
    step = (stop - start) / count
    return [_line(start + step * i, user) for i in range(count)]


def _write(path: Path, lines: list[str], mode: str = "w") -> None:
    with path.open(mode, encoding="utf-8") as out:
        out.write("".join(x + "\n" for x in lines))


def _query(
    path: Path, home: Path, *, since: str | None, limit: int | None = None
) -> tuple[list[str], str]:
    """Run a query in this process: the lines it printed, and its stderr."""
    out, err = io.StringIO(), io.StringIO()
    request = runner.QueryRequest(
        files=(str(path),),
        since=since,
        json=True,
        all=limit is None,
        limit=limit,
    )
    streams = runner.Streams(out, err, {"HOME": str(home)}, timezone.utc)
    assert runner.run_query(request, streams, now=NOW) == 0
    return out.getvalue().splitlines(), err.getvalue()


def _in_window(lines: list[str], since: datetime) -> list[str]:
    """The reference answer: every line whose own time is at or after ``since``, in order."""
    bound = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [x for x in lines if json.loads(x)["timestamp"] >= bound]


def test_one_old_line_near_the_end_hides_nothing_from_the_default_view(tmp_path: Path) -> None:
    """A line dated 2020 among the last events: the last 50 of the window are all shown."""
    lines = _genuine(NOW - timedelta(minutes=60), NOW, 600)
    lines.insert(590, _line(datetime(2020, 1, 1, tzinfo=timezone.utc), "mallory"))
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    got, _ = _query(path, tmp_path / "home", since="45 min ago", limit=50)
    assert got == _in_window(lines, NOW - timedelta(minutes=45))[-50:]


def test_an_old_first_line_of_the_live_file_hides_no_rotated_file(tmp_path: Path) -> None:
    """The rotated file's in-window events are read though the next file starts in 2020."""
    older = _genuine(NOW - timedelta(minutes=60), NOW - timedelta(minutes=20), 400)
    newer = [_line(datetime(2020, 1, 1, tzinfo=timezone.utc), "mallory")]
    newer += _genuine(NOW - timedelta(minutes=20), NOW, 200, "bob")
    _write(tmp_path / "events.jsonl.1", older)
    _write(tmp_path / "events.jsonl", newer)
    got, _ = _query(tmp_path / "events.jsonl", tmp_path / "home", since="45 min ago")
    assert got == _in_window(older + newer, NOW - timedelta(minutes=45))


def _burst_log() -> list[str]:
    """Genuine events each second for an hour; a backdated burst written mid-window."""
    lines = _genuine(NOW - timedelta(minutes=60), NOW - timedelta(minutes=30), 1800)
    lines += [_line(NOW - timedelta(hours=3), "mallory") for _ in range(2500)]
    lines += _genuine(NOW - timedelta(minutes=30), NOW, 1800, "bob")
    return lines


def test_a_backdated_burst_hides_no_genuine_event(tmp_path: Path) -> None:
    """--since '45 min ago' over a log with a burst dated hours back returns every event."""
    lines = _burst_log()
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    got, _ = _query(path, tmp_path / "home", since="45 min ago")
    want = _in_window(lines, NOW - timedelta(minutes=45))
    assert len(want) == 2700
    assert got == want


def test_a_burst_appended_after_the_order_was_remembered_is_seen(tmp_path: Path) -> None:
    """A file remembered as ordered, then appended to out of order, is read whole again."""
    path = tmp_path / "events.jsonl"
    home = tmp_path / "home"
    first = _genuine(NOW - timedelta(minutes=120), NOW - timedelta(minutes=60), 3000)
    _write(path, first)
    assert _query(path, home, since="45 min ago")[0] == []  # checked and remembered: ordered
    later = _burst_log()
    _write(path, later, mode="a")
    got, _ = _query(path, home, since="45 min ago")
    assert got == _in_window(first + later, NOW - timedelta(minutes=45))


def test_a_future_dated_line_is_found_and_hides_nothing(tmp_path: Path) -> None:
    """A line dated 2030 mid-file is in any --since window, and the events after it too."""
    lines = _genuine(NOW - timedelta(minutes=60), NOW, 3000)
    lines.insert(1000, _line(datetime(2030, 1, 1, tzinfo=timezone.utc), "mallory"))
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    got, _ = _query(path, tmp_path / "home", since="45 min ago")
    assert got == _in_window(lines, NOW - timedelta(minutes=45))


def test_verify_reports_an_out_of_order_line_once(tmp_path: Path) -> None:
    """A future-dated line and a backdated one are one report each, not one per later line."""
    lines = _genuine(NOW - timedelta(minutes=60), NOW, 200)
    lines.insert(50, _line(datetime(2030, 1, 1, tzinfo=timezone.utc), "mallory"))
    lines.insert(150, _line(datetime(2020, 1, 1, tzinfo=timezone.utc), "mallory"))
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    out, err = io.StringIO(), io.StringIO()
    status = runner.run_verify([str(path)], runner.Streams(out, err, {}, timezone.utc))
    reports = out.getvalue().splitlines()
    assert status == 1
    assert len(reports) == 2, reports
    assert reports[0].startswith(f"{path}:52: time goes back")  # the line after the 2030 one
    assert "events.jsonl:51" in reports[0]  # names the line it goes back from
    assert reports[1].startswith(f"{path}:151: time goes back")


def test_an_ordered_log_is_bisected_and_remembered(tmp_path: Path) -> None:
    """On a log in time order the fast path stays: a bisected range, and the check is kept."""
    from ds01_query.engine.query import Filters
    from ds01_query.engine.timeorder import OrderBook, cache_path
    from ds01_query.scan.search import segments_to_read

    path = tmp_path / "events.jsonl"
    _write(path, _genuine(NOW - timedelta(days=2), NOW, 20000))
    filters = Filters(since=NOW - timedelta(hours=1))
    where = cache_path({"HOME": str(tmp_path / "home")})
    book = OrderBook(where)
    (segment,) = segments_to_read([str(path)], filters, book=book)
    assert segment.start > path.stat().st_size * 0.9
    book.save()
    again = OrderBook(where)
    assert again.order_of(str(path), timedelta(minutes=10)).ordered
    assert again._changed is False
    _write(path, [_line(NOW - timedelta(days=3), "mallory")], mode="a")
    (segment,) = segments_to_read([str(path)], filters, book=again)
    assert segment.start == 0  # out of order now: read whole


def test_a_kept_order_another_user_could_have_written_is_ignored(tmp_path: Path) -> None:
    """A cache file not this user's alone (sudo keeping a user's HOME) is not believed."""
    import os

    from ds01_query.engine.timeorder import OrderBook, cache_path

    path = tmp_path / "events.jsonl"
    _write(path, _genuine(NOW - timedelta(hours=2), NOW, 100))
    where = cache_path({"HOME": str(tmp_path / "home")})
    assert where is not None
    book = OrderBook(where)
    book.order_of(str(path), timedelta(minutes=10))
    book.save()
    assert OrderBook(where)._entries
    os.chmod(where, 0o666)  # noqa: S103 - the file anyone could have rewritten
    assert not OrderBook(where)._entries
    os.chmod(where, 0o600)
    if os.geteuid() == 0:
        os.chown(where, 65534, 65534)
        assert not OrderBook(where)._entries
