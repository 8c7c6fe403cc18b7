"""The spool drain: events scripts left as files while the socket was unavailable.

Each ``*.json`` file in the spool directory (1733: anyone may drop a file, nobody
may touch another's) holds one or more envelope lines. The file's owner is the
origin: a writer cannot choose who owns its file. So a file is taken only when
nothing else could have written it: a regular file (opened with O_NOFOLLOW), one
link, writable by its owner alone. Anything else (a symlink, FIFO, directory, hard
link, a file writable by others, an unreadable, oversized or too long one) is moved
to the quarantine directory and reported once with its owner, never a wall in front
of later files. ``*.tmp`` files are still being written and are left alone.
A spooled event's own time is the file's modification time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ds01_events.envelope import (
    MAX_LINE_BYTES,
    InvalidEvent,
    Origin,
    decode_client_line,
    make_event,
    utc_timestamp,
)
from watcher.intake.admission import WATCHER_SOURCE, admit
from watcher.intake.quarantine import Quarantine, quarantine_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.typing import Submit

SPOOL_MODE = 0o1733


# The library writes one event per file; a file of more lines than this is no
# script's (and could never fit the sink's queue in one piece).
MAX_LINES = 10_000


@dataclass
class DrainReport:
    """What one pass over the spool did."""

    submitted: int = 0
    files: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    quarantined: list[str] = field(default_factory=list)


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
        max_lines: int = MAX_LINES,
        has_room: Callable[[int], bool] = lambda _n: True,
        quarantine_dir: str | None = None,
    ) -> None:
        self.directory = directory
        self._submit = submit
        self._reject = reject
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self._has_room = has_room
        self.quarantine = Quarantine(quarantine_dir or quarantine_path(directory))

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
                try:
                    taken = self._one(dir_fd, name, report)
                except Exception:  # a bug on one file must not stop the others
                    with contextlib.suppress(Exception):
                        self._set_aside(
                            dir_fd, name, report, info=None, reason="internal_error", uid=None
                        )
                    continue
                if not taken:
                    report.deferred += 1
                    break  # the sink is full: what is left waits for the next pass
        except OSError:
            pass
        finally:
            os.close(dir_fd)
        return report

    def _count(self, reason: str, uid: int | None, report: DrainReport) -> None:
        self._reject(reason, uid)
        report.rejected[reason] = report.rejected.get(reason, 0) + 1

    def _set_aside(
        self,
        dir_fd: int,
        name: str,
        report: DrainReport,
        *,
        info: os.stat_result | None,
        reason: str,
        uid: int | None,
    ) -> None:
        """Count, move to quarantine and report one refused entry, once."""
        moved_to = self.quarantine.move(dir_fd, name, info, uid)
        self._count(reason, uid, report)
        report.quarantined.append(name)
        details: dict[str, object] = {"name": name, "reason": reason, "uid": uid}
        if info is not None and stat.S_ISREG(info.st_mode):
            details["size"] = info.st_size
        details["moved_to"] = moved_to or None
        self._submit(make_event("ingest.quarantined", source=WATCHER_SOURCE, details=details))

    def _one(self, dir_fd: int, name: str, report: DrainReport) -> bool:
        """Handle one entry; False when the sink has no room (try again later)."""
        try:
            before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True  # the writer's own cleanup, or a second drain: nothing to do
        if self.quarantine.holds(before):
            return True
        try:
            data, info = self._read(dir_fd, name, before)
        except _Refused as refused:
            self._set_aside(
                dir_fd, name, report, info=refused.info, reason=refused.reason, uid=refused.uid
            )
            return True
        except FileNotFoundError:
            return True
        return self._take_file(dir_fd, name, data, info, report)

    def _take_file(
        self, dir_fd: int, name: str, data: bytes, info: os.stat_result, report: DrainReport
    ) -> bool:
        """Submit every line of a file that passed the checks, then remove it."""
        lines = [line for line in data.split(b"\n") if line.strip()]
        if len(lines) > self.max_lines:
            self._set_aside(
                dir_fd, name, report, info=info, reason="too_many_lines", uid=info.st_uid
            )
            return True
        if not self._has_room(len(lines)):
            return False
        origin = Origin(uid=info.st_uid, gid=info.st_gid)
        written_at = utc_timestamp(info.st_mtime)
        for line in lines:
            reason = self._take(line, origin, written_at, report)
            if reason is not None:
                self._count(reason, info.st_uid, report)
        report.files += 1
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError:
            self.quarantine.skip(info)  # read once is enough: never submit it again
        return True

    def _take(
        self, line: bytes, origin: Origin, written_at: str, report: DrainReport
    ) -> str | None:
        """Submit one line; return why it was refused instead, if it was."""
        reason = _check(line)
        if reason is not None:
            return reason
        try:
            event = decode_client_line(line)
        except InvalidEvent as exc:
            return exc.reason
        refused = admit(event, origin)
        if refused is not None:
            return refused
        # What the writer claims is not what the kernel saw: the file's time is the
        # client's time here, the sink stamps its own when it writes.
        event.timestamp = written_at
        report.submitted += self._submit(event)
        return None

    def _read(self, dir_fd: int, name: str, before: os.stat_result) -> tuple[bytes, os.stat_result]:
        """Read a regular, singly linked, owner-only-writable, small file; never follow links."""
        if stat.S_ISLNK(before.st_mode):
            raise _Refused(reason="symlink", uid=before.st_uid, info=before)
        if not stat.S_ISREG(before.st_mode):
            # A FIFO is never opened (it could block); a directory is moved whole.
            raise _Refused(reason="not_regular", uid=before.st_uid, info=before)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            reason = "symlink" if exc.errno == errno.ELOOP else "unreadable"
            raise _Refused(reason=reason, uid=before.st_uid, info=before) from exc
        try:
            info = os.fstat(fd)
            _check_file(info, self.max_bytes)
            try:
                data = os.read(fd, self.max_bytes + 1)
            except OSError as exc:
                raise _Refused(reason="unreadable", uid=info.st_uid, info=info) from exc
            if len(data) > self.max_bytes:
                raise _Refused(reason="oversize", uid=info.st_uid, info=info)
        finally:
            os.close(fd)
        return data, info


def _check_file(info: os.stat_result, max_bytes: int) -> None:
    """Raise _Refused unless only the owner of this open file could have written it."""
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(reason="not_regular", uid=info.st_uid, info=info)
    if info.st_nlink != 1:
        # A hard link to someone else's file would borrow its owner: the owner shown
        # is the target's, so the sender is not known; it is counted under that uid.
        raise _Refused(reason="hardlink", uid=info.st_uid, info=info)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        # Someone other than the owner may have written it (or a hard link whose
        # original was removed since: a world-writable file of root's).
        raise _Refused(reason="writable_by_others", uid=info.st_uid, info=info)
    if info.st_size > max_bytes:
        raise _Refused(reason="oversize", uid=info.st_uid, info=info)


class _Refused(Exception):
    def __init__(self, reason: str, uid: int | None, info: os.stat_result | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.uid = uid
        self.info = info


def _check(line: bytes) -> str | None:
    if len(line) + 1 > MAX_LINE_BYTES:
        return "oversize"
    if b"\0" in line:
        return "binary"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return None
