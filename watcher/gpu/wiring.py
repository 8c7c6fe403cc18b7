"""Builds GPU polling from the settings: the poller, the Docker look-ups, the job.

Kept apart from service.py so the composition root only asks for "the GPU job".
Without NVML's Python binding (or with ``gpu = "off"``) there is no job, and one line
says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.gpu.directory import ContainerDirectory, DeviceDirectory
from watcher.gpu.monitor import GpuMonitor, Poller, user_by_uid

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from watcher.config import Settings
    from watcher.docker.known_container import KnownContainer
    from watcher.docker.source import DockerSource
    from watcher.typing import Submit

INSPECT_TIMEOUT_S = 5


def make_poller(timeout_s: float) -> tuple[Poller | None, str | None]:
    """The NVML poller, or None and the one line saying why there is none."""
    try:
        from detectors.poller import NvmlPoller  # noqa: PLC0415 - loads pynvml, only to poll
    except Exception as exc:  # pynvml missing or broken: GPU polling is off, said once
        return None, f"GPU polling off: the NVML Python binding cannot be loaded ({exc})"
    return NvmlPoller(timeout_s), None


def docker_inspect(docker_host: str | None) -> Callable[[str], Mapping[str, Any] | None]:
    """``inspect`` through a short-timeout client of our own; None when Docker cannot say."""
    client: list[Any] = []

    def inspect(container_id: str) -> Mapping[str, Any] | None:
        try:
            if not client:
                import docker  # noqa: PLC0415 - only when a container is not known yet

                client.append(docker.APIClient(base_url=docker_host, timeout=INSPECT_TIMEOUT_S))
            result: Mapping[str, Any] = client[0].inspect_container(container_id)
        except Exception:
            return None
        return result

    return inspect


class SourceSlot:
    """Where the Docker source is put once the service builds it (it starts after jobs)."""

    def __init__(self) -> None:
        self.source: DockerSource | None = None

    def known(self) -> Mapping[str, KnownContainer] | None:
        """Its containers once it has reconciled a full listing; None before (incomplete)."""
        source = self.source
        if source is None or not source.synced:
            return None
        return source.known_containers()


def gpu_monitor(
    settings: Settings,
    submit: Submit,
    *,
    say: Callable[[str], None],
    devices: DeviceDirectory,
    slot: SourceSlot | None,
    poller: Poller | None = None,
) -> GpuMonitor | None:
    """The GPU monitor for ``run``; None (after one line) when GPU polling cannot run."""
    if settings.gpu == "off":
        say("GPU polling off (--gpu off)")
        return None
    if poller is None:
        poller, problem = make_poller(settings.gpu_timeout_seconds)
        if poller is None:
            say(problem or "GPU polling off")
            return None
    containers = ContainerDirectory(
        slot.known if slot is not None else None,
        docker_inspect(settings.docker_host),
        user_by_uid=user_by_uid,
    )
    return GpuMonitor(
        poller,
        submit,
        state_dir=Path(settings.state_dir),
        inventory_file=Path(settings.inventory_file) if settings.inventory_file else None,
        containers=containers,
        devices=devices,
        say=say,
    )
