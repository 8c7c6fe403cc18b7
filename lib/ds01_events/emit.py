"""Recording an event: socket, then direct append, then spool. Never raises, never hangs.

Routes, in order:
1. the watcher's Unix datagram socket: a non-blocking send (the watcher is the
   single writer and stamps the kernel-attested origin); while the kernel queue is
   full (another user's flood, a burst) it retries with a short backoff for up to
   half the bound before it gives up on the socket;
2. no socket: append the line to the events file ourselves if we may write it
   (one ``os.write`` with O_APPEND, so concurrent writers never interleave);
3. otherwise, or when the watcher is alive but its queue is full: one file in the
   spool directory, which the watcher drains and attributes to the file's owner.

File work runs on one worker thread per process and the caller waits at most
``Settings.timeout`` for it: a hung filesystem or a FIFO costs the caller the bound,
not its life.
"""

from __future__ import annotations

import atexit
import errno
import os
import queue
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ds01_events.envelope import Event, InvalidEvent, encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_SOCKET = "/run/ds01/events.sock"
DEFAULT_EVENTS_FILE = "/var/log/ds01/events.jsonl"
DEFAULT_SPOOL = "/var/spool/ds01/events"
DEFAULT_TIMEOUT = 0.05
FILE_MODE = 0o640
SPOOL_MODE = 0o1733  # anyone may drop a file; nobody may read or remove another's

_NO_LISTENER = (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK, errno.ENOTDIR)


@dataclass(frozen=True)
class Settings:
    """Where events go. Built once from the environment, or explicitly in tests."""

    socket_path: str = DEFAULT_SOCKET
    events_file: str = DEFAULT_EVENTS_FILE
    spool_dir: str = DEFAULT_SPOOL
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from DS01_EVENTS_SOCKET, _FILE, _SPOOL and _TIMEOUT_MS (bad value: default)."""
        env = os.environ if env is None else env
        try:
            timeout = float(env.get("DS01_EVENTS_TIMEOUT_MS", "")) / 1000
        except ValueError:
            timeout = DEFAULT_TIMEOUT
        return cls(
            socket_path=env.get("DS01_EVENTS_SOCKET") or DEFAULT_SOCKET,
            events_file=env.get("DS01_EVENTS_FILE") or DEFAULT_EVENTS_FILE,
            spool_dir=env.get("DS01_EVENTS_SPOOL") or DEFAULT_SPOOL,
            timeout=timeout if 0 < timeout <= 60 else DEFAULT_TIMEOUT,  # noqa: PLR2004
        )


@dataclass(frozen=True)
class Outcome:
    """What happened to one event: the route that took it, or why none did."""

    recorded: bool
    route: str  # "socket", "file", "spool" or "none"
    reason: str = ""


class _FileWorker:
    """One daemon thread doing file I/O so callers can stop waiting on a hung disk."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], _Done]] = queue.SimpleQueue()
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def run(self, job: Callable[[], None], timeout: float) -> None:
        """Run ``job`` on the worker; raise TimeoutError past ``timeout`` or while hung."""
        if not self._busy.acquire(blocking=False):
            msg = "an earlier write to the same disk has not returned (hung filesystem?)"
            raise TimeoutError(msg)
        done = _Done()
        try:
            self._ensure_thread()
            self._jobs.put((job, done))
        except BaseException:
            self._busy.release()
            raise
        done.finished.wait(timeout)
        with done.lock:
            if not done.finished.is_set():
                # The worker releases the busy lock itself once the stuck call returns.
                done.abandoned = True
                msg = f"the write did not finish within {timeout * 1000:.0f} ms"
                raise TimeoutError(msg)
        self._busy.release()
        if done.error is not None:
            raise done.error

    def _ensure_thread(self) -> None:
        # After fork() the child has no worker thread: start its own.
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._loop, name="ds01-events-io", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            job, done = self._jobs.get()
            try:
                job()
            except BaseException as exc:  # handed back to the caller
                done.error = exc
            with done.lock:
                done.finished.set()
                if done.abandoned:
                    self._busy.release()


class _Done:
    __slots__ = ("abandoned", "error", "finished", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.abandoned = False


_worker = _FileWorker()
_warned = threading.Event()


# First wait after a full queue; doubled on each retry, capped.
_RETRY_FIRST = 0.0005
_RETRY_CAP = 0.008


def _send_datagram(path: str, line: bytes, retry_for: float = 0.0) -> Outcome | None:
    """Send over the socket; None means there is no listener (try the next route).

    A full queue (EAGAIN) is retried with a doubling pause for up to ``retry_for``
    seconds in all: the watcher empties its queue within milliseconds unless it
    is stopped, and the spool is slower to reach the log.
    """
    kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
    sock = socket.socket(socket.AF_UNIX, kind)
    deadline = time.monotonic() + retry_for
    pause = _RETRY_FIRST
    try:
        while True:
            try:
                sock.sendto(line, path)
            except OSError as exc:
                if exc.errno in _NO_LISTENER:
                    return None
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    return Outcome(recorded=False, route="socket", reason=f"{path}: {exc.strerror}")
                left = deadline - time.monotonic()
                if left <= 0:
                    return Outcome(
                        recorded=False, route="socket", reason="the watcher's queue is full"
                    )
                time.sleep(min(pause, left))
                pause = min(pause * 2, _RETRY_CAP)
            else:
                return Outcome(recorded=True, route="socket")
    finally:
        sock.close()


def append_line(path: str, line: bytes) -> None:
    """Append one whole line with a single O_APPEND write; create the file 0640.

    Refuses anything but a regular file (a FIFO at the path fails at once with
    ENXIO instead of blocking, thanks to O_NONBLOCK).
    """
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE
        )
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE
        )
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)")
    finally:
        os.close(fd)


def _may_append(path: str) -> bool:
    if os.path.exists(path):
        return os.access(path, os.W_OK)
    parent = os.path.dirname(path) or "."
    while not os.path.exists(parent):
        parent = os.path.dirname(parent) or "."
    return os.access(parent, os.W_OK | os.X_OK)


def write_spool_file(spool_dir: str, line: bytes) -> None:
    """Drop one event as its own file: written under a temporary name, then renamed."""
    if not os.path.isdir(spool_dir):
        os.makedirs(spool_dir, exist_ok=True)
        os.chmod(spool_dir, SPOOL_MODE)
    base = os.path.join(spool_dir, f"{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(base + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    os.rename(base + ".tmp", base + ".json")


def _via_file(settings: Settings, line: bytes) -> Outcome:
    problems: list[str] = []
    if _may_append(settings.events_file):
        try:
            _worker.run(lambda: append_line(settings.events_file, line), settings.timeout)
        except (OSError, TimeoutError) as exc:
            problems.append(f"{settings.events_file}: {_why(exc)}")
        else:
            return Outcome(recorded=True, route="file")
    else:
        problems.append(f"{settings.events_file} is not writable for this user")
    return _via_spool(settings, line, problems)


def _via_spool(settings: Settings, line: bytes, problems: list[str]) -> Outcome:
    try:
        _worker.run(lambda: write_spool_file(settings.spool_dir, line), settings.timeout)
    except (OSError, TimeoutError) as exc:
        problems.append(f"spool {settings.spool_dir}: {_why(exc)}")
        return Outcome(recorded=False, route="none", reason="; ".join(problems))
    return Outcome(recorded=True, route="spool")


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.errno != errno.ENXIO else "a FIFO with no reader"
    return str(exc)


def record(event: Event, settings: Settings | None = None) -> Outcome:
    """Record one built event by the first route that takes it. Never raises."""
    settings = settings or Settings.from_env()
    try:
        line = encode_line(event)
        # Half the bound for a full queue; the spool may need the other half.
        sent = _send_datagram(settings.socket_path, line, retry_for=settings.timeout / 2)
        if sent is not None and sent.recorded:
            return sent
        if sent is not None:  # a live watcher that cannot take it now: do not race it
            return _via_spool(settings, line, [sent.reason])
        return _via_file(settings, line)
    except Exception as exc:  # never raise into the caller's work
        return Outcome(recorded=False, route="none", reason=f"unexpected error: {exc!r}")


def caller_name() -> str:
    """The name of the running program, for ``source``."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    name = os.path.basename(argv0)
    if name in ("-c", "-m", "__main__.py"):
        return "python"
    return name


NO_ROUTE_ADVICE = (
    "Start the watcher (systemctl start ds01-watcher) or set DS01_EVENTS_FILE to a writable file."
)
BAD_CALL_ADVICE = "Fix the call: see `ds01-events types` for the catalogue."


def warn_once(event_type: str, reason: str, advice: str = NO_ROUTE_ADVICE) -> None:
    """One line on stderr per process: what failed and what to do about it."""
    if _warned.is_set():
        return
    _warned.set()
    try:
        sys.stderr.write(
            f"ds01-events: event {event_type} not recorded ({reason}). {advice}"
            " Further failures in this process are not reported.\n"
        )
    except Exception:  # stderr closed: nothing left to tell
        return


def log_event(
    event_type: str, user: str | None = None, source: str | None = None, **details: Any
) -> bool:
    """Record one event; True once a route took it.

    Never raises (bad arguments included) and waits at most about 50 ms. On failure
    it returns False and warns once per process on stderr.
    """
    try:
        event = make_event(event_type, user=user, source=source or caller_name(), details=details)
    except InvalidEvent as exc:
        warn_once(str(event_type), str(exc), BAD_CALL_ADVICE)
        return False
    except Exception as exc:
        warn_once(str(event_type), f"unexpected error: {exc!r}")
        return False
    outcome = record(event)
    if not outcome.recorded:
        warn_once(event_type, outcome.reason)
    return outcome.recorded


class EventWriter:
    """Queued writer for long-running programs: `emit` never waits on any route.

    A bounded queue feeds one background thread. `flush(timeout)` waits for what is
    queued; the writer flushes itself at interpreter exit, so a program's last event
    is not lost.
    """

    def __init__(self, maxsize: int = 10_000, settings: Settings | None = None) -> None:
        self._settings = settings or Settings.from_env()
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize)
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name="ds01-events-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def emit(
        self, event_type: str, user: str | None = None, source: str | None = None, **details: Any
    ) -> bool:
        """Queue one event; False if it is invalid or the queue is full (counted)."""
        try:
            event = make_event(
                event_type, user=user, source=source or caller_name(), details=details
            )
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            warn_once(event_type, "the writer's queue is full")
            return False
        except Exception as exc:
            warn_once(str(event_type), str(exc), BAD_CALL_ADVICE)
            return False
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` s until everything queued so far was handled."""
        marker = threading.Event()

        def wait_for_queue() -> None:
            self._queue.join()
            marker.set()

        threading.Thread(target=wait_for_queue, daemon=True).start()
        return marker.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Flush, then stop the thread. Safe to call twice."""
        if not self._thread.is_alive():
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                outcome = record(event, self._settings)
                if not outcome.recorded:
                    self.failed += 1
                    warn_once(event.event_type, outcome.reason)
            finally:
                self._queue.task_done()
