"""Helpers for the watcher integration tests: a real watcher process, its log, tmpfs mounts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from ds01_events.envelope import encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def complete_lines(data: bytes) -> list[bytes]:
    """The lines of ``data`` that end in a newline.

    The watcher may be in the middle of appending a batch while a test polls, and
    a reader can see part of that write: the unterminated tail is not a line yet.
    """
    return data[: data.rfind(b"\n") + 1].splitlines()


def read_events(*paths: Path) -> list[dict[str, Any]]:
    """Every complete line of the given files, decoded."""
    events: list[dict[str, Any]] = []
    for path in paths:
        if path.exists():
            events.extend(msgspec.json.decode(line) for line in complete_lines(path.read_bytes()))
    return events


@dataclass
class Watcher:
    """One `python -m watcher run` process with its own files."""

    root: Path
    events_file: Path
    socket: Path
    spool: Path
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def stderr_path(self) -> Path:
        """Where the process's stderr goes."""
        return self.root / "watcher.stderr"

    def command(self) -> list[str]:
        """Return the command line that runs this watcher."""
        return [
            sys.executable,
            "-m",
            "watcher",
            "run",
            "--config",
            "/dev/null",
            "--events-file",
            str(self.events_file),
            "--socket",
            str(self.socket),
            "--spool-dir",
            str(self.spool),
            "--state-dir",
            str(self.root / "state"),
            # Nothing probes a DCGM exporter unless a test asks: 127.0.0.1:9400 is not ours.
            *([] if "--dcgm-url" in self.extra_args else ["--dcgm-url", "off"]),
            *self.extra_args,
        ]

    def start(self, env: dict[str, str] | None = None, **popen: Any) -> Watcher:
        """Start the process and wait for its watcher.start event."""
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                popen.pop("args", None) or self.command(),
                stderr=err,
                stdout=err,
                env={**os.environ, **(env or {})},
                **popen,
            )
        assert wait_for(lambda: self.started() or self.proc.poll() is not None)  # type: ignore[union-attr]
        assert self.proc.poll() is None, self.stderr()
        return self

    def started(self) -> bool:
        """Whether watcher.start is in the log."""
        return any(e["event_type"] == "watcher.start" for e in read_events(self.events_file))

    def stderr(self) -> str:
        """Return what the process wrote on stderr so far."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def send(self, data: bytes) -> None:
        """Send one datagram to the ingest socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, str(self.socket))

    def send_event(self, event_type: str, **details: Any) -> str:
        """Send one valid event; return its id."""
        event = make_event(event_type, details=details)
        self.send(encode_line(event))
        return event.id

    def signal(self, signum: int) -> None:
        """Send a signal to the process."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def logged(self, event_id: str, *paths: Path) -> bool:
        """Whether the event with this id is in the log (or the given files)."""
        return any(e["id"] == event_id for e in read_events(*(paths or (self.events_file,))))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, other uids)")


def mount_tmpfs(where: Path, options: str) -> None:
    """Mount a fresh tmpfs at ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem reports ENOSPC."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)
    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as handle:
        while True:
            handle.write(b"\0")
    return filler
