r"""Where time filters may skip lines: each file's time order, checked once and remembered.

A log written by the watcher is in time order (it stamps each line as it writes it),
but an old log holds whatever times clients sent, and lines appended while no watcher
ran may be anywhere in time. So no single line is trusted to stand for a file: a file
is bisected, or read backwards only until an old line, when every line of it has been
seen to be *ordered* (no line more than ``margin`` behind the latest line before it).
What a check learned (ordered or not, the earliest and latest time) is kept per user
in ``$XDG_CACHE_HOME/ds01-events/time-order`` (else ``~/.cache``), keyed by the
file's device and inode and checked against the bytes at its start and at the end of
what was seen: later queries check only the lines appended since. Without a writable
cache every query checks every file it needs, and stays right.

Times are compared as the fixed-width UTC text the watcher writes
(``2026-11-22T02:54:43.774116Z``, which sorts as time); a line in any other form, or
with a ``\u`` escape or a second ``"timestamp"`` (either could spell another
``timestamp`` key, the last of which wins), is decoded in full.
"""

from __future__ import annotations

import os
import stat

from ds01_query.engine import reader
from ds01_query.engine.dates import datetime, timedelta, timezone
from ds01_query.engine.decoding import refused, stdlib_decode
from ds01_query.engine.query import parse_event_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ds01_query.engine.reader import StrPath

_PREFIX = b'{"timestamp":"'
_FIXED = 27  # len("2026-11-22T02:54:43.774116Z")
_STAMP_END = len(_PREFIX) + _FIXED
# Bytes kept from each end of what a check saw, to know the file again: the end of the
# last line holds its event's random id.
_PROBE = 48
_CLOSE_ENOUGH = 4096  # stop bisecting: scanning this much is cheaper than a seek
_KEPT_ENTRIES = 64  # files remembered per user
_VERSION = "ds01-time-order-2"


def fixed_text(when: datetime) -> bytes:
    """Write a time as the watcher does: UTC, six fractional digits, ``Z``."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


class FileOrder:
    """What one pass over a file's lines found; times as fixed-width UTC text (b"": none)."""

    __slots__ = ("earliest", "latest", "ordered")

    def __init__(self, *, ordered: bool = True, earliest: bytes = b"", latest: bytes = b"") -> None:
        """Start as for a file with no timed line."""
        self.ordered = ordered
        self.earliest = earliest
        self.latest = latest

    def __repr__(self) -> str:
        """Show the findings, for test failures."""
        return f"FileOrder(ordered={self.ordered}, {self.earliest!r}..{self.latest!r})"

    def may_hold(self, since: datetime | None, until: datetime | None) -> bool:
        """Tell whether a line of this file can fall in ``[since, until)``."""
        if not self.latest:
            return False  # no line has a time: none matches a time filter
        if since is not None and self.latest < fixed_text(since):
            return False
        return until is None or self.earliest < fixed_text(until)


def line_time(line: bytes) -> datetime | None:
    """Return the time of one line, or None when it is not an event with a time. Never raises."""
    if refused(line):
        return None
    try:
        obj = stdlib_decode(line.decode("utf-8"))
    except Exception:
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("timestamp")
    return parse_event_time(value if value is not None else obj.get("ts"))


def _slow_stamp(line: bytes) -> bytes:
    """The time of a line not in the watcher's own form, as fixed text (b"": none)."""
    if not line or line.isspace():
        return b""
    when = line_time(line)
    return b"" if when is None else fixed_text(when)


def _parse(stamp: bytes) -> datetime | None:
    return parse_event_time(stamp.decode("ascii", "replace"))


class _Check:
    """A pass over lines in file order, resumable where it stopped."""

    __slots__ = ("_limit", "margin", "order")

    def __init__(self, order: FileOrder, margin: timedelta) -> None:
        self.order = order
        self.margin = margin
        self._limit: tuple[bytes, bytes] | None = None  # (latest, what margin before it is)

    def _floor(self, latest: bytes) -> bytes | None:
        """``margin`` before ``latest`` (None: ``latest`` is no time, so nothing is known)."""
        if self._limit is None or self._limit[0] != latest:
            when = _parse(latest)
            self._limit = (latest, b"" if when is None else fixed_text(when - self.margin))
        return self._limit[1] or None

    def feed(self, block: bytes) -> None:
        """Take in a block of whole lines, in file order.

        Per line only a cheap test of the watcher's own form runs in Python; the running
        latest time, the earliest and the lines behind it are found by C loops, and
        only those behind (a few percent) are compared as times.
        """
        prefix, close, end = _PREFIX, b'Z"', _STAMP_END
        start, key = len(_PREFIX), b'"timestamp"'
        stamps = [
            line[start:end]
            if line[: len(prefix)] == prefix
            and line[end - 1 : end + 1] == close
            and b"\\u" not in line  # a key spelt with escapes needs one
            and line.count(key) == 1
            else _slow_stamp(line)
            for line in block.split(b"\n")
        ]
        stamps = [stamp for stamp in stamps if stamp]
        if not stamps:
            return
        order = self.order
        from itertools import accumulate, compress  # noqa: PLC0415 - only when checking

        running = list(accumulate([order.latest, *stamps], max))[1:]
        if order.ordered:
            for index in compress(range(len(stamps)), map(bytes.__lt__, stamps, running)):
                floor = self._floor(running[index])
                if floor is None or (stamps[index] < floor and _parse(stamps[index]) is not None):
                    order.ordered = False
                    break
        order.latest = running[-1]
        least = min(stamps)
        if not order.earliest or least < order.earliest:
            order.earliest = least


def check_lines(blocks: Iterable[bytes], margin: timedelta) -> FileOrder:
    """Find the order of the lines in ``blocks`` (whole lines each), from nothing."""
    check = _Check(FileOrder(), margin)
    for block in blocks:
        check.feed(block)
    return check.order


class _Entry:
    """One remembered check: the file's identity, how far it was read, what it found."""

    __slots__ = ("head", "key", "order", "seen", "tail")

    def __init__(self, key: str, seen: int, head: str, tail: str, order: FileOrder) -> None:
        self.key = key
        self.seen = seen
        self.head = head
        self.tail = tail
        self.order = order

    def text(self) -> str:
        order = self.order
        first = order.earliest.decode("ascii", "replace") or "-"
        last = order.latest.decode("ascii", "replace") or "-"
        return f"{self.key} {self.seen} {self.head} {self.tail} {int(order.ordered)} {first} {last}"


def _read_entry(line: str) -> _Entry | None:
    parts = line.split()
    if len(parts) != 9:  # noqa: PLR2004 - the fields _Entry.text writes
        return None
    dev, ino, margin, seen, head, tail, ordered, earliest, latest = parts
    try:
        order = FileOrder(
            ordered=ordered == "1",
            earliest=b"" if earliest == "-" else earliest.encode(),
            latest=b"" if latest == "-" else latest.encode(),
        )
        return _Entry(f"{dev} {ino} {margin}", int(seen), head, tail, order)
    except ValueError:
        return None


def cache_path(environ: Mapping[str, str]) -> str | None:
    """Where this user's checks are kept (None: no home to keep them in)."""
    base = environ.get("XDG_CACHE_HOME") or ""
    if not base.startswith("/"):
        home = environ.get("HOME") or ""
        if not home.startswith("/"):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "ds01-events", "time-order")


class OrderBook:
    """The remembered checks of one user, loaded once per query, saved if anything changed."""

    def __init__(self, path: str | None) -> None:
        """Load the checks kept at ``path`` (None, missing or unreadable: none)."""
        self.path = path
        self._entries: dict[str, _Entry] = {}
        self._changed = False
        if path is None:
            return
        lines = _read_own(path)
        if not lines or lines[0] != _VERSION:
            return
        for line in lines[1:]:
            entry = _read_entry(line)
            if entry is not None:
                self._entries[entry.key] = entry

    def order_of(self, path: StrPath, margin: timedelta) -> FileOrder:
        """The order of every line of ``path`` now, checking only what was not seen before."""
        compressed = reader.is_compressed(path)
        with reader.open_log(path) as handle:
            status = os.fstat(handle.fileno())
            inode = f"{status.st_ino}"
            if compressed:  # never appended to: its size and time say it is the same
                inode += f"/{status.st_size}.{status.st_mtime_ns}"
            key = f"{status.st_dev} {inode} {int(margin.total_seconds() * 1e6)}"
            size = status.st_size
            entry = self._entries.get(key)
            head = "-" if compressed else _probe(handle, 0, min(size, _PROBE))
            if (
                entry is not None
                and not compressed
                and (
                    entry.seen > size
                    or entry.head != head
                    or entry.tail != _probe(handle, max(entry.seen - _PROBE, 0), entry.seen)
                )
            ):
                entry = None  # not the file that was checked: check it again
            if entry is not None and (compressed or entry.seen == size):
                return entry.order
            if entry is not None:
                check, start = _Check(entry.order, margin), entry.seen
            else:
                check, start = _Check(FileOrder(), margin), 0
        seen = start
        for block in reader.iter_chunks(path, start, None if compressed else size):
            cut = len(block) if block.endswith(b"\n") else block.rfind(b"\n") + 1
            check.feed(block[:cut] if cut < len(block) else block)
            seen += cut
            if cut < len(block):
                break  # a last line still being written: checked next time
        tail = "-"
        if not compressed:
            with reader.open_log(path) as handle:
                tail = _probe(handle, max(seen - _PROBE, 0), seen)
        self._entries.pop(key, None)
        self._entries[key] = _Entry(key, seen, head, tail, check.order)
        self._changed = True
        return check.order

    def save(self) -> None:
        """Keep what was learnt, if anything (quietly not, where this user cannot write)."""
        if not self._changed or self.path is None:
            return
        entries = list(self._entries.values())[-_KEPT_ENTRIES:]
        text = "\n".join([_VERSION, *(e.text() for e in entries)]) + "\n"
        partial = f"{self.path}.{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            with open(partial, "w", encoding="ascii", errors="replace") as out:
                out.write(text)
            os.replace(partial, self.path)
        except OSError:
            try:  # noqa: SIM105 - contextlib costs more to import than this
                os.unlink(partial)
            except OSError:
                pass
        self._changed = False


def _read_own(path: str) -> list[str]:
    """The lines of ``path`` if this user alone can have written it (else none).

    A file another user could write (sudo keeping a user's ``HOME``) could claim a
    file is in order when it is not, and so hide lines: it is not read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if (
            status.st_uid != os.geteuid()
            or status.st_mode & 0o022
            or not stat.S_ISREG(status.st_mode)
        ):
            return []
        return handle.read(1 << 20).decode("ascii", "replace").splitlines()


def _probe(handle: object, start: int, stop: int) -> str:
    """The file's bytes from ``start`` to ``stop`` as hex ("-": none)."""
    seek: Callable[[int], int] = handle.seek  # type: ignore[attr-defined]
    read: Callable[[int], bytes] = handle.read  # type: ignore[attr-defined]
    if stop <= start:
        return "-"
    seek(start)
    return read(stop - start).hex()


def _time_at_or_after(handle: object, offset: int, size: int) -> tuple[int, datetime | None]:
    """Find the first line with a time starting at or after ``offset``: (start, time)."""
    read: Callable[[int], bytes] = handle.read  # type: ignore[attr-defined]
    seek: Callable[[int], int] = handle.seek  # type: ignore[attr-defined]
    position = offset
    if position > 0:
        seek(position - 1)
        data = b""
        while b"\n" not in data:
            more = read(8192)
            if not more:
                return size, None
            data += more
        position = position - 1 + data.index(b"\n") + 1
    while position < size:
        seek(position)
        line = read(4096).split(b"\n", 1)[0]
        if len(line) == 4096:  # noqa: PLR2004 - longer than the watcher writes: step over it
            position = _next_line(handle, position + 4096, size)
            continue
        when = line_time(line)
        if when is not None:
            return position, when
        position += len(line) + 1
    return size, None


def _next_line(handle: object, offset: int, size: int) -> int:
    """Return the first line start after ``offset`` (``size``: none)."""
    read: Callable[[int], bytes] = handle.read  # type: ignore[attr-defined]
    seek: Callable[[int], int] = handle.seek  # type: ignore[attr-defined]
    seek(offset)
    while block := read(1 << 16):
        newline = block.find(b"\n")
        if newline >= 0:
            return offset + newline + 1
        offset += len(block)
    return size


def bisect_offset(path: StrPath, when: datetime) -> int:
    """Find a line-start offset of an *ordered* plain file before which every line is < ``when``.

    Lines without a time are stepped over. Costs O(log size) short reads. Only for a
    file `OrderBook.order_of` found ordered: elsewhere one line proves nothing.
    """
    with reader.open_log(path) as handle:
        size = handle.seek(0, os.SEEK_END)
        lo, hi = 0, size
        while hi - lo > _CLOSE_ENOUGH:
            mid = (lo + hi) // 2
            start, found = _time_at_or_after(handle, mid, size)
            if found is not None and found < when:
                lo = start
            else:
                hi = mid
        # lo is a line start (0 or a found line start).
        return lo
