"""The query engine: matching events from the log files, exact and without reading more than needed.

Exactness: a line is returned only after it is decoded in full (`decoding`, last
duplicate key wins, like jq) and passes `query.matches`. The shortcuts only skip lines that
cannot match: byte needles (`query.needles`) and, for ``--since``/``--until`` on a
plain file, bisection on byte offsets widened by ``margin`` for lines slightly out
of time order near rotation boundaries.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from ds01_events import bytescan, reader
from ds01_events.decoding import EventDecoder
from ds01_events.query import event_time, matches, needles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from ds01_events.query import Filters, Obj

DEFAULT_MARGIN = timedelta(minutes=10)
# One per process: it only remembers whether msgspec has been loaded yet.
_decoder = EventDecoder()


class ScanStats:
    """What a query met on the way: lines it could not decode, by file."""

    __slots__ = ("malformed", "where")

    def __init__(self) -> None:
        """Start with nothing counted."""
        self.malformed = 0
        self.where: dict[str, int] = {}

    def note_malformed(self, path: Path) -> None:
        """Count one undecodable line in ``path``."""
        self.malformed += 1
        self.where[str(path)] = self.where.get(str(path), 0) + 1


class Match:
    """One matching line (no newline) and what it decodes to."""

    __slots__ = ("event", "line")

    def __init__(self, line: bytes, event: Obj) -> None:
        """Pair the raw line with its decoded event."""
        self.line = line
        self.event = event


def decode_event(line: bytes) -> Obj | None:
    """Return the object a line holds, or None when it is not a JSON object."""
    return _decoder(line)


def candidate_lines(
    chunk: bytes, wanted: Sequence[bytes] | None, stop: int | None = None
) -> Iterator[bytes]:
    """Yield the lines of ``chunk[:stop]`` (in order) holding one of ``wanted``; all when None.

    Each needle is searched over the whole block at C speed; line boundaries are
    looked for only around a hit.
    """
    stop = len(chunk) if stop is None else stop
    if wanted is None:
        body = chunk if stop == len(chunk) else chunk[:stop]
        yield from (line for line in body.split(b"\n") if line.strip())
        return
    spans: dict[int, int] = {}
    for needle in wanted:
        # A lone byte is found with memchr, several times faster than a longer needle:
        # look for the backslash of b"\\u", then for the whole needle in that line.
        probe = needle[:1] if needle == b"\\u" else needle
        find = chunk.find if len(probe) == 1 else bytescan.finder(chunk)
        position = find(probe, 0, stop)
        while position >= 0:
            end = chunk.find(b"\n", position, stop)
            if end < 0:
                end = stop
            if probe is needle or chunk.find(needle, position, end) >= 0:
                spans[chunk.rfind(b"\n", 0, position) + 1] = end
            position = find(probe, end + 1, stop)
    for start in sorted(spans):
        yield chunk[start : spans[start]]


def _byte_range(path: Path, filters: Filters, margin: timedelta) -> tuple[int, int | None]:
    if reader.is_compressed(path):
        return 0, None
    start = 0 if filters.since is None else reader.bisect_offset(path, filters.since - margin)
    end = None
    if filters.until is not None:
        # bisect_offset leaves at most a few KiB of lines below the bound unread.
        end = reader.bisect_offset(path, filters.until + margin) + 8192
    return start, end


def _skip_file(files: Sequence[Path], index: int, filters: Filters, margin: timedelta) -> bool:
    """Tell whether a newer file starts before ``since``: every line here is older."""
    if filters.since is None or index + 1 >= len(files):
        return False
    first = reader.first_time(files[index + 1])
    return first is not None and first < filters.since - margin


def iter_matches(
    files: Sequence[Path],
    filters: Filters,
    stats: ScanStats,
    margin: timedelta = DEFAULT_MARGIN,
) -> Iterator[Match]:
    """Every matching event in ``files`` (oldest first), in file order."""
    wanted = needles(filters)
    for index, path in enumerate(files):
        if _skip_file(files, index, filters, margin):
            continue
        start, end = _byte_range(path, filters, margin)
        for block, stop in reader.iter_blocks(path, start, end):
            for line in candidate_lines(block, wanted, stop):
                event = decode_event(line)
                if event is None:
                    stats.note_malformed(path)
                elif matches(event, filters, line):
                    yield Match(line.rstrip(b"\r"), event)


def last_matches(
    files: Sequence[Path],
    filters: Filters,
    count: int,
    *,
    stats: ScanStats,
    live_end: int | None = None,
    margin: timedelta = DEFAULT_MARGIN,
) -> list[Match]:
    """Return the last ``count`` matches, oldest first, reading plain files from the end.

    ``live_end``: read the newest file only up to this offset (where --follow starts).
    """
    found: list[Match] = []
    oldest = None if filters.since is None else filters.since - margin
    for path in reversed(files):
        end = live_end if path == files[-1] else None
        if len(found) >= count:
            break
        if reader.is_compressed(path):
            window: deque[Match] = deque(maxlen=count - len(found))
            window.extend(iter_matches([path], filters, stats))
            found.extend(reversed(window))
            continue
        for line in reader.lines_backwards(path, end):
            if not line.strip():
                continue
            event = decode_event(line)
            if event is None:
                stats.note_malformed(path)
            elif matches(event, filters, line):
                found.append(Match(line.rstrip(b"\r"), event))
                if len(found) >= count:
                    break
            elif oldest is not None and _older(event, oldest):
                # Time-ordered within the margin: nothing further back can match.
                found.reverse()
                return found
    found.reverse()
    return found


def _older(event: Obj, bound: datetime) -> bool:
    when = event_time(event)
    return when is not None and when < bound
