"""The sink: the only writer of the event log.

One thread takes events from a bounded queue and writes them in batches, one
``fdatasync`` per batch (group commit). Before each batch it compares the path's
inode with its open file and reopens after a rename, so logrotate's rename +
``nocreate`` loses nothing: the sink creates the new file itself (0640, group
``adm`` by default).

Events clients sent (they carry an attested ``origin``) get the sink's own
``timestamp`` when their batch is taken, never earlier than the one before, so the
log is in time order by construction; the client's own time, when it differs, is
kept in ``details.client_timestamp``.

The sink appends only to a log file it could have created (`log_file.open_own_log`).

Disk full or read-only: the sink keeps running, holds events (the batch in hand plus
the bounded queue), says so once on stderr, retries, and writes them once the disk
takes them again. Events the bound refused are counted and reported as one
``watcher.gap`` event as soon as the log is writable.
"""

from __future__ import annotations

import collections
import errno
import grp
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from ds01_events.envelope import (
    CLIENT_ID,
    CLIENT_TIMESTAMP,
    Event,
    encode_line,
    make_event,
    new_id,
    utc_timestamp,
)
from watcher.log_file import FILE_MODE, open_own_log

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.stall import StallBeat, StallWatch

__all__ = ["FILE_MODE", "SOURCE", "Sink", "group_id"]

SOURCE = "ds01-watcher"


def group_id(name: str | None) -> int | None:
    """Return the gid of ``name``, or None when it is unset or does not exist here."""
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


class Sink:
    """Single writer of ``path``. `submit` never blocks; `stop` flushes.

    Thread-safe: any thread may call `submit`, `reopen` and the counters.
    """

    name = "sink"

    def __init__(
        self,
        path: str,
        *,
        queue_size: int = 65_536,
        batch_max: int = 4096,
        group: str | None = "adm",
        sync: bool = True,
        retry_seconds: float = 1.0,
        stall_seconds: float = 30.0,
        stderr: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        remember_ids: int = 65_536,
    ) -> None:
        self.path = path
        self.batch_max = batch_max
        self.gid = group_id(group)
        self.sync = sync
        self.retry_seconds = retry_seconds
        self.stall_seconds = stall_seconds
        self._stderr = stderr
        self._clock = clock
        # A deque and a wake-up event: about half the cost of queue.Queue per event.
        self.queue_size = queue_size
        self._queue: collections.deque[object] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._reopen = threading.Event()
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd = -1
        self._held: list[bytes] = []
        self._failing: str | None = None
        self._beat = clock()
        # Counters (read by the service for STATUS= and tests).
        self.written = 0
        self.batches = 0
        # Read without a lock by watcher.metrics at scrape time (only this thread writes).
        self.taken_by_type: dict[str, int] = {}
        self.syncs = 0
        self.sync_seconds = 0.0
        self.dropped = 0
        self._dropped_reported = 0
        self._drop_first: str | None = None
        self._drop_last: str | None = None
        # accepted: events submit() took; settled: those written and synced, or
        # refused by the encoder. wait_durable() waits for one to catch the other.
        self._accepted = 0
        self._settled = 0
        self._settled_changed = threading.Condition()
        self._last_stamp = ""
        # Ids written lately: a client's event that reuses one gets a fresh id.
        self._ids: set[str] = set()
        self._id_order: collections.deque[str] = collections.deque()
        self.remember_ids = remember_ids
        self._stall_watch: StallWatch | None = None
        self._stall: StallBeat | None = None

    # -- the contract ---------------------------------------------------------

    def submit(self, event: Event, /) -> bool:
        """Queue one event; False (and counted) when the bounded queue is full."""
        if len(self._queue) < self.queue_size:
            # deque.append is atomic; several submitters may overshoot the bound by a few.
            with self._lock:
                self._accepted += 1
                self._queue.append(event)
            if not self._wake.is_set():
                self._wake.set()
            return True
        now = utc_timestamp()
        with self._lock:
            self.dropped += 1
            if self._drop_first is None:
                self._drop_first = now
            self._drop_last = now
        return False

    def watch_stalls(self, watch: StallWatch) -> None:
        """Report a writer loop that did not turn for a while (call before `start`)."""
        self._stall_watch = watch

    def start(self) -> None:
        """Open the log and start the writer thread."""
        if self._stall_watch is not None:
            # From now: the time between construction and start is no stall.
            self._stall = self._stall_watch.loop("sink", max(0.5, self.retry_seconds))
        self._thread = threading.Thread(target=self._run, name="ds01-sink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Write everything queued so far, sync and close, within ``timeout`` seconds."""
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._say(
                f"stopping with {self.pending()} events not written to {self.path}"
                f" ({self._failing or 'the writer did not finish in time'})"
            )

    def healthy(self) -> bool:
        """Tell whether the writer thread is alive and not stuck inside one system call."""
        return (
            self._thread is not None
            and self._thread.is_alive()
            and self._clock() - self._beat < self.stall_seconds
        )

    # -- operations -----------------------------------------------------------

    def reopen(self) -> None:
        """Reopen the log before the next batch (SIGHUP)."""
        self._reopen.set()

    def wait_durable(self, timeout: float) -> bool:
        """Wait until every event accepted before the call is on disk; False on timeout.

        The Docker source moves its replay cursor only past durable events, so a
        kill -9 cannot lose what was still queued here.
        """
        with self._lock:
            target = self._accepted
        self._wake.set()
        with self._settled_changed:
            return self._settled_changed.wait_for(lambda: self._settled >= target, timeout)

    def _settle(self, count: int) -> None:
        if count:
            with self._settled_changed:
                self._settled += count
                self._settled_changed.notify_all()

    def pending(self) -> int:
        """Events accepted but not yet written."""
        return len(self._queue) + len(self._held)

    @property
    def failing(self) -> str | None:
        """Why the log cannot be written right now, or None."""
        return self._failing

    # -- the writer thread ----------------------------------------------------

    def _run(self) -> None:
        while True:
            self._beat = self._clock()
            if self._stall is not None:
                self._stall.beat()
            if not self._held:
                self._take_batch()
            if self._held:
                self._write_held()
            if self._held:
                # Events that arrive meanwhile stay in the bounded queue.
                if self._abandon.wait(self.retry_seconds):
                    return  # stop() gave up waiting and reports what is left
                continue
            if not self._queue:
                if self._stopping:
                    self._close()
                    return
                self._wake.wait(0.5)
                self._wake.clear()

    def _take_batch(self) -> None:
        """Move up to batch_max events, encoded, into ``_held``."""
        pop = self._queue.popleft
        lines = []
        refused = 0
        by_type = self.taken_by_type
        stamp = ""
        for _ in range(min(self.batch_max, len(self._queue))):
            item = pop()
            if isinstance(item, Event):
                if item.origin is not None:
                    stamp = stamp or self._stamp()
                    _restamp(item, stamp)
                    if item.id in self._ids:
                        item.details[CLIENT_ID] = item.id
                        item.id = new_id()
                self._remember(item.id)
                try:
                    lines.append(encode_line(item))
                except Exception as exc:  # one bad event must not stop the log
                    refused += 1
                    self._say(f"dropped an event that cannot be encoded: {exc!r}")
                else:
                    by_type[item.event_type] = by_type.get(item.event_type, 0) + 1
        self._held = lines
        self._settle(refused)

    def seen_ids(self, ids: list[str]) -> None:
        """Count these ids (from the log's tail) as written (call before `start`)."""
        for event_id in ids[-self.remember_ids :]:
            self._remember(event_id)

    def _remember(self, event_id: str) -> None:
        if event_id in self._ids:
            return
        self._ids.add(event_id)
        self._id_order.append(event_id)
        if len(self._id_order) > self.remember_ids:
            self._ids.discard(self._id_order.popleft())

    def _stamp(self) -> str:
        """Now, as a timestamp; never before the last one (the wall clock may step back)."""
        now = utc_timestamp()
        self._last_stamp = max(now, self._last_stamp)
        return self._last_stamp

    def _write_held(self) -> None:
        gap, gap_count = self._gap_line()
        lines = [*self._held, gap] if gap else self._held
        try:
            self._ensure_open()
            done, error = self._append(lines)
        except OSError as exc:
            done, error = 0, exc
        events_done = min(done, len(self._held))
        self._held = self._held[events_done:]
        self.written += events_done
        self._settle(events_done)
        if gap and done == len(lines):
            with self._lock:
                self._dropped_reported += gap_count
                if self._dropped_reported == self.dropped:
                    self._drop_first = self._drop_last = None
        if error is not None and done < len(lines):
            self._trouble(error)
            return
        self.batches += 1
        if self._failing is not None:
            self._say(f"writing to {self.path} again; the events held meanwhile are written")
            self._failing = None

    def _append(self, lines: list[bytes]) -> tuple[int, OSError | None]:
        """Write whole lines; return how many, and the error that stopped it.

        A partial line left by a short write is cut back off: readers treat every
        line as one event.
        """
        data = b"".join(lines)
        view = memoryview(data)
        sent = 0
        error: OSError | None = None
        try:
            while sent < len(data):
                sent += os.write(self._fd, view[sent:])
        except OSError as exc:
            error = exc
        done, boundary = 0, 0
        for line in lines:
            if boundary + len(line) > sent:
                break
            boundary += len(line)
            done += 1
        if sent > boundary:
            try:
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - (sent - boundary))
            except OSError:
                self._say("could not remove a partial line after a failed write")
        if done and self.sync:
            started = time.monotonic()
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                error = error or exc
            self.sync_seconds += time.monotonic() - started
            self.syncs += 1
        return done, error

    def _ensure_open(self) -> None:
        if self._reopen.is_set():
            self._reopen.clear()
            self._close()
        if self._fd >= 0:
            mine = os.fstat(self._fd)
            try:
                on_disk = os.lstat(self.path)
            except FileNotFoundError:
                on_disk = None
            if on_disk is not None and (on_disk.st_ino, on_disk.st_dev) == (
                mine.st_ino,
                mine.st_dev,
            ):
                return
            self._close()  # renamed away (rotation) or replaced: follow the path
        self._fd = self._open()

    def _open(self) -> int:
        return open_own_log(self.path, self.gid, self._say)

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                if self.sync:
                    os.fdatasync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _trouble(self, exc: OSError) -> None:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno not in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            # Anything else (EIO, a vanished directory): reopen on the next try.
            self._close()
        if self._failing is None:
            self._failing = reason
            self._say(
                f"cannot write {self.path}: {reason}; holding events in memory (at most"
                f" {self.queue_size} queued) and retrying every {self.retry_seconds:g} s"
            )

    def _gap_line(self) -> tuple[bytes | None, int]:
        """Return the ``watcher.gap`` line for refused events not yet reported, and their count."""
        with self._lock:
            missing = self.dropped - self._dropped_reported
            first, last = self._drop_first, self._drop_last
        if missing <= 0:
            return None, 0
        event = make_event(
            "watcher.gap",
            source=SOURCE,
            details={
                "since": first,
                "until": last,
                "dropped": missing,
                "reason": "the sink's queue was full; these events were refused",
            },
        )
        return encode_line(event), missing

    def _say(self, message: str) -> None:
        stream = self._stderr or sys.stderr
        try:
            stream.write(f"ds01-watcher: {message}\n")
            stream.flush()
        except (OSError, ValueError):
            return


def _restamp(event: Event, stamp: str) -> None:
    """Give a client's event the writer's time; keep the client's own when it differs."""
    if event.timestamp != stamp:
        event.details[CLIENT_TIMESTAMP] = event.timestamp
    event.timestamp = stamp
