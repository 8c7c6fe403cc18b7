"""A real watcher process on temporary paths, and helpers to read its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ds01_events.envelope import encode_line, make_event


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def read_events(*paths: Path) -> list[dict[str, Any]]:
    """Every line of the given files, decoded."""
    events: list[dict[str, Any]] = []
    for path in paths:
        if path.exists():
            events.extend(msgspec.json.decode(line) for line in path.read_bytes().splitlines())
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
        return self.root / "watcher.stderr"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "watcher", "run",
            "--config", "/dev/null",
            "--events-file", str(self.events_file),
            "--socket", str(self.socket),
            "--spool-dir", str(self.spool),
            "--state-dir", str(self.root / "state"),
            *self.extra_args,
        ]

    def start(self, env: dict[str, str] | None = None, **popen: Any) -> Watcher:
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                popen.pop("args", None) or self.command(),
                stderr=err, stdout=err, env={**os.environ, **(env or {})}, **popen,
            )
        assert wait_for(lambda: self.started() or self.proc.poll() is not None)  # type: ignore[union-attr]
        assert self.proc.poll() is None, self.stderr()
        return self

    def started(self) -> bool:
        return any(e["event_type"] == "watcher.start" for e in read_events(self.events_file))

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def send(self, data: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, str(self.socket))

    def send_event(self, event_type: str, **details: Any) -> str:
        event = make_event(event_type, details=details)
        self.send(encode_line(event))
        return event.id

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def logged(self, event_id: str, *paths: Path) -> bool:
        return any(e["id"] == event_id for e in read_events(*(paths or (self.events_file,))))


@pytest.fixture
def make_watcher(tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    """Build watchers under tmp_path (or a given directory); all are stopped afterwards."""
    made: list[Watcher] = []

    def build(root: Path | None = None, log_dir: Path | None = None, extra: list[str] | None = None) -> Watcher:
        base = root or tmp_path
        base.mkdir(parents=True, exist_ok=True)
        watcher = Watcher(
            root=base,
            events_file=(log_dir or base / "log") / "events.jsonl",
            socket=base / "events.sock",
            spool=base / "spool",
            extra_args=extra or [],
        )
        made.append(watcher)
        return watcher

    yield build
    for watcher in made:
        if watcher.proc is not None and watcher.proc.poll() is None:
            watcher.proc.kill()
            watcher.proc.wait()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, other uids)")
