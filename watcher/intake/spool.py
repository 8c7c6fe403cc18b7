"""The spool drain: events scripts left as files while the socket was unavailable.

Each ``*.json`` file in the spool directory (1733: anyone may drop a file, nobody
may touch another's) holds one or more envelope lines. The file's owner is the
origin: a writer cannot choose who owns its file. Symlinks are never followed;
non-regular, hard-linked and oversized files are refused, counted and removed.
``*.tmp`` files are still being written and are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ds01_events.envelope import InvalidEvent, Origin, decode_client_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.typing import Submit

SPOOL_MODE = 0o1733


@dataclass
class DrainReport:
    """What one pass over the spool did."""

    submitted: int = 0
    files: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    deferred: int = 0


def ensure_spool_dir(path: str) -> None:
    """Create the spool directory 1733 if it is missing (an existing one is kept)."""
    where = Path(path)
    if not where.is_dir():
        where.mkdir(parents=True, exist_ok=True)
        where.chmod(SPOOL_MODE)


class SpoolDrain:
    """Drains a spool directory into ``submit``. Run from one thread at a time."""

    def __init__(
        self,
        directory: str,
        submit: Submit,
        reject: Callable[[str, int | None], None],
        *,
        max_bytes: int = 1_048_576,
        has_room: Callable[[int], bool] = lambda _n: True,
    ) -> None:
        self.directory = directory
        self._submit = submit
        self._reject = reject
        self.max_bytes = max_bytes
        self._has_room = has_room

    def drain(self) -> DrainReport:
        """One pass. Never raises: a problem with one file does not stop the rest."""
        report = DrainReport()
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return report
        try:
            # listdir on a dir fd: the directory cannot be swapped under us mid-pass.
            names = sorted(n for n in os.listdir(dir_fd) if n.endswith(".json"))
            for name in names:
                if not self._one(dir_fd, name, report):
                    report.deferred += 1
                    break
        finally:
            os.close(dir_fd)
        return report

    def _count(self, reason: str, uid: int | None, report: DrainReport) -> None:
        self._reject(reason, uid)
        report.rejected[reason] = report.rejected.get(reason, 0) + 1

    def _one(self, dir_fd: int, name: str, report: DrainReport) -> bool:
        """Handle one file; False when the sink has no room (try again later)."""
        try:
            data, info = self._read(dir_fd, name)
        except _Refused as refused:
            self._count(refused.reason, refused.uid, report)
            _remove(dir_fd, name)
            return True
        except FileNotFoundError:
            return True  # the writer's own cleanup, or a second drain: nothing to do
        lines = [line for line in data.split(b"\n") if line.strip()]
        if not self._has_room(len(lines)):
            return False
        origin = Origin(uid=info.st_uid, gid=info.st_gid)
        for line in lines:
            reason = _check(line)
            if reason is None:
                try:
                    event = decode_client_line(line)
                except InvalidEvent:
                    reason = "invalid"
                else:
                    event.origin = origin
                    report.submitted += self._submit(event)
                    continue
            self._count(reason, info.st_uid, report)
        report.files += 1
        _remove(dir_fd, name)
        return True

    def _read(self, dir_fd: int, name: str) -> tuple[bytes, os.stat_result]:
        """Read a regular, singly linked, small file without following a symlink."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            owner = None
            with contextlib.suppress(OSError):
                owner = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid
            raise _Refused("symlink" if exc.errno == errno.ELOOP else "unreadable", owner) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(reason="not_regular", uid=info.st_uid)
            if info.st_nlink != 1:
                # A hard link to someone else's file would borrow its owner.
                raise _Refused(reason="hardlink", uid=info.st_uid)
            data = b"" if info.st_size > self.max_bytes else os.read(fd, self.max_bytes + 1)
            if info.st_size > self.max_bytes or len(data) > self.max_bytes:
                raise _Refused(reason="oversize", uid=info.st_uid)
        finally:
            os.close(fd)
        return data, info


class _Refused(Exception):
    def __init__(self, reason: str, uid: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.uid = uid


def _remove(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except IsADirectoryError:
        with contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=dir_fd)
    except OSError:
        return


def _check(line: bytes) -> str | None:
    if len(line) + 1 > 4096:  # noqa: PLR2004 - MAX_LINE_BYTES, newline included
        return "oversize"
    if b"\0" in line:
        return "binary"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return None
