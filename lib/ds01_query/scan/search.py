"""The query engine: matching events from the log files, exact and without reading more than needed.

Exactness: a line is returned only after it is decoded in full (`decoding`, last
duplicate key wins, like jq) and passes `query.matches`. The shortcuts only skip lines that
cannot match: byte needles (`query.needles`) and, for ``--since``/``--until``, what
`timeorder` knows of each file: a file whose times all fall outside the bounds is
skipped, and only a file seen to be in time order (within ``margin``) is bisected or
read backwards only until an older line. A single process reads everything.
"""

from __future__ import annotations

import os

from ds01_query.engine import reader
from ds01_query.engine.dates import datetime, timedelta
from ds01_query.engine.decoding import MAX_LINE_BYTES, EventDecoder
from ds01_query.engine.query import event_time, matches, needles
from ds01_query.engine.timeorder import OrderBook, bisect_offset

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from collections.abc import Iterator, Sequence

    from ds01_query.engine.query import Filters, Obj
    from ds01_query.engine.reader import StrPath
    from ds01_query.engine.timeorder import FileOrder
    from ds01_query.scan.bytescan import Buffer, Finder

DEFAULT_MARGIN = timedelta(minutes=10)
SCAN_WINDOW = 8 << 20  # bytes of a mapped file searched before its candidates are yielded
_KEEP = MAX_LINE_BYTES + 1  # what is copied out of an overlong line: enough to refuse it
# One per process: it only remembers whether msgspec has been loaded yet.
_decoder = EventDecoder()


class ScanStats:
    """What a query met on the way: lines it could not decode, by file."""

    __slots__ = ("malformed", "where")

    def __init__(self) -> None:
        """Start with nothing counted."""
        self.malformed = 0
        self.where: dict[str, int] = {}

    def note_malformed(self, path: StrPath, count: int = 1) -> None:
        """Count ``count`` undecodable lines in ``path``."""
        self.malformed += count
        self.where[str(path)] = self.where.get(str(path), 0) + count


class Match:
    """One matching line (no newline) and what it decodes to."""

    __slots__ = ("event", "line")

    def __init__(self, line: bytes, event: Obj) -> None:
        """Pair the raw line with its decoded event."""
        self.line = line
        self.event = event


class Segment:
    """A byte range of one log file: from ``start`` through the line ``end`` falls in.

    ``end`` None: to the end of the file. ``start`` is a line start; a compressed
    file is always read whole.
    """

    __slots__ = ("end", "path", "start")

    def __init__(self, path: StrPath, start: int = 0, end: int | None = None) -> None:
        """Name the range; see the class."""
        self.path = path
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        """Show the range, for test failures."""
        return f"Segment({self.path!r}, {self.start}, {self.end})"


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
            from ds01_query.scan import bytescan  # noqa: PLC0415 - only full scans search in C

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
    # Runs once per hit (tens of thousands of times in a full scan): bound methods, and
    # no generator for the usual single check.
    line_find, line_rfind = chunk.find, chunk.rfind
    only = checks[0] if len(checks) == 1 else None
    position = find(probe, start, stop)
    while position >= 0:
        end = line_find(b"\n", position, stop)
        if end < 0:
            end = stop
        if (
            not checks
            or (only is not None and line_find(only, position, end) >= 0)
            or (only is None and any(line_find(c, position, end) >= 0 for c in checks))
        ):
            begin = line_rfind(b"\n", start, position) + 1 or start
            spans[begin] = min(end, begin + _KEEP)  # an overlong line: refused, not copied
        position = find(probe, end + 1, stop)


def _line_end(buffer: Buffer, position: int, last: int) -> int:
    """Return the offset just past the line ``position`` falls in (at most ``last``)."""
    newline = buffer.find(b"\n", position, last)
    return newline + 1 if newline >= 0 else last


def mapped_candidates(
    path: StrPath, wanted: Sequence[bytes], start: int = 0, end: int | None = None
) -> Iterator[bytes]:
    """`candidate_lines` of a plain file from ``start`` to the line ``end`` falls in."""
    for _, batch in _mapped_batches(path, wanted, start, end):
        yield from batch


def _mapped_batches(
    path: StrPath, wanted: Sequence[bytes], start: int, end: int | None
) -> Iterator[tuple[int, list[bytes]]]:
    """`candidate_lines` of a plain file, a list per window of the map, with the window's end.

    The file is mapped, not read: only candidate lines are copied out, window by
    window, so a full scan costs the needle search and little else. The mapping's
    size is the file's when the scan starts; lines appended later are not read.
    """
    from ds01_query.scan import bytescan  # noqa: PLC0415 - a bisected query never maps a file

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
                if cut <= position and stop - position > MAX_LINE_BYTES:
                    position = _skip_line(mapped, stop, last)  # far too long to be an event
                    continue
                stop = cut if cut > position else _line_end(mapped, stop, last)
            yield stop, candidate_lines(mapped, wanted, stop, start=position, find=searcher.find)
            _forget_pages(mapped, stop)
            position = stop


def _skip_line(mapped: mmap.mmap, position: int, last: int) -> int:
    """Return where the line ``position`` falls in ends, a window at a time (pages let go)."""
    while position < last:
        stop = min(position + SCAN_WINDOW, last)
        newline = mapped.find(b"\n", position, stop)
        _forget_pages(mapped, stop)
        if newline >= 0:
            return newline + 1
        position = stop
    return last


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


def _byte_range(
    path: StrPath, order: FileOrder | None, filters: Filters, margin: timedelta
) -> tuple[int, int | None]:
    """The bytes of ``path`` to read: all, unless its order is known to allow bisection."""
    if order is None or not order.ordered or reader.is_compressed(path):
        return 0, None
    start = 0 if filters.since is None else bisect_offset(path, filters.since - margin)
    end = None
    if filters.until is not None:
        # bisect_offset leaves at most a few KiB of lines below the bound unread.
        end = bisect_offset(path, filters.until + margin) + 8192
    return start, end


def _order(path: StrPath, filters: Filters, margin: timedelta, book: OrderBook) -> FileOrder | None:
    """The order of ``path`` when a time filter needs it (None: no time filter)."""
    if filters.since is None and filters.until is None:
        return None
    return book.order_of(path, margin)


def segments_to_read(
    files: Sequence[StrPath],
    filters: Filters,
    margin: timedelta = DEFAULT_MARGIN,
    book: OrderBook | None = None,
) -> list[Segment]:
    """The ranges of ``files`` (oldest first) that can hold a match, in file order.

    ``book``: where file orders are remembered (None: checked afresh, forgotten after).
    """
    book = OrderBook(None) if book is None else book
    segments = []
    for path in files:
        order = _order(path, filters, margin, book)
        if order is None or order.may_hold(filters.since, filters.until):
            segments.append(Segment(path, *_byte_range(path, order, filters, margin)))
    return segments


def iter_matches(
    files: Sequence[StrPath],
    filters: Filters,
    stats: ScanStats,
    margin: timedelta = DEFAULT_MARGIN,
    book: OrderBook | None = None,
) -> Iterator[Match]:
    """Every matching event in ``files`` (oldest first), in file order."""
    segments = segments_to_read(files, filters, margin, book)
    wanted = needles(filters)
    for segment in segments:
        # Batches, not a generator per line: resuming nested generators for each of
        # thousands of candidates cost more than decoding them.
        for batch in segment_batches(segment, wanted):
            yield from matching(batch, filters, stats, segment.path)


def matching(lines: list[bytes], filters: Filters, stats: ScanStats, path: StrPath) -> list[Match]:
    """Return the lines that decode and pass ``filters``; count the others as malformed."""
    found: list[Match] = []
    keep = found.append
    for line in lines:
        event = _decoder.decode(line)  # looked up each time: it changes once msgspec loads
        if event is None:
            stats.note_malformed(path)
        elif matches(event, filters, line):
            keep(Match(line.rstrip(b"\r"), event))
    return found


def segment_batches(segment: Segment, wanted: Sequence[bytes] | None) -> Iterator[list[bytes]]:
    """The candidate lines of ``segment``, a list per block read, in order."""
    path, start, end = segment.path, segment.start, segment.end
    if wanted is not None and not reader.is_compressed(path):
        first = True
        for stop, batch in _mapped_batches(path, wanted, start, end):
            if first and stop > start:  # how many candidates the whole range will give
                last = os.path.getsize(path) if end is None else end
                _decoder.expect(len(batch) * (last - start) // (stop - start))
                first = False
            yield batch
        return
    for block, stop in reader.iter_blocks(path, start, end):
        yield candidate_lines(block, wanted, stop)


def last_matches(
    files: Sequence[StrPath],
    filters: Filters,
    count: int,
    *,
    stats: ScanStats,
    live_end: int | None = None,
    margin: timedelta = DEFAULT_MARGIN,
    book: OrderBook | None = None,
) -> list[Match]:
    """Return the last ``count`` matches, oldest first, reading plain files from the end.

    ``live_end``: read the newest file only up to this offset (where --follow starts).
    A file is read back only until a line older than ``--since`` (less the margin)
    when it is known to be in time order; any other file is read back to its start.
    """
    book = OrderBook(None) if book is None else book
    found: list[Match] = []
    oldest = None if filters.since is None else filters.since - margin
    for path in reversed(files):
        end = live_end if path == files[-1] else None
        if len(found) >= count:
            break
        order = _order(path, filters, margin, book)
        if order is not None and not order.may_hold(filters.since, filters.until):
            continue
        if reader.is_compressed(path):
            from collections import deque  # noqa: PLC0415 - only for compressed files

            window: deque[Match] = deque(maxlen=count - len(found))
            window.extend(iter_matches([path], filters, stats, margin, book))
            found.extend(reversed(window))
            continue
        stop_at = oldest if order is not None and order.ordered else None
        _read_back(path, end, filters, count, stop_at, found, stats)
    found.reverse()
    return found


def _read_back(  # noqa: PLR0917 - the state of last_matches, for one file
    path: StrPath,
    end: int | None,
    filters: Filters,
    count: int,
    stop_at: datetime | None,
    found: list[Match],
    stats: ScanStats,
) -> None:
    """Add ``path``'s matches to ``found``, last first, until it holds ``count``.

    ``stop_at``: stop at a line older than this (only for a file known to be in order).
    """
    for line in reader.lines_backwards(path, end):
        if not line.strip():
            continue
        event = decode_event(line)
        if event is None:
            stats.note_malformed(path)
        elif matches(event, filters, line):
            found.append(Match(line.rstrip(b"\r"), event))
            if len(found) >= count:
                return
        elif stop_at is not None and _older(event, stop_at):
            return  # in time order within the margin: nothing further back can match


def _older(event: Obj, bound: datetime) -> bool:
    when = event_time(event)
    return when is not None and when < bound
