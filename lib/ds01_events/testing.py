"""Fakes for code that records events, and for our own tests: real sockets and files, no patching.

`FakeWatcher` stands where the watcher's socket would be and keeps what it receives;
`routes_in` points the library's routes into a directory of the caller's choice.

    with FakeWatcher(tmp_path) as watcher:
        assert log_event("maintenance.cleanup", user="alice") is True
        assert watcher.events()[0].user == "alice"
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ds01_events.emit import Settings
from ds01_events.envelope import Event, decode_client_line, decode_line, strip_logger_header

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

_ENV_KEYS = ("DS01_EVENTS_SOCKET", "DS01_EVENTS_FILE", "DS01_EVENTS_SPOOL")


def routes_in(directory: str | os.PathLike[str]) -> Settings:
    """Settings whose socket, events file and spool all lie in ``directory``."""
    base = Path(directory)
    return Settings(
        socket_path=str(base / "events.sock"),
        events_file=str(base / "events.jsonl"),
        spool_dir=str(base / "spool"),
    )


def read_events(path: str | os.PathLike[str]) -> list[Event]:
    """Every event in an events file (a missing file holds none)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return [decode_line(line) for line in data.splitlines() if line]


class FakeWatcher:
    """A real datagram socket at `routes_in(directory)`'s path that keeps what it receives.

    As a context manager it also sets ``DS01_EVENTS_*`` for the process, so plain
    `log_event` calls reach it, and restores them on exit. Datagrams that are not a
    valid client event are kept in `rejected`, as the watcher would count them.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.settings = routes_in(directory)
        self._received: list[Event] = []
        self.rejected: list[bytes] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.settings.socket_path)
        self._sock.settimeout(0.1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-watcher", daemon=True)
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> Self:
        for key, value in zip(
            _ENV_KEYS,
            (self.settings.socket_path, self.settings.events_file, self.settings.spool_dir),
            strict=True,
        ):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def events(self, count: int = 0, timeout: float = 5.0) -> list[Event]:
        """What was received so far; with ``count``, wait up to ``timeout`` s for that many."""
        deadline = time.monotonic() + timeout
        while count and len(self._received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            return list(self._received)

    def close(self) -> None:
        """Stop receiving, remove the socket and restore the environment. Safe twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        self._sock.close()
        Path(self.settings.socket_path).unlink(missing_ok=True)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                event = decode_client_line(strip_logger_header(data))
            except Exception:  # what the watcher would count as a reject
                with self._lock:
                    self.rejected.append(data)
                continue
            with self._lock:
                self._received.append(event)
