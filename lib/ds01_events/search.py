"""The query engine: matching events from the log files, exact and without reading more than needed.

Exactness: a line is returned only after it is decoded in full (`decoding`, last
duplicate key wins, like jq) and passes `query.matches`. The shortcuts only skip lines that
cannot match: byte needles (`query.needles`) and, for ``--since``/``--until`` on a
plain file, bisection on byte offsets widened by ``margin`` for lines slightly out
of time order near rotation boundaries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ds01_events import bytescan, reader
from ds01_events.decoding import EventDecoder
from ds01_events.query import event_time, matches, needles

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from collections.abc import Iterator, Sequence

    from ds01_events.bytescan import Buffer, Finder
    from ds01_events.query import Filters, Obj
    from ds01_events.reader import StrPath

DEFAULT_MARGIN = timedelta(minutes=10)
SCAN_WINDOW = 8 << 20  # bytes of a mapped file searched before its candidates are yielded
# One per process: it only remembers whether msgspec has been loaded yet.
_decoder = EventDecoder()


class ScanStats:
    """What a query met on the way: lines it could not decode, by file."""

    __slots__ = ("malformed", "where")

    def __init__(self) -> None:
        """Start with nothing counted."""
        self.malformed = 0
        self.where: dict[str, int] = {}

    def note_malformed(self, path: StrPath) -> None:
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
    chunk: Buffer,
    wanted: Sequence[bytes] | None,
    stop: int | None = None,
    *,
    start: int = 0,
    find: Finder | None = None,
) -> list[bytes]:
    """Return the lines of ``chunk[start:stop]``, in order, holding one of ``wanted`` (None: all).

    ``start`` must be a line start. Each needle is searched over the whole range at C
    speed (``find``: a `bytescan` searcher over ``chunk``); line boundaries are looked
    for only around a hit.
    """
    stop = len(chunk) if stop is None else stop
    if wanted is None:
        if isinstance(chunk, bytes) and start == 0 and stop == len(chunk):
            body = chunk
        else:
            body = chunk[start:stop]
        return [line for line in body.split(b"\n") if line.strip()]
    spans: dict[int, int] = {}
    plain = [n for n in wanted if not n.startswith(b"\\")]
    escaped = [n for n in wanted if n.startswith(b"\\")]
    for needle in plain:
        if find is None:
            find = bytescan.finder(chunk) if isinstance(chunk, bytes) else chunk.find
        _add_spans(spans, chunk, find, needle, (), start=start, stop=stop)
    if escaped:
        # One pass for all escape needles: memchr finds each backslash several times
        # faster than a longer needle is found; the needles are then looked for in its line.
        checks = () if b"\\" in escaped else tuple(escaped)
        _add_spans(spans, chunk, chunk.find, b"\\", checks, start=start, stop=stop)
    return [chunk[begin : spans[begin]] for begin in sorted(spans)]


def _add_spans(
    spans: dict[int, int],
    chunk: Buffer,
    find: Finder,
    probe: bytes,
    checks: tuple[bytes, ...],
    *,
    start: int,
    stop: int,
) -> None:
    """Note ``{line start: line end}`` of each line holding ``probe`` (and one of ``checks``)."""
    position = find(probe, start, stop)
    while position >= 0:
        end = chunk.find(b"\n", position, stop)
        if end < 0:
            end = stop
        if not checks or any(chunk.find(c, position, end) >= 0 for c in checks):
            spans[chunk.rfind(b"\n", start, position) + 1 or start] = end
        position = find(probe, end + 1, stop)


def _line_end(buffer: Buffer, position: int, last: int) -> int:
    """Return the offset just past the line ``position`` falls in (at most ``last``)."""
    newline = buffer.find(b"\n", position, last)
    return newline + 1 if newline >= 0 else last


def mapped_candidates(
    path: StrPath, wanted: Sequence[bytes], start: int = 0, end: int | None = None
) -> Iterator[bytes]:
    """`candidate_lines` of a plain file from ``start`` to the line ``end`` falls in."""
    for batch in _mapped_batches(path, wanted, start, end):
        yield from batch


def _mapped_batches(
    path: StrPath, wanted: Sequence[bytes], start: int, end: int | None
) -> Iterator[list[bytes]]:
    """`candidate_lines` of a plain file, a list per window of the map.

    The file is mapped, not read: only candidate lines are copied out, window by
    window, so a full scan costs the needle search and little else. The mapping's
    size is the file's when the scan starts; lines appended later are not read.
    """
    mapped = reader.map_plain(path)
    if mapped is None:
        return
    with mapped, bytescan.Searcher(mapped) as searcher:
        size = len(mapped)
        last = size if end is None else _line_end(mapped, max(end - 1, 0), size)
        position = start
        while position < last:
            stop = min(position + SCAN_WINDOW, last)
            if stop < last:
                cut = mapped.rfind(b"\n", position, stop) + 1
                stop = cut if cut > position else _line_end(mapped, stop, last)
            yield candidate_lines(mapped, wanted, stop, start=position, find=searcher.find)
            _forget_pages(mapped, stop)
            position = stop


def _forget_pages(mapped: mmap.mmap, stop: int) -> None:
    """Unmap every searched page before ``stop`` from this process (they stay in the page cache).

    Without it every page a scan touched counts in its RSS until the end: a full scan
    of a 2 GB log would look like a 2 GB process. Always from offset 0: the kernel
    maps a whole large folio on a fault, so pages before this window come back when
    its first lines are read; dropping them again costs little.
    """
    import mmap  # noqa: PLC0415 - already loaded by reader.map_plain

    last = stop // mmap.PAGESIZE * mmap.PAGESIZE  # the next window may start on this page
    if last > 0 and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED, 0, last)


def _byte_range(path: StrPath, filters: Filters, margin: timedelta) -> tuple[int, int | None]:
    if reader.is_compressed(path):
        return 0, None
    start = 0 if filters.since is None else reader.bisect_offset(path, filters.since - margin)
    end = None
    if filters.until is not None:
        # bisect_offset leaves at most a few KiB of lines below the bound unread.
        end = reader.bisect_offset(path, filters.until + margin) + 8192
    return start, end


def _skip_file(files: Sequence[StrPath], index: int, filters: Filters, margin: timedelta) -> bool:
    """Tell whether a newer file starts before ``since``: every line here is older."""
    if filters.since is None or index + 1 >= len(files):
        return False
    first = reader.first_time(files[index + 1])
    return first is not None and first < filters.since - margin


def iter_matches(
    files: Sequence[StrPath],
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
        # Batches, not a generator per line: resuming nested generators for each of
        # thousands of candidates cost more than decoding them.
        for batch in _candidate_batches(path, wanted, start, end):
            for line in batch:
                event = _decoder(line)
                if event is None:
                    stats.note_malformed(path)
                elif matches(event, filters, line):
                    yield Match(line.rstrip(b"\r"), event)


def _candidate_batches(
    path: StrPath, wanted: Sequence[bytes] | None, start: int, end: int | None
) -> Iterator[list[bytes]]:
    if wanted is not None and not reader.is_compressed(path):
        return _mapped_batches(path, wanted, start, end)
    return (
        candidate_lines(block, wanted, stop) for block, stop in reader.iter_blocks(path, start, end)
    )


def last_matches(
    files: Sequence[StrPath],
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
            from collections import deque  # noqa: PLC0415 - only for compressed files

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
