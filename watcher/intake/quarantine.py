"""Setting a refused spool entry aside: moved, never deleted, never read again.

The quarantine directory sits beside the spool (``<spool>.quarantine``), so a move is a
rename on the same filesystem; it is root's (the watcher's) alone, mode 0700: what is in
it may be another user's data or a link to it. An entry that cannot be moved is
remembered by (device, inode) for the life of the process so that it is neither read
nor reported again.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

QUARANTINE_MODE = 0o700
# Room for the prefix within a 255-byte name.
_MAX_NAME = 200


def quarantine_path(spool_dir: str) -> str:
    """Return the quarantine directory that belongs to ``spool_dir``."""
    return str(Path(spool_dir.rstrip("/") or "/")) + ".quarantine"


class Quarantine:
    """Moves entries out of a spool directory into its quarantine directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._kept: set[tuple[int, int]] = set()

    def holds(self, info: os.stat_result) -> bool:
        """Tell whether this entry was set aside already but could not be moved."""
        return (info.st_dev, info.st_ino) in self._kept

    def skip(self, info: os.stat_result) -> None:
        """Never read this entry again (it could be neither moved nor removed)."""
        self._kept.add((info.st_dev, info.st_ino))

    def move(self, spool_fd: int, name: str, info: os.stat_result | None, uid: int | None) -> str:
        """Move ``name`` (relative to ``spool_fd``) aside; return its new path, or "" if kept.

        Never raises. An entry that cannot be moved stays where it is and is skipped
        from now on.
        """
        new_name = f"{int(time.time())}-{'unknown' if uid is None else uid}-{os.urandom(3).hex()}-"
        new_name += name[:_MAX_NAME]
        try:
            target_fd = self._open_directory()
            if target_fd < 0:  # someone else's directory at that path: leave it alone
                raise FileExistsError(self.directory)
            try:
                os.rename(name, new_name, src_dir_fd=spool_fd, dst_dir_fd=target_fd)
            finally:
                os.close(target_fd)
        except OSError:
            if info is not None:
                self._kept.add((info.st_dev, info.st_ino))
            return ""
        return str(Path(self.directory) / new_name)

    def _open_directory(self) -> int:
        """Open the quarantine directory, creating it 0700; -1 for one that is not ours."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.directory, QUARANTINE_MODE)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                os.close(fd)
                return -1
            if stat.S_IMODE(info.st_mode) != QUARANTINE_MODE:
                os.fchmod(fd, QUARANTINE_MODE)
        except OSError:
            os.close(fd)
            raise
        return fd
