"""Signals as messages to the main loop: a handler only notes the signal and wakes the loop.

Anything more in a handler (taking a lock, reopening a file, stopping threads) can
deadlock the main thread it interrupts, or recurse when signals arrive faster than
it returns. So the handler stores a flag, the kernel-level wakeup fd
(`signal.set_wakeup_fd`) carries the signal number through a non-blocking pipe,
and the main loop waits on that pipe and acts. `install_early` runs first thing in
``ds01-watcher run``, before the slow imports, so a SIGHUP at start-up is noted
instead of ending the process; the service adopts that inbox.

Standard library only: this is imported before anything else.
"""

from __future__ import annotations

import os
import select
import signal
import threading

# Not typing.TYPE_CHECKING: importing typing costs this early path a few milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import FrameType
    from typing import Any

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_WAKE = b"\0"  # not a signal number: only "look again"


class SignalInbox:
    """The signals that arrived since the last `wait`, plus wake-ups from other threads."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._flags: dict[int, bool] = {}
        self._previous: dict[int, Any] = {}
        self._previous_wakeup: int | None = None
        self._poller = select.poll()
        self._poller.register(self._read_fd, select.POLLIN)

    def install(self, signums: Iterable[int] = HANDLED) -> bool:
        """Route ``signums`` here; False (nothing done) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._previous_wakeup is None:
            self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in signums:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, self._note)
        return True

    def restore(self) -> None:
        """Put back the handlers and wakeup fd that were there before `install`."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            self._previous_wakeup = None

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        # One store, no lock, no call: safe however often and wherever it interrupts.
        self._flags[signum] = True

    def wake(self) -> None:
        """Wake `wait` from any thread (a stop asked for in code, not by a signal)."""
        try:
            os.write(self._write_fd, _WAKE)
        except OSError:  # a full pipe wakes the loop just as well
            return

    def wait(self, timeout: float) -> set[int]:
        """Wait up to ``timeout`` seconds; return the signal numbers that arrived."""
        self._poller.poll(max(0, int(timeout * 1000)))
        arrived: set[int] = set()
        while True:
            try:
                data = os.read(self._read_fd, 4096)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            arrived.update(b for b in data if b)
        for signum in list(self._flags):
            # pop, not clear(): a flag set by a handler that interrupts this loop stays.
            if self._flags.pop(signum, False):
                arrived.add(signum)
        return arrived

    def close(self) -> None:
        """Close the pipe (after `restore`)."""
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                continue


_early: SignalInbox | None = None


def install_early() -> None:
    """Note SIGTERM, SIGINT and SIGHUP from now on (called first in ``ds01-watcher run``)."""
    global _early  # noqa: PLW0603 - one inbox per process, handed to the service once
    if _early is None:
        inbox = SignalInbox()
        if inbox.install():
            _early = inbox
        else:
            inbox.close()


def take_early() -> SignalInbox | None:
    """Return the inbox `install_early` set up (once), or None."""
    global _early
    inbox, _early = _early, None
    return inbox
