"""Extra components and jobs plug into the composition root; the watchdog follows health."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

from watcher_support import read_events, wait_for

from ds01_events.envelope import make_event
from watcher.config import Settings
from watcher.sdnotify import Notifier
from watcher.service import Job, Service

if TYPE_CHECKING:
    from pathlib import Path

    from watcher.typing import Component, EventLog, Submit


class FakeSource:
    """A Component that submits one event at start and one at stop."""

    name = "fake-source"

    def __init__(self, submit: Submit) -> None:
        self.submit = submit
        self.ok = True
        self.stopped = False

    def start(self) -> None:
        """Submit a start marker."""
        self.submit(make_event("test.source_started"))

    def stop(self, timeout: float) -> None:
        """Submit a stop marker (before watcher.stop)."""
        del timeout
        self.submit(make_event("test.source_stopped"))
        self.stopped = True

    def healthy(self) -> bool:
        """Report the health the test sets."""
        return self.ok


def _settings(root: Path) -> Settings:
    return Settings(
        events_file=str(root / "log" / "events.jsonl"),
        socket=str(root / "events.sock"),
        spool_dir=str(root / "spool"),
        state_dir=str(root / "state"),
    )


def test_component_factory_job_and_watchdog(tmp_path: Path) -> None:
    """Factory and job plug in; WATCHDOG=1 pauses while a component is unhealthy."""
    notify_path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(0.2)
    notifier = Notifier({"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000"})
    sources: list[FakeSource] = []
    ran = threading.Event()

    def build(log: EventLog) -> Component:
        sources.append(FakeSource(log.submit))
        return sources[0]

    service = Service(
        _settings(tmp_path),
        extra_components=[build],
        jobs=[Job("probe", ran.set, interval_seconds=0.1, run_at_start=True)],
        notifier=notifier,
    )
    runner = threading.Thread(target=service.run)
    runner.start()

    def messages(seconds: float) -> list[bytes]:
        got: list[bytes] = []
        deadline = threading.Event()
        threading.Timer(seconds, deadline.set).start()
        while not deadline.is_set():
            with contextlib.suppress(TimeoutError):
                got.append(listener.recv(1024))
        return got

    try:
        assert wait_for(lambda: bool(sources) and ran.is_set())
        assert any(b"WATCHDOG=1" in m for m in messages(0.5))
        sources[0].ok = False
        messages(0.2)  # drain what was sent before the change
        assert not any(b"WATCHDOG=1" in m for m in messages(0.6))
        sources[0].ok = True
        assert any(b"WATCHDOG=1" in m for m in messages(0.6))
    finally:
        service.request_stop("test")
        runner.join(30)
        listener.close()
    assert sources[0].stopped
    types = [e["event_type"] for e in read_events(tmp_path / "log" / "events.jsonl")]
    assert types[0] == "watcher.start"
    assert "test.source_started" in types
    assert types[-2:] == ["test.source_stopped", "watcher.stop"]


def test_a_job_without_run_at_start_runs_on_its_interval(tmp_path: Path) -> None:
    """A plain job (no run_at_start) is scheduled, not paused: it runs again and again."""
    runs: list[float] = []
    service = Service(
        _settings(tmp_path), jobs=[Job("tick", lambda: runs.append(1.0), interval_seconds=0.2)]
    )
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        assert wait_for(lambda: len(runs) >= 3, timeout=10)
        assert all(job.next_run_time is not None for job in service.scheduler.get_jobs())
    finally:
        service.request_stop("test")
        runner.join(30)
