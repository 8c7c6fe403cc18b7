"""``--follow``: new lines of the live log as they arrive, across rotation by rename.

The open file is read to its end before switching to the file now at the path, so a
rename + create rotation neither loses nor repeats a line. A truncated file
(copytruncate) is read again from its start. Only complete lines are returned.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, BinaryIO

from ds01_query.engine.decoding import MAX_LINE_BYTES
from ds01_query.engine.reader import open_log

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ds01_query.engine.reader import StrPath


class LiveLog:
    """A reader positioned at ``offset`` of the file at ``path``; `poll` returns new lines."""

    def __init__(self, path: StrPath, offset: int) -> None:
        self.path = path
        self._handle: BinaryIO | None = None
        self._partial = b""
        self._offset = offset
        self._open()

    def _open(self) -> None:
        try:
            self._handle = open_log(self.path)  # a regular file, never through a link
        except FileNotFoundError:
            self._handle = None
            return
        self._handle.seek(self._offset)

    def _read_rest(self) -> bytes:
        assert self._handle is not None  # noqa: S101 - callers check
        data = self._handle.read()
        self._offset += len(data)
        return data

    def _replaced(self) -> bool:
        assert self._handle is not None  # noqa: S101 - callers check
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False  # renamed away, the new file not created yet: keep reading the old
        mine = os.fstat(self._handle.fileno())
        return (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev)

    def poll(self) -> list[bytes]:
        """Complete lines appended since the last call (newlines stripped)."""
        if self._handle is None:
            self._offset = 0
            self._open()
            if self._handle is None:
                return []
        data = self._read_rest()
        if self._replaced():
            data += self._read_rest()  # whatever was written before the rename
            self._handle.close()
            self._offset = 0
            self._open()
            if self._handle is not None:
                data += self._read_rest()
        elif os.fstat(self._handle.fileno()).st_size < self._offset:
            self._handle.seek(0)
            self._offset = 0
            self._partial = b""
            data = self._read_rest()
        data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return []
        # A line never ended is kept only up to the bound: it is refused when it ends.
        self._partial = data[cut + 1 : cut + 2 + MAX_LINE_BYTES]
        return [line for line in data[:cut].split(b"\n") if line.strip()]

    def close(self) -> None:
        """Release the file."""
        if self._handle is not None:
            self._handle.close()


def follow_lines(
    path: StrPath,
    offset: int,
    interval: float = 0.2,
    keep_going: Callable[[], bool] = lambda: True,
) -> Iterator[list[bytes]]:
    """Batches of new complete lines, forever (or while ``keep_going()``)."""
    live = LiveLog(path, offset)
    try:
        while keep_going():
            lines = live.poll()
            if lines:
                yield lines
            else:
                time.sleep(interval)
    finally:
        live.close()
