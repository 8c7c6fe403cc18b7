"""GPU polling end to end: the whole service, the real dockerd, real processes, the fake NVML.

The fake libnvidia-ml (loaded by the real pynvml through LD_LIBRARY_PATH) reports the
host PIDs of real containers and of a real host process, so /proc, Docker's facts,
classification, debounce, the events and the inventory are all the real thing.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from watcher_support import read_events, wait_for

from tests.fakes.nvml import FakeNvml
from tests.integration.docker_support import Containers, docker_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watcher_support import Watcher

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the fake NVML"),
]

GPU0, GPU1, GPU2 = (f"GPU-0000000{i}-1111-4000-8000-000000000000" for i in range(3))
SLICE = "MIG-00000000-2222-4000-8000-000000000001"
DEVICES = f"""driver 550.54.15
gpu 0 uuid={GPU0} mig=on
mig 0 0 uuid=MIG-00000000-2222-4000-8000-000000000000 profile=3g.40gb memory=40192
mig 0 1 uuid={SLICE} profile=3g.40gb memory=40192
gpu 1 uuid={GPU1}
gpu 2 uuid={GPU2}
"""


@pytest.fixture
def containers() -> Iterator[Containers]:
    made = Containers(docker_client())
    yield made
    made.cleanup()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNvml]:
    fake = FakeNvml(tmp_path / "nvml")
    fake.write(DEVICES)
    yield fake
    fake.close()


@pytest.fixture
def host_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real host process (sleep) running as nobody."""
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "300"]
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _pid(container: Any) -> int:
    container.reload()
    return int(container.attrs["State"]["Pid"])


def _mine(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == event_type]


def _fake_mapped(pid: int, fake: FakeNvml) -> bool:
    maps = {
        line.split()[-1]
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if "libnvidia-ml" in line
    }
    return bool(maps) and all(p.startswith(str(fake.library_dir)) for p in maps)


class Notify:
    """A NOTIFY_SOCKET listener that collects what the service sends."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.got: list[tuple[float, bytes]] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            while True:
                self.got.append((time.monotonic(), self.sock.recv(4096)))
        except OSError:
            return

    def watchdogs_since(self, when: float) -> int:
        """WATCHDOG=1 pings received since ``when``."""
        return sum(1 for at, m in self.got if at >= when and b"WATCHDOG=1" in m)


class Scenario:
    """One watcher on the fake NVML, with real containers and host processes on its GPUs."""

    def __init__(self, watcher: Watcher, fake: FakeNvml, inventory: Path) -> None:
        self.watcher = watcher
        self.fake = fake
        self.inventory = inventory
        self.on_gpus = ""

    def logged(self, event_type: str) -> list[dict[str, Any]]:
        """The events of this type in the log so far."""
        return _mine(read_events(self.watcher.events_file), event_type)

    def show(self, extra: str = "", devices: str = DEVICES) -> None:
        """Make the fake report the processes on the GPUs, plus ``extra`` lines."""
        self.fake.write(devices + self.on_gpus + extra)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(make_watcher: Callable[..., Watcher], fake: FakeNvml, tmp_path: Path) -> Scenario:
    inventory = tmp_path / "workload-inventory.json"
    config = tmp_path / "watcher.toml"
    config.write_text(f"metrics_port = {_free_port()}\n")
    watcher = make_watcher(
        extra=[
            "--config",
            str(config),
            "--gpu-interval",
            "0.5",
            "--gpu-timeout",
            "1",
            "--dcgm-url",
            "off",
            "--inventory-file",
            str(inventory),
        ]
    )
    env = {**fake.env(), "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"}
    watcher.start(env=env)
    assert watcher.proc is not None
    # The first poll has the devices: gpu.allocate can name them from now on.
    assert wait_for(inventory.exists, 30), watcher.stderr()
    assert _fake_mapped(watcher.proc.pid, fake)
    return Scenario(watcher, fake, inventory)


def _check_detections(
    run: Scenario, managed: Any, plain: Any, elsewhere: Any, host_pid: int
) -> None:
    assert wait_for(
        lambda: (
            run.logged("detection.host_gpu_process")
            and run.logged("detection.unmanaged_container")
            and run.logged("detection.gpu_mismatch")
        ),
        30,
    ), run.watcher.stderr()
    hosts = {e["details"]["pid"]: e for e in run.logged("detection.host_gpu_process")}
    host = hosts[host_pid]
    assert (host["user"], host["details"]["uid"]) == ("nobody", 65534)
    assert host["details"]["command"] == "sleep 300"
    assert (host["details"]["gpu_index"], host["details"]["gpu_uuid"]) == (1, GPU1)
    assert host["details"]["used_memory_mib"] is None

    (unmanaged,) = run.logged("detection.unmanaged_container")
    d = unmanaged["details"]
    assert (d["container_id"], d["container"], d["pid"]) == (plain.id, plain.name, _pid(plain))
    assert (d["gpu_index"], d["gpu_uuid"], d["mig_uuid"]) == (2, GPU2, None)
    assert "user" not in unmanaged  # root inside an unlabelled container is nobody's

    (mismatch,) = run.logged("detection.gpu_mismatch")
    d = mismatch["details"]
    assert (mismatch["user"], d["attributed_by"], d["container_id"]) == (
        "bob",
        "ds01.user",
        elsewhere.id,
    )
    assert (d["gpu_index"], d["gpu_uuid"], d["gpu_devices"]) == (1, GPU1, ["2"])

    allocate = next(
        e for e in run.logged("gpu.allocate") if e["details"]["container_id"] == managed.id
    )
    assert allocate["user"] == "alice"
    assert (allocate["details"]["gpu_index"], allocate["details"]["gpu_uuid"]) == (0, GPU0)
    assert (allocate["details"]["mig_uuid"], allocate["details"]["mig_profile"]) == (
        SLICE,
        "3g.40gb",
    )

    # The inventory is rewritten just after the poll's events are handed over.
    assert wait_for(
        lambda: str(host_pid) in json.loads(run.inventory.read_text())["host_processes"], 10
    )
    data = json.loads(run.inventory.read_text())
    assert data["host_processes"][str(host_pid)]["cmdline"] == "sleep"
    assert data["host_processes"][str(host_pid)]["user"] == "nobody"
    assert data["containers"][managed.id[:12]]["origin"] == "ds01-managed"
    assert data["containers"][plain.id[:12]]["origin"] == "raw-docker"
    assert data["containers"][plain.id[:12]]["has_gpu"] is True


def config_port(config: Path) -> str:
    """The metrics port written into the test's config file."""
    return config.read_text().split("=")[1].strip()


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _check_gpus_command(run: Scenario, managed: Any, plain: Any, host_pid: int) -> None:
    """`ds01-watcher gpus --json`, a process of its own, names holders, users and classes."""
    result = subprocess.run(
        [*run.watcher.command()[:3], "gpus", "--json", "--config", "/dev/null"],
        env=run.fake.env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["docker"] == "ok"
    holders = {
        p["pid"]: p
        for gpu in view["gpus"]
        for device in [gpu, *gpu["mig_devices"]]
        for p in device["processes"]
    }
    mine = holders[_pid(managed)]
    assert (mine["class"], mine["container"], mine["user"]) == (
        "managed_container",
        managed.name,
        "alice",
    )
    assert holders[_pid(plain)]["class"] == "unmanaged_container"
    assert (holders[host_pid]["class"], holders[host_pid]["user"]) == ("host_process", "nobody")
    assert view["free_devices"] == ["0:0"]


def _check_failing_polls(run: Scenario, notify: Notify) -> None:
    """NO_PERMISSION on GPU 1, then GPU 2 lost, then a hang: no exits, still writing, healthy."""
    run.show("error nvmlDeviceGetComputeRunningProcesses_v3 gpu=1 NVML_ERROR_NO_PERMISSION\n")
    time.sleep(1.5)
    run.show(devices=DEVICES.replace(f"gpu 2 uuid={GPU2}", f"gpu 2 uuid={GPU2} lost"))
    assert wait_for(lambda: run.logged("detection.gpu_lost"), 20)
    time.sleep(1.5)
    run.show("hang nvmlDeviceGetComputeRunningProcesses_v3\n")
    assert wait_for(lambda: run.logged("monitoring.nvml_unresponsive"), 20)
    hung_at = time.monotonic()
    event_id = run.watcher.send_event("maintenance.cleanup", action="test", reason="writing")
    assert wait_for(lambda: run.watcher.logged(event_id), 10)
    assert wait_for(lambda: notify.watchdogs_since(hung_at + 1.0) >= 3, 10)
    time.sleep(1.5)


def test_every_kind_of_gpu_use_attributed_once(
    make_watcher: Callable[..., Watcher],
    containers: Containers,
    fake: FakeNvml,
    host_process: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    """Managed MIG holder, unlabelled container, mismatch, host process: right events, once."""
    notify = Notify(tmp_path / "notify")
    run = _start(make_watcher, fake, tmp_path)
    managed = containers.create(
        ["sleep", "300"],
        labels={"ds01.managed": "true", "ds01.user": "alice"},
        environment={"NVIDIA_VISIBLE_DEVICES": SLICE},
    )
    plain = containers.create(["sleep", "300"])
    elsewhere = containers.create(
        ["sleep", "300"],
        labels={"ds01.managed": "true", "ds01.user": "bob"},
        environment={"NVIDIA_VISIBLE_DEVICES": "2"},
    )
    for c in (managed, plain, elsewhere):
        c.start()
    # A second host process on GPUs 1 and 2 lives through the failing polls below.
    survivor = subprocess.Popen(["sleep", "300"])
    try:
        run.on_gpus = (
            f"proc 0/1 pid={_pid(managed)} memory=1024\n"
            f"proc 2 pid={_pid(plain)} memory=2048\n"
            f"proc 1 pid={_pid(elsewhere)} memory=4096\n"
            f"proc 1 pid={survivor.pid} memory=10\n"
            f"proc 2 pid={survivor.pid} memory=10\n"
        )
        run.show(f"proc 1 pid={host_process.pid} memory=na\n")
        _check_detections(run, managed, plain, elsewhere, host_process.pid)
        _check_gpus_command(run, managed, plain, host_process.pid)
        port = int(config_port(tmp_path / "watcher.toml"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        assert 'ds01_gpu_processes{class="host_process"} 2.0' in metrics
        assert 'ds01_gpu_processes{class="managed_container"} 2.0' in metrics
        assert 'ds01_gpu_processes{class="unmanaged_container"} 1.0' in metrics
        rss_kib = int(_status(run.watcher.proc.pid)["VmRSS"].split()[0])  # type: ignore[union-attr]
        assert rss_kib < 80 * 1024, rss_kib
        assert wait_for(lambda: len(run.logged("detection.host_gpu_process")) == 3, 10)

        # The host process ends while NVML still lists it: /proc decides, one exit.
        host_process.kill()
        host_process.wait()
        assert wait_for(lambda: run.logged("detection.host_gpu_process_exited"), 30)
        (exited,) = run.logged("detection.host_gpu_process_exited")
        assert (exited["details"]["pid"], exited["user"]) == (host_process.pid, "nobody")
        assert exited["details"]["ran_s"] >= 0

        _check_failing_polls(run, notify)
        events = read_events(run.watcher.events_file)
        counts = {
            t: len(_mine(events, t))
            for t in (
                "monitoring.nvml_unresponsive",
                "detection.gpu_lost",
                "detection.host_gpu_process_exited",
                "detection.unmanaged_container",
                "detection.gpu_mismatch",
                "detection.host_gpu_process",
            )
        }
        assert counts == {
            "monitoring.nvml_unresponsive": 1,
            "detection.gpu_lost": 1,
            "detection.host_gpu_process_exited": 1,
            "detection.unmanaged_container": 1,
            "detection.gpu_mismatch": 1,
            "detection.host_gpu_process": 3,
        }
    finally:
        survivor.kill()
        survivor.wait()
    # A stuck poll does not keep the service from stopping on SIGTERM.
    assert run.watcher.proc is not None
    started = time.monotonic()
    run.watcher.signal(signal.SIGTERM)
    assert run.watcher.proc.wait(20) == 0
    assert time.monotonic() - started < 15
    assert run.logged("watcher.stop")


def test_without_nvml_one_line_and_no_flood(
    make_watcher: Callable[..., Watcher], fake: FakeNvml, tmp_path: Path
) -> None:
    """No libnvidia-ml: one clear line at start, the service runs, gpus says the same."""
    watcher = make_watcher(extra=["--gpu-interval", "0.2", "--dcgm-url", "off"])
    env = fake.env(with_library=False)
    if any(
        "libnvidia-ml" in line
        for line in subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
    ):
        pytest.skip("a real libnvidia-ml is installed")
    watcher.start(env=env)
    assert wait_for(lambda: "NVML unavailable" in watcher.stderr(), 20), watcher.stderr()
    time.sleep(1.5)
    nvml_lines = [line for line in watcher.stderr().splitlines() if "NVML" in line]
    assert len(nvml_lines) == 1, watcher.stderr()
    event_id = watcher.send_event("maintenance.cleanup", action="test", reason="alive")
    assert wait_for(lambda: watcher.logged(event_id), 10)
    assert watcher.stop() == 0
    result = subprocess.run(
        [*watcher.command()[:3], "gpus", "--config", "/dev/null"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "NVML unavailable" in result.stderr
    assert "Traceback" not in result.stderr


def _polls(inventory: Path, count: int) -> bool:
    """Wait until the inventory was rewritten ``count`` more times (one per poll)."""
    for _ in range(count):
        before = inventory.stat().st_mtime_ns
        if not wait_for(lambda b=before: inventory.stat().st_mtime_ns != b, 10):
            return False
    return True


def test_restart_does_not_report_again(
    make_watcher: Callable[..., Watcher],
    fake: FakeNvml,
    host_process: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    """What one watcher reported, the next one (same state dir) does not; the exit still comes."""
    fake.write(DEVICES + f"proc 1 pid={host_process.pid} memory=64\n")
    extra = ["--gpu-interval", "0.3", "--dcgm-url", "off"]
    first = make_watcher(root=tmp_path / "w", extra=extra).start(env=fake.env())
    inventory = tmp_path / "w" / "state" / "workload-inventory.json"

    def count(event_type: str) -> int:
        return len(_mine(read_events(first.events_file), event_type))

    assert wait_for(lambda: count("detection.host_gpu_process") == 1, 30), first.stderr()
    assert first.stop() == 0
    second = make_watcher(root=tmp_path / "w", extra=extra).start(env=fake.env())
    assert wait_for(inventory.exists, 30)
    assert _polls(inventory, 4)
    assert count("detection.host_gpu_process") == 1
    host_process.kill()
    host_process.wait()
    assert wait_for(lambda: count("detection.host_gpu_process_exited") == 1, 30)
    assert second.stop() == 0
