"""detectors.poller: deadlines, a hung poll left alone, backoff while NVML is unavailable."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from detectors.poller import NvmlPoller
from detectors.snapshot import NvmlSnapshot
from tests.fakes.nvml import FakeNvml

if TYPE_CHECKING:
    from detectors.nvml import NvmlReader

FIXTURE = "gpu 0\ngpu 1 mig=on\nmig 1 0\nproc 0 pid=3\nproc 1/0 pid=4\n"


class ScriptedReader:
    """Answers snapshots from a list; ``gate`` (if set) blocks ``read`` until it is set."""

    def __init__(self, snapshots: list[NvmlSnapshot]) -> None:
        self.snapshots = snapshots
        self.calls = 0
        self.gate: threading.Event | None = None

    def read(self) -> NvmlSnapshot:
        """The next scripted snapshot (the last one repeats)."""
        self.calls += 1
        if self.gate is not None:
            self.gate.wait()
        return self.snapshots[min(self.calls, len(self.snapshots)) - 1]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """Now."""
        return self.now


OK = NvmlSnapshot(taken_at=1.0)
DOWN = NvmlSnapshot(taken_at=1.0, error="NVIDIA driver not loaded")
MISMATCH = NvmlSnapshot(taken_at=1.0, error="versions differ")


def poller(reader: ScriptedReader, clock: Clock, timeout: float = 2.0) -> NvmlPoller:
    return NvmlPoller(
        timeout, backoff_s=30, max_backoff_s=100, reader=cast("NvmlReader", reader), monotonic=clock
    )


def test_ok_poll_returns_the_snapshot() -> None:
    """A poll that returns in time is ok, with its snapshot, and nothing to report."""
    result = poller(ScriptedReader([OK]), Clock()).poll()
    assert (result.state, result.snapshot, result.report) == ("ok", OK, False)


def test_unavailable_is_said_once_and_retried_with_backoff() -> None:
    """Unavailable: reported on the first result only; NVML asked again after 30, 60, 100 s."""
    reader, clock = ScriptedReader([DOWN, DOWN, DOWN, DOWN, OK]), Clock()
    nvml = poller(reader, clock)
    first = nvml.poll()
    assert (first.state, first.report, first.reason) == ("unavailable", True, DOWN.error)
    asked_at = []
    for _ in range(400):
        clock.now += 1
        before = reader.calls
        result = nvml.poll()
        if reader.calls > before:
            asked_at.append(clock.now - 1000)
        if result.state == "ok":
            break
        assert result.state == "unavailable"
        assert not result.report
    assert asked_at == [30, 90, 190, 290]
    assert nvml.poll().state == "ok"


def test_new_unavailable_reason_is_reported_again() -> None:
    """A different reason (driver unloaded, then mismatched) is news: reported once more."""
    reader, clock = ScriptedReader([DOWN, MISMATCH, MISMATCH]), Clock()
    nvml = poller(reader, clock)
    assert nvml.poll().report
    clock.now += 30
    second = nvml.poll()
    assert (second.reason, second.report) == ("versions differ", True)
    clock.now += 60
    assert not nvml.poll().report


def test_recovery_resets_the_backoff() -> None:
    """After NVML answers again, the next outage starts from the first backoff step."""
    reader, clock = ScriptedReader([DOWN, DOWN, OK, DOWN, OK]), Clock()
    nvml = poller(reader, clock)
    nvml.poll()
    clock.now += 30
    nvml.poll()  # DOWN again: next try in 60 s
    clock.now += 60
    assert nvml.poll().state == "ok"
    down = nvml.poll()
    assert (down.state, down.report) == ("unavailable", True)
    clock.now += 30
    assert nvml.poll().state == "ok"


def test_hung_poll_is_reported_once_and_no_second_starts() -> None:
    """Past the deadline: hung (report) once, then busy without asking NVML; fresh once it returns."""
    reader = ScriptedReader([OK, OK])
    reader.gate = threading.Event()
    nvml = NvmlPoller(0.2, reader=cast("NvmlReader", reader), monotonic=time.monotonic)
    started = time.monotonic()
    hung = nvml.poll()
    assert time.monotonic() - started < 2
    assert (hung.state, hung.report, hung.snapshot) == ("hung", True, None)
    assert nvml.stuck
    for _ in range(3):
        busy = nvml.poll()
        assert (busy.state, busy.report) == ("busy", False)
        assert busy.stuck_for_s is not None
    assert reader.calls == 1
    assert sum(t.name == "nvml-poll" for t in threading.enumerate()) == 1
    reader.gate.set()
    deadline = time.monotonic() + 5
    while nvml.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    reader.gate = None
    assert nvml.poll().state == "ok"
    assert reader.calls == 2


pytestmark_fake = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the fake NVML")


@pytest.fixture
def fake(tmp_path: Path):
    fake = FakeNvml(tmp_path / "nvml")
    fake.write(FIXTURE)
    yield fake
    fake.close()


@pytestmark_fake
def test_hang_in_the_real_stack_hits_the_deadline(fake: FakeNvml) -> None:
    """A process list that never returns: hung within the deadline, busy after, ok once lifted."""
    session = fake.session(timeout=0.5)
    assert session.ask("poll")["state"] == "ok"
    fake.write(FIXTURE + "hang nvmlDeviceGetComputeRunningProcesses_v3 gpu=1/0\n")
    started = time.monotonic()
    hung = session.ask("poll")
    assert time.monotonic() - started < 3
    assert (hung["state"], hung["report"]) == ("hung", True)
    busy = session.ask("poll")
    assert (busy["state"], busy["report"]) == ("busy", False)
    assert session.ask("threads") == 1
    fake.write(FIXTURE)
    deadline = time.monotonic() + 10
    while session.ask("threads") and time.monotonic() < deadline:
        time.sleep(0.05)
    ok = session.ask("poll")
    session.check_fake_loaded()
    assert ok["state"] == "ok"
    assert sorted(p["pid"] for p in ok["snapshot"]["processes"]) == [3, 4]


STOPPABLE = """
import signal, sys, time
from detectors.poller import NvmlPoller
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
poller = NvmlPoller(0.3)
print(poller.poll().state, flush=True)
while True:
    time.sleep(0.05)
"""


@pytestmark_fake
@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_stops_a_process_with_a_hung_poll(fake: FakeNvml, attempt: int) -> None:
    """The hung call sits in a daemon thread: SIGTERM still ends the process promptly."""
    fake.write(FIXTURE + "hang nvmlDeviceGetCount_v2\n")
    proc = fake.start_python(STOPPABLE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "hung"
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        result = fake.finish(proc, timeout=5)
        assert time.monotonic() - started < 3
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert result.returncode == 0, result.stderr


def test_poll_results_are_immutable() -> None:
    """PollResult is frozen like the snapshots it carries."""
    result = poller(ScriptedReader([OK]), Clock()).poll()
    with pytest.raises(AttributeError):
        cast("Any", result).state = "busy"
