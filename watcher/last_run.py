"""How the previous run ended: cleanly (``watcher.stop``) or not, and the last line it wrote.

Two witnesses, because either alone can miss it: a marker file in the state
directory, present from start until ``watcher.stop`` is on disk (a run that wrote
megabytes has its ``watcher.start`` far outside any tail worth reading), and the
log's tail, which gives the last durable event's time and settles it when it holds
the previous run's ``watcher.start`` or ``watcher.stop``.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from ds01_events.envelope import Event, decode_line, make_event
from watcher.log_file import foreign_reason

if TYPE_CHECKING:
    from pathlib import Path

MARKER = "watcher.running"
TAIL_BYTES = 1 << 20
WATCHER_SOURCE = "ds01-watcher"
_ID = re.compile(rb'"id":"([0-9a-f]{32})"')


class Marker(msgspec.Struct, frozen=True):
    """What a running watcher leaves in its state directory."""

    pid: int
    started: str


@dataclass(frozen=True)
class LastRun:
    """The previous run as far as it can be known."""

    unclean: bool
    last_event: str | None = None  # the timestamp of the last line a watcher wrote
    previous: Marker | None = None
    ids: tuple[str, ...] = ()  # the ids in the tail, oldest first


def _tail(path: Path, size: int) -> list[bytes]:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return []
    try:
        info = os.fstat(fd)
        if foreign_reason(info) is not None:
            return []  # someone else's file says nothing about our last run
        end = info.st_size
        start = max(0, end - size)
        data = os.pread(fd, end - start, start)
    except OSError:
        return []
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    return lines[1:] if start else lines  # the first one may be cut


def _decode(line: bytes) -> Event | None:
    try:
        return decode_line(line)
    except Exception:
        return None


def read_marker(state_dir: Path) -> Marker | None:
    """Return the marker a run left, or None."""
    try:
        return msgspec.json.decode((state_dir / MARKER).read_bytes(), type=Marker)
    except Exception:
        return None


def find_last_run(events_file: Path, state_dir: Path) -> LastRun:
    """Tell how the previous run ended. Never raises."""
    marker = read_marker(state_dir)
    last_event: str | None = None
    lifecycle: str | None = None
    lines = _tail(events_file, TAIL_BYTES)
    for line in reversed(lines):
        # Only lines the watcher wrote count: its own (source) and what it stamped (origin).
        if b'"ds01-watcher"' not in line and b'"origin"' not in line:
            continue
        event = _decode(line)
        if event is None:
            continue
        own = event.source == WATCHER_SOURCE and event.origin is None
        if event.origin is None and not own:
            continue
        if last_event is None:
            last_event = event.timestamp
        if own and event.event_type in ("watcher.start", "watcher.stop"):
            lifecycle = event.event_type
            break
    if lifecycle == "watcher.stop":
        unclean = False  # the marker outlived a clean stop (a crash right after it)
    else:
        unclean = marker is not None or lifecycle == "watcher.start"
    ids = tuple(m.decode() for line in lines for m in _ID.findall(line))
    return LastRun(unclean=unclean, last_event=last_event, previous=marker, ids=ids)


def gap_event(last: LastRun, now: str) -> Event | None:
    """The ``watcher.gap`` that says the previous run ended unobserved, or None."""
    if not last.unclean:
        return None
    details: dict[str, object] = {
        "since": last.last_event or (last.previous.started if last.previous else None),
        "until": now,
        "reason": "unclean stop",
        "note": "the previous run ended without watcher.stop (killed, crashed or power"
        " lost): events it had received but not written are missing",
    }
    if last.previous is not None:
        details["previous_pid"] = last.previous.pid
        details["previous_start"] = last.previous.started
    return make_event("watcher.gap", source=WATCHER_SOURCE, details=details, timestamp=now)


def mark_running(state_dir: Path, marker: Marker) -> str | None:
    """Leave the marker (atomically); return why it could not be written, or None."""
    try:
        state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        temporary = state_dir / f".{MARKER}.{os.getpid()}"
        temporary.write_bytes(msgspec.json.encode(marker))
        temporary.replace(state_dir / MARKER)
    except OSError as exc:
        return f"{state_dir / MARKER}: {exc.strerror or exc}"
    return None


def mark_stopped(state_dir: Path) -> None:
    """Remove the marker once ``watcher.stop`` is on disk."""
    with contextlib.suppress(OSError):
        (state_dir / MARKER).unlink()
