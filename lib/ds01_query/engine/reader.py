"""Reading the live log and its rotated siblings as bytes: whole lines, oldest first.

Siblings of ``events.jsonl`` are ``events.jsonl-YYYYMMDD``, ``events.jsonl-YYYYMMDD-EPOCH``
(our logrotate ``dateformat``), ``events.jsonl.N`` (``.1`` newest), each optionally
``.gz``. Nothing here decodes JSON. Memory is bounded by the chunk size, whatever the
file size: a line longer than `MAX_LINE_BYTES` comes back cut to one byte over that
bound, which every decoder refuses, so it is counted as malformed.

Where the log's folder is writable by someone else, a sibling may be planted: a FIFO
(which would hang a plain ``open``), a link to ``/dev/zero`` or ``/etc/shadow``. Every
file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and read only when it is a regular
file (`open_log`); `screen` says which files to skip and which could be forged.

Paths are plain strings (``os.PathLike`` accepted): pathlib, and the re it imports,
cost more to load than a bisected ``--since`` query takes.
"""

from __future__ import annotations

import errno
import os
import stat

from ds01_query.engine.decoding import MAX_LINE_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from collections.abc import Iterable, Iterator
    from typing import BinaryIO

    StrPath = str | os.PathLike[str]

CHUNK_BYTES = 8 << 20
_KEEP = MAX_LINE_BYTES + 1  # what is kept of an overlong line: enough to be refused
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class LogUnreadableError(OSError):
    """A log file this user may not read; the message names the file and who can help."""

    def __init__(self, path: StrPath, reason: str) -> None:
        super().__init__(f"cannot read {os.fspath(path)}: {reason}; {access_hint(path)}")
        self.path = os.fspath(path)


class NotALogError(OSError):
    """A path that is not a regular file (a link, a FIFO, a device): never read."""

    def __init__(self, path: StrPath, kind: str) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        super().__init__(
            f"not reading {os.fspath(path)}: it is {kind}, not a regular file"
            f" (whoever can write to {folder} may have planted it)"
        )
        self.path = os.fspath(path)


def open_log(path: StrPath) -> BinaryIO:
    """Open a log file for reading: never through a link, never anything but a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a plain open waits for a
    writer); ``fstat`` on the open file then refuses it, with no window for a swap.
    Raises LogUnreadableError, NotALogError or FileNotFoundError.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except PermissionError as exc:
        raise LogUnreadableError(path, exc.strerror or "permission denied") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotALogError(path, "a symbolic link") from exc
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotALogError(path, next((name for test, name in _KINDS if test(mode)), "not a file"))
    return os.fdopen(fd, "rb")


def forgeable(status: os.stat_result) -> str | None:
    """Say why someone other than root could write a file with this status (None: nobody)."""
    if status.st_uid != 0:
        return f"owned by uid {status.st_uid}"
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"mode {stat.S_IMODE(status.st_mode):04o}"
    return None


def screen(paths: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
    """Split ``paths`` into (files to read, why each refused one is skipped, forgeable files).

    A missing file is dropped silently; an unreadable one raises LogUnreadableError.
    Each forgeable file is named with the reason: its lines may have been written by
    someone other than the watcher.
    """
    usable: list[str] = []
    refused: list[str] = []
    forged: list[str] = []
    for path in paths:
        try:
            handle = open_log(path)
        except FileNotFoundError:
            continue
        except NotALogError as exc:
            refused.append(str(exc))
            continue
        with handle:
            why = forgeable(os.fstat(handle.fileno()))
        if why is not None:
            forged.append(f"{os.path.basename(path)} ({why})")
        usable.append(path)
    return usable, refused, forged


def access_hint(path: StrPath) -> str:
    """What to ask for: a group that really may read ``path`` (never root), else read access.

    Joining the file's group helps only when that group has the read bit; root's group
    is no group to hand out, since it is root's own.
    """
    import grp  # noqa: PLC0415 - only for this message

    try:
        info = os.stat(path)
        group = grp.getgrgid(info.st_gid).gr_name
    except (OSError, KeyError):
        info, group = None, ""
    if (
        info is not None
        and info.st_mode & stat.S_IRGRP
        and info.st_gid != 0
        and group not in {"", "root"}
    ):
        return (
            f"ask an admin to add you to group {group!r}"
            f" (sudo usermod -aG {group} $USER), then log in again"
        )
    return "ask an admin for read access to it (see 'Who may read' in ds01-events --concepts)"


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
    if os.path.lexists(live) or not ordered:
        ordered.append(live)
    return ordered


def is_compressed(path: StrPath) -> bool:
    """Tell ``.gz`` files (read by streaming, never by seeking)."""
    return os.fspath(path).endswith(".gz")


def check_readable(path: StrPath) -> None:
    """Raise LogUnreadableError, NotALogError or FileNotFoundError unless ``path`` can be read."""
    open_log(path).close()


def map_plain(path: StrPath) -> mmap.mmap | None:
    """Map a plain file (None when it is empty); close the map when done. Never written.

    ``ACCESS_COPY`` (private): the same pages as a read-only map until written, which
    nothing does, and ctypes may take its address (`bytescan`). Our logrotate config
    renames and never truncates, so the mapped bytes stay there (a file truncated
    under a mapping would fault on the lost pages).
    """
    import mmap  # noqa: PLC0415 - only scans with needles map the file

    with open_log(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return None
        return mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)


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
    with open_log(path) as handle:
        position = handle.seek(start)
        while end is None or position < end:
            want = size if end is None else min(size, end - position)
            block = handle.read(want)
            if not block:
                return
            if end is not None and position + len(block) >= end and not block.endswith(b"\n"):
                # Finish the line the end offset falls in, never cut it.
                block += _rest_of_line(handle, _KEEP)[0]
                yield block, len(block)
                return
            if len(block) < want:  # end of file: a last line without newline too
                yield block, len(block)
                return
            stop = block.rfind(b"\n") + 1
            if stop == 0:  # a line longer than the block: read it, up to the bound
                rest, read = _rest_of_line(handle, _KEEP - len(block))
                line = block + rest
                if len(block) + read > len(line) or len(line) > _KEEP:  # cut: refused later
                    line = line[:_KEEP] + b"\n"
                yield line, len(line)
                position = handle.seek(position + len(block) + read)
                continue
            yield block, stop
            position = handle.seek(position + stop)


def _rest_of_line(handle: BinaryIO, keep: int) -> tuple[bytes, int]:
    """Read through the next newline: (at most ``keep`` bytes of it, bytes read in all).

    Past ``keep`` bytes the rest is read in blocks and dropped: a line of any length
    costs no more memory than the bound.
    """
    kept = handle.readline(keep) if keep > 0 else b""
    read = len(kept)
    if kept.endswith(b"\n") or (keep > 0 and len(kept) < keep):  # the line ended (or the file)
        return kept, read
    while piece := handle.readline(CHUNK_BYTES):
        read += len(piece)
        if piece.endswith(b"\n"):
            break
    return kept, read


def _stream_chunks(path: StrPath, size: int) -> Iterator[bytes]:
    import gzip  # noqa: PLC0415 - only rotated files are compressed

    with open_log(path) as raw, gzip.open(raw, "rb") as handle:
        carry = b""
        while True:
            block = handle.read(size)
            if not block:
                if carry:
                    yield carry
                return
            cut = block.rfind(b"\n")
            if cut < 0:  # keep no more of a long line than it takes to refuse it
                carry = (carry + block)[:_KEEP]
                continue
            yield carry + block[: cut + 1]
            carry = block[cut + 1 :]


def next_line_start(path: StrPath, offset: int) -> int:
    """Return the first line start at or after ``offset`` in a plain file (its size: none)."""
    if offset <= 0:
        return 0
    with open_log(path) as handle:
        position = handle.seek(offset - 1)
        while block := handle.read(1 << 16):
            newline = block.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            position += len(block)
        return position


def lines_backwards(path: StrPath, end: int | None = None, block: int = 1 << 16) -> Iterator[bytes]:
    """Yield the lines of a plain file before byte ``end``, last first (overlong ones cut)."""
    with open_log(path) as handle:
        position = handle.seek(0, os.SEEK_END) if end is None else end
        tail = b""
        while position > 0:
            step = min(block, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + tail
            parts = data.split(b"\n")
            tail = parts[0][:_KEEP]  # a line longer than that is refused whatever is kept
            yield from (p for p in reversed(parts[1:]) if p)
        if tail:
            yield tail
