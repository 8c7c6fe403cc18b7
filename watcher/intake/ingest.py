"""The ingest socket: scripts' events in, kernel-attested origin stamped on.

A Unix datagram socket (0666, SO_PASSCRED). Each datagram is one envelope line, or
one line framed by ``logger(1)`` (a syslog header before the JSON). The sender's
uid, gid and pid come from SCM_CREDENTIALS; a claimed ``origin`` is discarded and a
claimed ``user`` is kept beside it, cleaned (`admission`). Input nested too deep, the
watcher's own types or source, and anything else refused are counted per reason and
reported as one ``ingest.rejected`` event per window; nothing a datagram holds can end
the reader thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ds01_events.envelope import (
    MAX_LINE_BYTES,
    Event,
    InvalidEvent,
    Origin,
    decode_client_line,
    make_event,
    strip_logger_header,
)
from watcher.intake.admission import REASONS as ADMISSION_REASONS
from watcher.intake.admission import admit

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from watcher.intake.ratelimit import RateLimiter
    from watcher.stall import StallBeat
    from watcher.typing import Submit

SOURCE = "ds01-watcher"
SOCKET_MODE = 0o666
# Room for a syslog header in front of a full-size line.
MAX_HEADER_BYTES = 512
RECV_BYTES = MAX_LINE_BYTES + MAX_HEADER_BYTES
_CREDS = struct.Struct("3i")
_SD_LISTEN_FDS_START = 3
REASONS = (
    "oversize",
    "binary",
    "invalid",
    "too_deep",
    *ADMISSION_REASONS,
    "rate_limited",
    "no_credentials",
    "internal_error",
)


class RejectedError(Exception):
    """A datagram refused for ``reason`` (one of REASONS)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def parse_datagram(data: bytes, origin: Origin) -> Event:
    """Validate one datagram and stamp ``origin``; raise RejectedError with the reason."""
    payload = strip_logger_header(data).rstrip(b"\r\n")
    if len(payload) + 1 > MAX_LINE_BYTES:
        reason = "oversize"
        raise RejectedError(reason)
    try:
        event = decode_client_line(payload)
    except InvalidEvent as exc:
        # Valid JSON is valid UTF-8 without raw NULs: only now tell binary from invalid.
        reason = "binary" if _is_binary(payload) else exc.reason
        raise RejectedError(reason, str(exc)) from None
    refused = admit(event, origin)
    if refused is not None:
        raise RejectedError(refused, f"{event.event_type} from {event.source!r}")
    return event


def _is_binary(payload: bytes) -> bool:
    if b"\0" in payload:
        return True
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class RejectCounter:
    """Counts refused input per reason and per uid; one report per window."""

    def __init__(
        self,
        submit: Submit,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._submit = submit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._uids: dict[str, int] = {}
        self._since = clock()
        self.total: dict[str, int] = {}

    def add(self, reason: str, uid: int | None) -> None:
        """Count one refused datagram or spool entry."""
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
            self.total[reason] = self.total.get(reason, 0) + 1
            key = "unknown" if uid is None else str(uid)
            self._uids[key] = self._uids.get(key, 0) + 1

    def tick(self, *, force: bool = False) -> bool:
        """Submit one ``ingest.rejected`` once the window has passed; True if it did."""
        now = self._clock()
        with self._lock:
            if not force and now - self._since < self.window_seconds:
                return False
            counts, uids = self._counts, self._uids
            window = now - self._since
            self._counts, self._uids, self._since = {}, {}, now
        if not counts:
            return False
        event = make_event(
            "ingest.rejected",
            source=SOURCE,
            details={"window_seconds": round(window, 3), "counts": counts, "uids": uids},
        )
        return self._submit(event)


def _is_our_socket(sock: socket.socket, path: str) -> bool:
    try:
        name = sock.getsockname()
    except OSError:
        return False
    return (
        sock.family == socket.AF_UNIX
        and sock.type == socket.SOCK_DGRAM
        and (not path or name == path)
    )


def activated_socket(path: str, env: Mapping[str, str], pid: int) -> socket.socket | None:
    """Return the datagram socket systemd passed (LISTEN_FDS) for ``path``, if any.

    Raises OSError when sockets were passed but none is a Unix datagram socket
    (the .socket unit and the settings disagree).
    """
    if env.get("LISTEN_PID") != str(pid) or not env.get("LISTEN_FDS", "").isdigit():
        return None
    count = int(env["LISTEN_FDS"])
    found: list[socket.socket] = []
    for fd in range(_SD_LISTEN_FDS_START, _SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)  # noqa: FBT003 - the argument is positional-only
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            continue
        sock = socket.socket(fileno=fd)
        if _is_our_socket(sock, path):
            found.append(sock)
        elif _is_our_socket(sock, ""):
            found.append(sock)  # a different path: used only if nothing matches
        else:
            sock.detach()
    exact = [s for s in found if s.getsockname() == path]
    chosen = exact[0] if exact else (found[0] if len(found) == 1 else None)
    if chosen is None:
        raise OSError(errno.EINVAL, f"systemd passed {count} fds but no datagram socket at {path}")
    return chosen


def bind_socket(path: str) -> socket.socket:
    """Bind ``path`` ourselves: create its directory, replace a stale socket, mode 0666.

    Raises OSError when another process is already serving the socket, or the path
    is something other than a socket.
    """
    where = Path(path)
    where.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        mode = where.lstat().st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a socket; move it away")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(path)
        except OSError:
            where.unlink()  # nobody is listening: a leftover of a crash
        else:
            raise OSError(errno.EADDRINUSE, f"another process is serving {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        where.chmod(SOCKET_MODE)
    except OSError:
        sock.close()
        raise
    return sock


def open_ingest_socket(
    path: str, env: Mapping[str, str] | None = None
) -> tuple[socket.socket, bool]:
    """Return the ingest socket and whether systemd passed it; SO_PASSCRED is on."""
    env = os.environ if env is None else env
    sock = activated_socket(path, env, os.getpid())
    activated = sock is not None
    if sock is None:
        sock = bind_socket(path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        # A deep kernel queue rides out bursts; FORCE needs root, plain is capped.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, 8 * 1024 * 1024)
            break
    return sock, activated


class IngestServer:
    """Reads the socket on its own thread; a Component."""

    name = "ingest"

    def __init__(
        self,
        sock: socket.socket,
        submit: Submit,
        limiter: RateLimiter,
        rejects: RejectCounter,
        *,
        clock: Callable[[], float] = time.monotonic,
        stall: StallBeat | None = None,
        has_room: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sock = sock
        self._stall = stall
        self._has_room = has_room
        self._submit = submit
        self._limiter = limiter
        self._rejects = rejects
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat = clock()
        self._stop_deadline = float("inf")
        self.accepted = 0

    def start(self) -> None:
        """Start the reader thread."""
        self._sock.settimeout(0.0)  # non-blocking
        self._thread = threading.Thread(target=self._run, name="ds01-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Take what the kernel already queued, report the rejects, stop reading."""
        self._stop_deadline = self._clock() + timeout * 0.8
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._rejects.tick(force=True)

    def healthy(self) -> bool:
        """Tell whether the reader thread is alive and looping."""
        return (
            self._thread is not None
            and self._thread.is_alive()
            and self._clock() - self._beat < 30.0  # noqa: PLR2004 - far above the 0.25 s poll
        )

    def _run(self) -> None:
        sock = self._sock
        space = socket.CMSG_SPACE(_CREDS.size)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        handled = 0
        while True:
            if handled % 64 == 0 and not self._wait_for_room():
                return
            # Non-blocking first: under load the queue is never empty, so no poll() per datagram.
            try:
                data, ancillary, flags, _ = sock.recvmsg(RECV_BYTES, space)
            except (BlockingIOError, InterruptedError):
                self._beat = self._clock()
                if self._stall is not None:
                    self._stall.beat()
                self._rejects.tick()
                if self._stop.is_set():
                    return  # the kernel queue is empty: everything sent before stop is in
                poller.poll(250)
                continue
            except OSError:
                # Not expected on a bound datagram socket; never let it end the reader.
                self._rejects.add("receive_error", None)
                poller.poll(100)
                continue
            try:
                self._handle(data, ancillary, flags, self._clock())
            except Exception:
                self._rejects.add("internal_error", None)
            handled += 1
            if handled % 1024 == 0 and self._past_stop_deadline():
                return  # senders never pause: stop anyway, the rest stays queued

    def _past_stop_deadline(self) -> bool:
        """Beat, report, and tell whether a stop asked for has run out of time."""
        self._beat = self._clock()
        if self._stall is not None:
            self._stall.beat()
        self._rejects.tick()
        return self._stop.is_set() and self._beat > self._stop_deadline

    def _wait_for_room(self) -> bool:
        """Leave datagrams in the kernel while the sink is full; False: stop now.

        Taken from the kernel they could only be refused; left there, senders get
        EAGAIN and the library retries, then spools: nothing is lost.
        """
        while not self._has_room():
            self._beat = self._clock()
            if self._stall is not None:
                self._stall.beat()
            if self._stop.is_set() and self._beat > self._stop_deadline:
                return False
            time.sleep(0.005)
        return True

    def _handle(
        self, data: bytes, ancillary: list[tuple[int, int, bytes]], flags: int, now: float
    ) -> None:
        origin = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, gid = _CREDS.unpack_from(payload)
                origin = Origin(uid=uid, gid=gid, pid=pid)
        if origin is None:
            self._rejects.add("no_credentials", None)
            return
        if flags & socket.MSG_TRUNC:
            self._rejects.add("oversize", origin.uid)
            return
        if not self._limiter.allow(origin.uid, now):
            self._rejects.add("rate_limited", origin.uid)
            return
        try:
            event = parse_datagram(data, origin)
        except RejectedError as exc:
            self._rejects.add(exc.reason, origin.uid)
            return
        if self._submit(event):
            self.accepted += 1
