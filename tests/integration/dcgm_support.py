"""A stand-in DCGM exporter (busybox httpd on 127.0.0.1) and helpers for the watchdog tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docker_support import IMAGE

from watcher.dcgm.job import DcgmProbe
from watcher.dcgm.restart import ExporterRestarter
from watcher.dcgm.watchdog import WatchdogPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from ds01_events.envelope import Event

GPU0 = "GPU-34319582-d595-d1c7-d1d2-179bcfa61660"  # in MIG mode: two GPU instances
GPU1 = "GPU-8c16e996-bd76-aa91-17e7-b48bcd0208ba"
# Inside the script's double-quoted echo: quotes escaped for sh.
_LABELS = r"pci_bus_id=\"00000000:07:00.0\",modelName=\"NVIDIA A100-SXM4-80GB\""

# The exporter's text format (labels in its order, MIG series carry GPU_I_PROFILE and
# GPU_I_ID with the parent's UUID, no GPU_UTIL for the MIG GPU), rewritten every second
# with a moving energy counter unless /ctl/freeze exists. TERM ends it (trap), so the
# graceful stop works; httpd -f stays in the foreground as PID 1's child.
STANDIN_SCRIPT = rf"""
trap 'exit 0' TERM
e=1000000000
write() {{
  {{
  echo '# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).'
  echo '# TYPE DCGM_FI_DEV_SM_CLOCK gauge'
  for i in 1 2; do
    echo "DCGM_FI_DEV_SM_CLOCK{{gpu=\"0\",UUID=\"{GPU0}\",{_LABELS},device=\"nvidia0\",GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"$i\",Hostname=\"standin\"}} 1410"
  done
  echo "DCGM_FI_DEV_SM_CLOCK{{gpu=\"1\",UUID=\"{GPU1}\",{_LABELS},device=\"nvidia1\",Hostname=\"standin\"}} 1410"
  echo '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).'
  echo '# TYPE DCGM_FI_DEV_GPU_UTIL gauge'
  echo "DCGM_FI_DEV_GPU_UTIL{{gpu=\"1\",UUID=\"{GPU1}\",{_LABELS},device=\"nvidia1\",Hostname=\"standin\"}} 37"
  echo '# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).'
  echo '# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter'
  for i in 1 2; do
    echo "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"0\",UUID=\"{GPU0}\",{_LABELS},device=\"nvidia0\",GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"$i\",Hostname=\"standin\"}} $e"
  done
  echo "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"1\",UUID=\"{GPU1}\",{_LABELS},device=\"nvidia1\",hostname=\"standin\"}} $((e * 2))"
  }} > /www/metrics.tmp
  busybox mv /www/metrics.tmp /www/metrics
}}
write
httpd -f -p 127.0.0.1:$PORT -h /www &
while :; do
  [ -e /ctl/freeze ] || e=$((e + 1800000))
  write
  sleep 1
done
"""


def free_port() -> int:
    """A port nothing listens on now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StandIn:
    """One stand-in exporter container; `remove` at the end."""

    def __init__(self, client: Any, ctl: Path, run_id: str, *, script: str = STANDIN_SCRIPT):
        self.client = client
        self.ctl = ctl
        self.port = free_port()
        self.name = f"ds01-test-dcgm-{run_id}-{uuid.uuid4().hex[:6]}"
        ctl.mkdir(parents=True, exist_ok=True)
        self.container = client.containers.run(
            IMAGE,
            ["sh", "-c", script],
            name=self.name,
            detach=True,
            network_mode="host",
            environment={"PORT": str(self.port)},
            volumes={str(ctl): {"bind": "/ctl", "mode": "ro"}},
            labels={"ds01.test": "1", "ds01.test.run": run_id},
        )

    @property
    def url(self) -> str:
        """Its /metrics."""
        return f"http://127.0.0.1:{self.port}/metrics"

    def freeze(self) -> None:
        """Stop the energy counter moving (it stays so across restarts)."""
        (self.ctl / "freeze").touch()

    def thaw(self) -> None:
        """Let the counter move again."""
        with contextlib.suppress(FileNotFoundError):
            (self.ctl / "freeze").unlink()

    def started_at(self) -> str:
        """The container's last start time (changes with each restart)."""
        self.container.reload()
        return str(self.container.attrs["State"]["StartedAt"])

    def remove(self) -> None:
        """Remove the container, paused or not."""
        with contextlib.suppress(Exception):
            self.container.remove(force=True)


class Collected:
    """A submit that keeps every event, for in-process watchdog tests."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.said: list[str] = []

    def submit(self, event: Event, /) -> bool:
        """Keep ``event``."""
        self.events.append(event)
        return True

    def say(self, line: str) -> None:
        """Keep a stderr line."""
        self.said.append(line)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        """Details of the events of one type, in order."""
        return [dict(e.details) for e in self.events if e.event_type == event_type]

    def types(self) -> list[str]:
        """All event types, in order."""
        return [e.event_type for e in self.events]


def make_probe(
    url: str,
    container: str,
    collected: Collected,
    *,
    timeout: float = 1.0,
    expected_gpus: Callable[[], int | None] | None = None,
    **policy: Any,
) -> DcgmProbe:
    """A watchdog on ``url`` restarting ``container`` by the Docker API (no unit here)."""
    restarter = ExporterRestarter(
        unit="ds01-test-no-such.service",
        container=container,
        stop_timeout=policy.pop("stop_timeout", 5.0),
        systemd_running=lambda: False,
    )
    return DcgmProbe(
        url,
        collected.submit,
        policy=WatchdogPolicy(**policy),
        timeout=timeout,
        restarter=restarter,
        say=collected.say,
        expected_gpus=expected_gpus,
    )


class ProbeLoop:
    """Calls `probe` every ``interval`` seconds on a thread, as the scheduler would."""

    def __init__(self, probe: DcgmProbe, interval: float) -> None:
        self.probe = probe
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProbeLoop:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.probe.wait_restart(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.probe.probe()
            self._stop.wait(max(self.interval - (time.monotonic() - started), 0.0))
