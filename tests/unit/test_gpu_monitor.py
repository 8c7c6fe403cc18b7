"""The GPU job end to end over fakes: a scripted poller, the canned /proc tree, plain containers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from detectors.snapshot import NvmlSnapshot
from tests.unit.gpu_snapshots import UUID, mig_uuid, migs, on_gpu, on_mig, snapshot
from watcher.docker.known_container import KnownContainer
from watcher.gpu.directory import ContainerDirectory, DeviceDirectory
from watcher.gpu.monitor import GpuMonitor

PROC = str(Path(__file__).resolve().parent.parent / "fixtures" / "proc")
MANAGED = "a" * 64  # pid 301 in the canned tree
PLAIN = "b" * 64  # pid 302


@dataclass(frozen=True)
class Answer:
    """A poller's answer."""

    state: str
    snapshot: NvmlSnapshot | None = None
    report: bool = False
    reason: str | None = None


class ScriptedPoller:
    """Answers from a list, then repeats the last."""

    timeout_s = 10.0

    def __init__(self, answers):
        self.answers = list(answers)

    def poll(self):
        """The next answer."""
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def ok(*processes, **kwargs):
    return Answer("ok", snapshot(*processes, **kwargs))


KNOWN = {
    MANAGED: KnownContainer(
        name="alice-job",
        running=True,
        user="alice",
        attributed_by="ds01.user",
        managed=True,
        gpu_devices=[mig_uuid(0, 1)],
        label_keys=["ds01.managed"],
    ),
    PLAIN: KnownContainer(name="adhoc", running=True, gpu_devices=["0"]),
}


def make(tmp_path, answers, lines, events, known=None):
    return GpuMonitor(
        ScriptedPoller(answers),
        lambda e: events.append(e) or True,
        state_dir=tmp_path,
        inventory_file=tmp_path / "workload-inventory.json",
        containers=ContainerDirectory(lambda: known if known is not None else KNOWN),
        devices=DeviceDirectory(),
        say=lines.append,
        proc=PROC,
        lookup_user={1001: "alice-host"}.get,
    )


FULL = (
    on_mig(301, 0, 1),  # managed container on its own MIG slice
    on_gpu(302, 1),  # unmanaged container, configured GPU 0, computing on GPU 1
    on_gpu(100, 1, memory=None),  # host process, memory N/A
)


def _types(events):
    return [e.event_type for e in events]


def test_each_detection_once_with_users_devices_and_classes(tmp_path):
    """Three polls: host process, unmanaged container and mismatch, each once, attributed."""
    events, lines = [], []
    monitor = make(
        tmp_path, [ok(*FULL, mig=(0,), mig_devices=migs(0, profile="3g.40gb"))], lines, events
    )
    for _ in range(3):
        monitor.poll_once()
    assert sorted(_types(events)) == [
        "detection.gpu_mismatch",
        "detection.host_gpu_process",
        "detection.unmanaged_container",
    ]
    by_type = {e.event_type: e for e in events}
    host = by_type["detection.host_gpu_process"]
    assert (host.user, host.details["uid"], host.details["pid"]) == ("alice-host", 1001, 100)
    assert (host.details["gpu_index"], host.details["gpu_uuid"]) == (1, UUID[1])
    assert host.details["used_memory_mib"] is None
    assert host.details["command"] == "/usr/bin/python3 train.py --epochs 10"
    unmanaged = by_type["detection.unmanaged_container"]
    assert (unmanaged.details["container"], unmanaged.details["container_id"]) == ("adhoc", PLAIN)
    assert (unmanaged.details["pid"], unmanaged.details["gpu_index"]) == (302, 1)
    mismatch = by_type["detection.gpu_mismatch"]
    assert mismatch.details["gpu_devices"] == ["0"]
    assert lines == []
    classes = {p.pid: p.klass for p in monitor.last_classified}
    assert classes == {301: "managed_container", 302: "unmanaged_container", 100: "host_process"}
    assert monitor.gpu_process_counts() == {
        "managed_container": 1,
        "unmanaged_container": 1,
        "host_process": 1,
        "infrastructure": 0,
    }


def test_host_exit_once_and_inventory(tmp_path):
    """The host process leaving gives one exit; the inventory lists it while it runs."""
    events, lines = [], []
    answers = [ok(on_gpu(100, 1)), ok(on_gpu(100, 1)), ok(), ok()]
    monitor = make(tmp_path, answers, lines, events)
    monitor.poll_once()
    monitor.poll_once()
    inventory = json.loads((tmp_path / "workload-inventory.json").read_text())
    assert inventory["host_processes"]["100"]["cmdline"] == "python3"
    assert inventory["host_processes"]["100"]["user"] == "alice-host"
    assert set(inventory["containers"]) == {MANAGED[:12], PLAIN[:12]}
    assert inventory["containers"][MANAGED[:12]]["origin"] == "ds01-managed"
    monitor.poll_once()
    monitor.poll_once()
    assert _types(events) == ["detection.host_gpu_process", "detection.host_gpu_process_exited"]
    inventory = json.loads((tmp_path / "workload-inventory.json").read_text())
    assert inventory["host_processes"] == {}


def test_hung_poll_reported_once_and_no_exit_storm(tmp_path):
    """A hung poll is one event; while it is stuck nothing exits; after it, polling resumes."""
    events, lines = [], []
    answers = [
        ok(on_gpu(100, 1)),
        ok(on_gpu(100, 1)),
        Answer("hung", report=True, reason="NVML did not answer within 10 s"),
        Answer("busy"),
        Answer("busy"),
        ok(on_gpu(100, 1)),
    ]
    monitor = make(tmp_path, answers, lines, events)
    for _ in range(6):
        monitor.poll_once()
    assert _types(events) == ["detection.host_gpu_process", "monitoring.nvml_unresponsive"]
    assert len(lines) == 1
    assert monitor.status() == "GPU: 1 process (1 on the host)"


def test_lost_and_denied_gpus_void_only_their_part(tmp_path):
    """GPU_IS_LOST once, NO_PERMISSION silent, and neither ends the process on it."""
    events, lines = [], []
    answers = [
        ok(on_gpu(100, 1)),
        ok(on_gpu(100, 1)),
        ok(lost=(1,), failed={1: "GPU_IS_LOST"}),
        ok(lost=(1,), failed={1: "GPU_IS_LOST"}),
        ok(failed={1: "NO_PERMISSION"}),
    ]
    monitor = make(tmp_path, answers, lines, events)
    for _ in range(5):
        monitor.poll_once()
    assert _types(events) == ["detection.host_gpu_process", "detection.gpu_lost"]


def test_unavailable_said_once(tmp_path):
    """No NVML: one line, however many polls, and no events."""
    events, lines = [], []
    gone = NvmlSnapshot(taken_at=1.0, error="NVML library libnvidia-ml.so.1 not found")
    answers = [
        Answer("unavailable", gone, report=True, reason=gone.error),
        Answer("unavailable", gone, reason=gone.error),
    ]
    monitor = make(tmp_path, answers, lines, events)
    assert monitor.status() is None
    for _ in range(4):
        monitor.poll_once()
    assert monitor.status() == "GPU: NVML unavailable"
    assert events == []
    assert lines == [
        (
            "GPU polling: NVML unavailable: NVML library libnvidia-ml.so.1 not found;"
            " retrying with backoff"
        )
    ]


def test_restart_does_not_report_again(tmp_path):
    """A new monitor over the same state dir does not repeat what was reported."""
    events, lines = [], []
    first = make(tmp_path, [ok(*FULL, mig=(0,), mig_devices=migs(0))], lines, events)
    first.poll_once()
    first.poll_once()
    assert len(events) == 3
    again = make(tmp_path, [ok(*FULL, mig=(0,), mig_devices=migs(0))], lines, events)
    again.poll_once()
    again.poll_once()
    assert len(events) == 3


def test_devices_resolved_for_the_docker_side(tmp_path):
    """After a poll, a configured MIG UUID or index resolves to NVML's device facts."""
    devices = DeviceDirectory()
    assert devices.resolve(["0"]) is None
    devices.update(snapshot(mig=(0,), mig_devices=migs(0, profile="3g.40gb")))
    assert devices.resolve([mig_uuid(0, 2)]) == [
        {"gpu_index": 0, "gpu_uuid": UUID[0], "mig_uuid": mig_uuid(0, 2), "mig_profile": "3g.40gb"}
    ]
    assert devices.resolve(["1"]) == [
        {"gpu_index": 1, "gpu_uuid": UUID[1], "mig_uuid": None, "mig_profile": None}
    ]
    assert [d["gpu_index"] for d in devices.resolve(["all"]) or []] == [0, 1]


def test_a_failing_poller_never_ends_the_job(tmp_path):
    """An exception inside a poll is one line (not one per poll); the next poll still runs."""

    class Broken:
        timeout_s = 1.0
        calls = 0

        def poll(self):
            """Fail."""
            self.calls += 1
            message = "boom"
            raise RuntimeError(message)

    lines = []
    poller = Broken()
    monitor = GpuMonitor(
        poller,
        lambda _event: True,
        state_dir=tmp_path,
        inventory_file=None,
        containers=ContainerDirectory(),
        devices=DeviceDirectory(),
        say=lines.append,
        proc=PROC,
    )
    monitor.poll_once()
    monitor.poll_once()
    assert poller.calls == 2
    assert len(lines) == 1


def test_unwritable_state_and_inventory_said_once_each(tmp_path):
    """Neither file usable: one line each (reading, saving, the inventory), not one per poll."""
    events, lines = [], []
    blocker = tmp_path / "file"
    blocker.write_text("")
    monitor = GpuMonitor(
        ScriptedPoller([ok(on_gpu(100, 1))]),
        lambda e: events.append(e) or True,
        state_dir=blocker / "state",
        inventory_file=blocker / "inventory.json",
        containers=ContainerDirectory(),
        devices=DeviceDirectory(),
        say=lines.append,
        proc=PROC,
    )
    for _ in range(4):
        monitor.poll_once()
    assert len(lines) == 3, lines
    assert [line.split()[1] for line in lines] == ["read", "save", "write"]
    assert [e.event_type for e in events] == ["detection.host_gpu_process"]


def test_container_flagged_by_the_docker_side_is_not_flagged_again(tmp_path):
    """A holder flagged from its configuration at start gets no second unmanaged flag."""
    events, lines = [], []
    known = dict(KNOWN)
    known[PLAIN] = KnownContainer(
        name="adhoc", running=True, gpu_devices=["0"], unmanaged_flagged=True
    )
    monitor = make(tmp_path, [ok(*FULL, mig=(0,), mig_devices=migs(0))], lines, events, known)
    for _ in range(3):
        monitor.poll_once()
    assert sorted(_types(events)) == ["detection.gpu_mismatch", "detection.host_gpu_process"]
