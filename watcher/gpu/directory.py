"""What the GPU side needs from the rest of the watcher, as plain data.

`DeviceDirectory` keeps the devices NVML saw last, so the Docker side can name the
devices a configuration gives (gpu.allocate / gpu.release). `ContainerDirectory`
turns what the Docker source knows (or, for a container it does not know, an
``inspect``) into the `ContainerFacts` classification takes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from detectors.classify import ContainerFacts
from detectors.devices import DeviceMap, device_details, resolve
from detectors.inventory import origin_of
from watcher.docker.known_container import KnownContainer, known_from_inspect

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from detectors.snapshot import NvmlSnapshot

# Inspects asked per poll for containers the source does not know (bounded work).
MAX_INSPECTS = 32


class DeviceDirectory:
    """The devices of the last successful NVML poll; safe to read from any thread."""

    def __init__(self) -> None:
        self._devices: DeviceMap | None = None
        self._lock = threading.Lock()

    def update(self, snapshot: NvmlSnapshot) -> None:
        """Keep this snapshot's GPUs and MIG devices (a failed snapshot is ignored)."""
        if snapshot.error is not None or not snapshot.gpus:
            return
        devices = DeviceMap(snapshot.gpus, snapshot.mig_devices)
        with self._lock:
            self._devices = devices

    def gpu_count(self) -> int | None:
        """GPUs the last successful poll saw and did not find lost; None while NVML is not known.

        The DCGM watchdog's yardstick: an exporter serving fewer GPUs is stale.
        """
        with self._lock:
            devices = self._devices
        if devices is None:
            return None
        return sum(1 for gpu in devices.gpus.values() if not gpu.lost)

    def resolve(self, configured: Sequence[str]) -> list[dict[str, Any]] | None:
        """Configured identifiers as NVML's devices; None while NVML is not known."""
        with self._lock:
            devices = self._devices
        if devices is None:
            return None
        resolution = resolve(list(configured), devices)
        if resolution.all:
            return [device_details(devices.whole(gpu)) for gpu in devices.gpus.values()]
        return [device_details(device) for device in resolution.devices]


def status_of(known: KnownContainer) -> str:
    """Docker's status word for a container, from what the source tracked."""
    if known.running:
        return "running"
    return "exited" if known.exit_code is not None else "created"


def facts_from_known(container_id: str, known: KnownContainer) -> ContainerFacts:
    """The classification's view of one container."""
    return ContainerFacts(
        id=container_id,
        name=known.name,
        user=known.user,
        attributed_by=known.attributed_by,
        managed=known.managed,
        infrastructure=known.infrastructure,
        gpu_devices=tuple(known.gpu_devices),
        image=known.image,
        origin=origin_of(managed=known.managed, label_keys=known.label_keys, name=known.name),
        status=status_of(known),
        flagged_unmanaged=known.unmanaged_flagged,
    )


class ContainerDirectory:
    """Container facts for a poll. Never raises.

    ``known`` returns the Docker source's containers by full id, or None while its
    view is incomplete; ``inspect`` fetches one container the source does not know
    (None when it cannot, e.g. the engine is away).
    """

    def __init__(
        self,
        known: Callable[[], Mapping[str, KnownContainer] | None] | None = None,
        inspect: Callable[[str], Mapping[str, Any] | None] | None = None,
        *,
        user_by_uid: Callable[[int], str | None] | None = None,
    ) -> None:
        self._known = known
        self._inspect = inspect
        self._user_by_uid = user_by_uid

    def facts(
        self, wanted: Collection[str]
    ) -> tuple[dict[str, ContainerFacts], frozenset[str] | None]:
        """Facts for every known container and for each id in ``wanted``; and the running ids.

        The running ids are None unless the source's view is complete (then a
        container missing from them has stopped).
        """
        listed: Mapping[str, KnownContainer] | None = None
        if self._known is not None:
            try:
                listed = self._known()
            except Exception:
                listed = None
        known = dict(listed or {})
        missing = sorted(set(wanted) - set(known))[:MAX_INSPECTS]
        for container_id in missing if self._inspect is not None else []:
            found = self._lookup(container_id)
            if found is not None:
                known[container_id] = found
        facts = {cid: facts_from_known(cid, k) for cid, k in known.items()}
        if listed is None:
            return facts, None
        return facts, frozenset(cid for cid, k in known.items() if k.running)

    def _lookup(self, container_id: str) -> KnownContainer | None:
        try:
            inspect = self._inspect(container_id) if self._inspect is not None else None
        except Exception:
            return None
        if not inspect:
            return None
        try:
            return known_from_inspect(inspect, user_by_uid=self._user_by_uid)
        except Exception:
            return None
