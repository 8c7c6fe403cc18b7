"""Opening the event log for appending, only when it is a file this watcher could have made.

A regular file, owned by root or the watcher's own uid, writable by nobody else,
opened with O_NOFOLLOW. Anything else at the path (a file someone planted where the
log directory is writable by others, a symlink, a FIFO, a directory) is renamed to
``<path>.foreign-<epoch>``: its content is kept, never deleted, never appended to;
one line says so, and a fresh 0640 file is created.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

FILE_MODE = 0o640


def open_own_log(path: str, gid: int | None, say: Callable[[str], None]) -> int:
    """Return an O_APPEND fd on ``path``, creating it 0640 (group ``gid``) if needed.

    Raises OSError when the path cannot be had.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    for _attempt in range(3):
        _move_foreign_aside(path, say)
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            try:
                fd = os.open(path, flags)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOENT):
                    continue  # replaced meanwhile: look again
                raise
        except FileNotFoundError:
            Path(path).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            continue
        else:
            _made_new(fd, path, gid, say)
        if foreign_reason(os.fstat(fd)) is None:
            return fd
        os.close(fd)  # swapped between the check and the open: check again
    raise OSError(errno.EPERM, f"{path} keeps being replaced by a file not ours")


def _made_new(fd: int, path: str, gid: int | None, say: Callable[[str], None]) -> None:
    os.fchmod(fd, FILE_MODE)  # the umask must not widen or narrow it
    if gid is not None:
        try:
            os.fchown(fd, -1, gid)
        except OSError:
            say(f"could not give {path} to group {gid}")


def _move_foreign_aside(path: str, say: Callable[[str], None]) -> None:
    """Rename whatever is at the path and not ours to ``<path>.foreign-<epoch>``."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    reason = foreign_reason(info)
    if reason is None:
        return
    aside = f"{path}.foreign-{int(time.time())}"
    suffix = 0
    while os.path.lexists(aside if not suffix else f"{aside}.{suffix}"):
        suffix += 1
    aside = aside if not suffix else f"{aside}.{suffix}"
    os.rename(path, aside)  # rename moves a symlink itself, never its target
    say(
        f"{path} {reason}, so not a log this watcher wrote: moved it to {aside}"
        " (content kept) and started a new log"
    )


def foreign_reason(info: os.stat_result) -> str | None:
    """Why a file with this status is not a log this watcher could have created, or None."""
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {info.st_uid}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None
