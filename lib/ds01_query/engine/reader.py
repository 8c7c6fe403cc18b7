"""Reading the live log and its rotated siblings as bytes: whole lines, oldest first.

Siblings of ``events.jsonl`` are ``events.jsonl-YYYYMMDD``, ``events.jsonl-YYYYMMDD-EPOCH``
(our logrotate ``dateformat``), ``events.jsonl.N`` (``.1`` newest), each optionally
``.gz``. Nothing here decodes JSON except `line_time`, used to bisect a time-ordered
file. Memory is bounded by the chunk size, whatever the file size.

Paths are plain strings (``os.PathLike`` accepted): pathlib, and the re it imports,
cost more to load than a bisected ``--since`` query takes.
"""

from __future__ import annotations

import os

from ds01_query.engine.decoding import stdlib_decode
from ds01_query.engine.query import parse_event_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from collections.abc import Callable, Iterator
    from datetime import datetime

    StrPath = str | os.PathLike[str]

CHUNK_BYTES = 8 << 20
_CLOSE_ENOUGH = 4096  # stop bisecting: scanning this much is cheaper than a seek
DEFAULT_GROUP = "adm"


class LogUnreadableError(OSError):
    """A log file this user may not read; the message names the file and the group."""

    def __init__(self, path: StrPath, reason: str) -> None:
        super().__init__(
            f"cannot read {os.fspath(path)}: {reason}; ask an admin to add you to group "
            f"{_group_of(path)!r} (sudo usermod -aG {_group_of(path)} $USER), then log in again"
        )
        self.path = os.fspath(path)


def _group_of(path: StrPath) -> str:
    import grp  # noqa: PLC0415 - only for this message

    try:
        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        return os.environ.get("DS01_EVENTS_GROUP", DEFAULT_GROUP)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _rotated_key(rest: str) -> tuple[int, str, int] | None:
    """Where a sibling sorts, from the name after the live file's: None if not rotated.

    ``-YYYYMMDD[-EPOCH][.gz]`` sorts by date then epoch; ``.N[.gz]`` (higher is older)
    before every dated name.
    """
    rest = rest.removesuffix(".gz")
    if rest.startswith("-"):
        date, dash, epoch = rest[1:].partition("-")
        if len(date) == len("YYYYMMDD") and _digits(date) and (not dash or _digits(epoch)):
            return (1, date, int(epoch or 0))
    elif rest.startswith(".") and _digits(rest[1:]):
        return (0, "", -int(rest[1:]))
    return None


def log_files(live: StrPath) -> list[str]:
    """``live``'s rotated siblings oldest first, then ``live`` itself if it exists.

    Numbered names (``.N``: higher is older) count as older than dated names, which sort
    by date then epoch.
    """
    live = os.fspath(live)
    folder, prefix = os.path.split(live)
    try:
        names = os.listdir(folder or ".")
    except FileNotFoundError:
        names = []
    except PermissionError as exc:
        raise LogUnreadableError(folder, exc.strerror or "permission denied") from exc
    keyed = ((_rotated_key(name[len(prefix) :]), name) for name in names if name.startswith(prefix))
    rotated = sorted((key, os.path.join(folder, name)) for key, name in keyed if key is not None)
    ordered = [path for _, path in rotated]
    if os.path.exists(live) or not ordered:
        ordered.append(live)
    return ordered


def is_compressed(path: StrPath) -> bool:
    """Tell ``.gz`` files (read by streaming, never by seeking)."""
    return os.fspath(path).endswith(".gz")


def check_readable(path: StrPath) -> None:
    """Raise LogUnreadableError (or FileNotFoundError) unless ``path`` can be opened."""
    try:
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc


def map_plain(path: StrPath) -> mmap.mmap | None:
    """Map a plain file read-only (None when it is empty); close the map when done.

    Our logrotate config renames and never truncates, so the mapped bytes stay there
    (a file truncated under a mapping would fault on the lost pages).
    """
    import mmap  # noqa: PLC0415 - only scans with needles map the file

    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return None
        return mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ)


def iter_chunks(
    path: StrPath, start: int = 0, end: int | None = None, size: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Blocks of whole lines of ``path`` from byte ``start`` to ``end`` (plain files).

    A final line without a newline is yielded too (a writer may be mid-append; the
    caller decides). ``.gz`` files ignore ``start``/``end`` and stream.
    """
    for block, stop in iter_blocks(path, start, end, size):
        yield block if stop == len(block) else block[:stop]


def iter_blocks(
    path: StrPath, start: int = 0, end: int | None = None, size: int = CHUNK_BYTES
) -> Iterator[tuple[bytes, int]]:
    """Like `iter_chunks`, but as ``(block, stop)``: ``block[:stop]`` is whole lines.

    Saves copying each block to cut off the partial line at its end: a plain file is
    read on from the start of that line instead.
    """
    if is_compressed(path):
        for chunk in _stream_chunks(path, size):
            yield chunk, len(chunk)
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    with handle:
        position = handle.seek(start)
        while end is None or position < end:
            want = size if end is None else min(size, end - position)
            block = handle.read(want)
            if not block:
                return
            if end is not None and position + len(block) >= end and not block.endswith(b"\n"):
                # Finish the line the end offset falls in, never cut it.
                block += handle.readline()
                yield block, len(block)
                return
            if len(block) < want:  # end of file: a last line without newline too
                yield block, len(block)
                return
            stop = block.rfind(b"\n") + 1
            if stop == 0:  # a line longer than the block: read it whole
                block += handle.readline()
                stop = len(block)
            yield block, stop
            position = handle.seek(position + stop)


def _stream_chunks(path: StrPath, size: int) -> Iterator[bytes]:
    import gzip  # noqa: PLC0415 - only rotated files are compressed

    try:
        handle = gzip.open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    with handle:
        carry = b""
        while True:
            block = handle.read(size)
            if not block:
                if carry:
                    yield carry
                return
            cut = block.rfind(b"\n")
            if cut < 0:
                carry += block
                continue
            yield carry + block[: cut + 1]
            carry = block[cut + 1 :]


def next_line_start(path: StrPath, offset: int) -> int:
    """Return the first line start at or after ``offset`` in a plain file (its size: none)."""
    if offset <= 0:
        return 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    with handle:
        position = handle.seek(offset - 1)
        while block := handle.read(1 << 16):
            newline = block.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            position += len(block)
        return position


def lines_backwards(path: StrPath, end: int | None = None, block: int = 1 << 16) -> Iterator[bytes]:
    """Yield the lines of a plain file before byte ``end``, last first."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    with handle:
        position = handle.seek(0, os.SEEK_END) if end is None else end
        tail = b""
        while position > 0:
            step = min(block, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + tail
            parts = data.split(b"\n")
            tail = parts[0]
            yield from (p for p in reversed(parts[1:]) if p)
        if tail:
            yield tail


def line_time(line: bytes) -> datetime | None:
    """Return the time of one line, or None when it is not an event with a time."""
    try:
        obj = stdlib_decode(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("timestamp")
    return parse_event_time(value if value is not None else obj.get("ts"))


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
        when = line_time(line)
        if when is not None:
            return position, when
        position += len(line) + 1
    return size, None


def bisect_offset(path: StrPath, when: datetime) -> int:
    """Find a line-start offset in a time-ordered plain file before which every line is < ``when``.

    Lines without a time are stepped over. Costs O(log size) short reads.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    with handle:
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


def first_time(path: StrPath) -> datetime | None:
    """Return the time of the first line that has one (reads only the start of the file)."""
    for chunk in iter_chunks(path, size=1 << 16):
        for line in chunk.split(b"\n"):
            when = line_time(line)
            if when is not None:
                return when
        return None
    return None
