"""Hostile timing: signal storms, early signals, kill -9 and SIGSTOP leave a running service or a trace."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest
from trust_support import of_type, settings_file
from watcher_support import read_events, wait_for

from ds01_events.envelope import encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from watcher_support import Watcher

pytestmark = [pytest.mark.integration]


def _watcher(make_watcher: Callable[..., Watcher], tmp_path: Path, **values: float) -> Watcher:
    return make_watcher(extra=settings_file(tmp_path, **values))


class Flood:
    """Root sends numbered events as fast as the socket takes them (blocking: none refused)."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.sent: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.settimeout(2.0)
        n = 0
        try:
            while not self.stop.is_set():
                event = make_event("test.flood", details={"n": n})
                sock.sendto(encode_line(event), str(self.watcher.socket))
                self.sent.append(event.id)  # only once the kernel has taken it
                n += 1
        except OSError:
            return  # the watcher went away (kill -9)
        finally:
            sock.close()

    def __enter__(self) -> Flood:  # noqa: PYI034 - not meant to be subclassed
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.mark.parametrize("run", range(3))
def test_a_sighup_storm_during_a_flood_loses_nothing(
    make_watcher: Callable[..., Watcher], tmp_path: Path, run: int
) -> None:
    """Thousands of SIGHUPs while datagrams pour in: no crash, every datagram, watcher.stop last."""
    del run
    watcher = _watcher(make_watcher, tmp_path).start()
    assert watcher.proc is not None
    with Flood(watcher) as flood:
        deadline = time.monotonic() + 3.0
        storms = 0
        while time.monotonic() < deadline and watcher.proc.poll() is None:
            for _ in range(50):
                os.kill(watcher.proc.pid, signal.SIGHUP)
            storms += 50
            time.sleep(0.001)
    assert watcher.proc.poll() is None, watcher.stderr()
    assert storms > 1000
    assert len(flood.sent) > 1000
    assert watcher.stop(timeout=25) == 0, watcher.stderr()
    events = read_events(watcher.events_file)
    logged = {e["id"] for e in events if e["event_type"] == "test.flood"}
    assert set(flood.sent) <= logged
    assert not of_type(watcher, "watcher.gap")  # nothing taken from the kernel was refused
    assert events[-1]["event_type"] == "watcher.stop"
    assert "Traceback" not in watcher.stderr()


@pytest.mark.parametrize("delay", [0.1, 0.15, 0.3, 0.6])
def test_a_sighup_right_after_the_start_does_not_end_the_service(
    make_watcher: Callable[..., Watcher], tmp_path: Path, delay: float
) -> None:
    """A SIGHUP while the service is still importing is noted, not fatal."""
    watcher = _watcher(make_watcher, tmp_path)
    with watcher.stderr_path.open("ab") as err:
        watcher.proc = subprocess.Popen(watcher.command(), stdout=err, stderr=err)
    time.sleep(delay)
    watcher.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: watcher.started() or watcher.proc.poll() is not None)  # type: ignore[union-attr]
    time.sleep(0.3)
    assert watcher.proc.poll() is None, (watcher.proc.returncode, watcher.stderr())
    assert watcher.stop() == 0
    assert read_events(watcher.events_file)[-1]["event_type"] == "watcher.stop"


@pytest.mark.parametrize("run", range(3))
def test_sigterm_during_a_flood_and_a_sighup_storm_stops_within_the_stop_timeout(
    make_watcher: Callable[..., Watcher], tmp_path: Path, run: int
) -> None:
    """Senders never pause, SIGHUPs keep coming: SIGTERM still ends it within the timeout."""
    del run
    watcher = _watcher(make_watcher, tmp_path, stop_timeout_seconds=4).start()
    proc = watcher.proc
    assert proc is not None
    storming = threading.Event()

    def storm() -> None:
        while not storming.is_set() and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGHUP)
            time.sleep(0.0005)

    stormer = threading.Thread(target=storm, daemon=True)
    with Flood(watcher) as flood:
        wait_for(lambda: len(flood.sent) > 2000, 10)
        stormer.start()
        time.sleep(0.5)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=15)
        finally:
            storming.set()
            stormer.join(5)
        spent = time.monotonic() - began
    assert status == 0, watcher.stderr()
    assert spent < 4 + 1.5, spent
    assert read_events(watcher.events_file)[-1]["event_type"] == "watcher.stop"


def test_kill9_during_a_flood_is_marked_by_a_gap_at_the_next_start(
    make_watcher: Callable[..., Watcher], tmp_path: Path
) -> None:
    """The next run logs watcher.gap (unclean stop) from the last durable line to its start."""
    watcher = _watcher(make_watcher, tmp_path).start()
    assert watcher.proc is not None
    with Flood(watcher) as flood:
        wait_for(lambda: len(flood.sent) > 3000, 10)
        watcher.proc.kill()
        watcher.proc.wait(10)
    before = read_events(watcher.events_file)
    assert not of_type(watcher, "watcher.gap")
    last_durable = before[-1]["timestamp"]
    watcher.start()
    assert wait_for(lambda: len(of_type(watcher, "watcher.start")) == 2)
    assert wait_for(lambda: bool(of_type(watcher, "watcher.gap")))
    (gap,) = of_type(watcher, "watcher.gap")
    starts = of_type(watcher, "watcher.start")
    assert gap["details"]["reason"] == "unclean stop"
    assert gap["details"]["since"] == last_durable
    assert gap["details"]["until"] == starts[-1]["timestamp"]
    assert gap["details"]["since"] <= gap["details"]["until"]
    assert watcher.stop() == 0
    # A clean stop leaves nothing for the next start to report.
    watcher.start()
    assert wait_for(lambda: len(of_type(watcher, "watcher.start")) == 3)
    assert watcher.stop() == 0
    assert len(of_type(watcher, "watcher.gap")) == 1


def test_a_sigstop_is_logged_as_a_stall_when_it_ends(
    make_watcher: Callable[..., Watcher], tmp_path: Path
) -> None:
    """Stopped for 4 s (threshold 2 s): one watcher.stall with its duration after SIGCONT."""
    watcher = _watcher(make_watcher, tmp_path, stall_report_seconds=2).start()
    time.sleep(1.0)
    watcher.signal(signal.SIGSTOP)
    time.sleep(4.0)
    watcher.signal(signal.SIGCONT)
    assert wait_for(lambda: bool(of_type(watcher, "watcher.stall")), 10), watcher.stderr()
    time.sleep(1.5)
    (stall,) = of_type(watcher, "watcher.stall")
    assert 3.5 <= stall["details"]["seconds"] < 8
    assert stall["details"]["since"] < stall["details"]["until"]
    assert watcher.stop() == 0
