"""A container's configured GPU identifiers against what NVML sees. Pure, never raises.

Docker-side configuration names devices in several ways (see watcher's gpu_devices):
indices (``0``), ``<gpu>:<mig>`` and ds01 slots ``<gpu>.<mig>``, GPU UUIDs
(``GPU-...``), MIG UUIDs (``MIG-...``, and the older ``MIG-GPU-<uuid>/<gi>/<ci>``),
``/dev/nvidiaN`` device nodes, ``all``, and ``count:N`` (a request for N GPUs that
does not say which). Resolving them against a snapshot gives each one's GPU index,
GPU UUID and, for a MIG device, its UUID and profile.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from detectors.snapshot import Gpu, GpuProcess, MigDevice

_INDEX = re.compile(r"^\d{1,4}$")
_PAIR = re.compile(r"^(\d{1,4})[:.](\d{1,4})$")
_DEV_NODE = re.compile(r"^/dev/nvidia(\d{1,4})$")
_LEGACY_MIG = re.compile(r"^MIG-(GPU-[0-9A-Za-z-]+)/(\d+)/(\d+)$")


class ResolvedDevice(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One configured device as NVML knows it: a whole GPU, or one MIG device of it."""

    gpu_index: int
    gpu_uuid: str
    mig_uuid: str | None = None
    mig_index: int | None = None
    mig_profile: str | None = None


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """What a configuration gives a container, in NVML's terms.

    ``all``: every GPU. ``vague``: a part of it (``count:N``) names no device, so a
    device outside the resolved ones cannot be called a mismatch. ``unresolved``:
    identifiers that match nothing NVML sees now (they give no device).
    """

    devices: tuple[ResolvedDevice, ...] = ()
    all: bool = False
    vague: bool = False
    unresolved: tuple[str, ...] = ()


class DeviceMap:
    """Look-ups over one snapshot's GPUs and MIG devices."""

    def __init__(self, gpus: Iterable[Gpu], migs: Iterable[MigDevice]) -> None:
        self.gpus = {gpu.index: gpu for gpu in gpus}
        self.gpu_by_uuid = {gpu.uuid: gpu for gpu in self.gpus.values()}
        self.gpu_by_minor = {g.minor: g for g in self.gpus.values() if g.minor is not None}
        self.migs = {(mig.parent_index, mig.mig_index): mig for mig in migs}
        self.mig_by_uuid = {mig.uuid: mig for mig in self.migs.values()}

    def whole(self, gpu: Gpu) -> ResolvedDevice:
        """The whole GPU as a resolved device."""
        return ResolvedDevice(gpu_index=gpu.index, gpu_uuid=gpu.uuid)

    def mig(self, mig: MigDevice) -> ResolvedDevice | None:
        """A MIG device with its parent GPU, or None when the parent is not known."""
        parent = self.gpus.get(mig.parent_index)
        if parent is None:
            return None
        return ResolvedDevice(
            gpu_index=parent.index,
            gpu_uuid=parent.uuid,
            mig_uuid=mig.uuid,
            mig_index=mig.mig_index,
            mig_profile=mig.profile,
        )

    def one(self, identifier: str) -> ResolvedDevice | None:
        """Resolve one identifier; None when it names nothing NVML sees."""
        value = identifier.strip()
        node = _DEV_NODE.match(value)
        if node or _INDEX.match(value):
            gpu = self.node(int(node.group(1))) if node else self.gpus.get(int(value))
            return self.whole(gpu) if gpu is not None else None
        pair = _PAIR.match(value)
        if pair:
            mig = self.migs.get((int(pair.group(1)), int(pair.group(2))))
            return self.mig(mig) if mig is not None else None
        if value in self.gpu_by_uuid:
            return self.whole(self.gpu_by_uuid[value])
        if value in self.mig_by_uuid:
            return self.mig(self.mig_by_uuid[value])
        legacy = _LEGACY_MIG.match(value)
        if legacy:
            return self._legacy(legacy.group(1), int(legacy.group(2)), int(legacy.group(3)))
        return None

    def node(self, minor: int) -> Gpu | None:
        """The GPU behind ``/dev/nvidia<minor>``: by the minor number NVML reports.

        Only where NVML gave no minor number for any GPU is N taken as its index.
        """
        if self.gpu_by_minor:
            return self.gpu_by_minor.get(minor)
        return self.gpus.get(minor)

    def _legacy(self, gpu_uuid: str, gi: int, ci: int) -> ResolvedDevice | None:
        gpu = self.gpu_by_uuid.get(gpu_uuid)
        if gpu is None:
            return None
        for (parent, _index), mig in self.migs.items():
            if parent == gpu.index and (mig.gpu_instance_id, mig.compute_instance_id) == (gi, ci):
                return self.mig(mig)
        return None

    def process_device(self, process: GpuProcess) -> ResolvedDevice:
        """The device a process runs on, with the MIG profile when known."""
        mig = self.mig_by_uuid.get(process.mig_uuid) if process.mig_uuid else None
        if mig is None and process.mig_index is not None:
            mig = self.migs.get((process.gpu_index, process.mig_index))
        resolved = self.mig(mig) if mig is not None else None
        if resolved is not None:
            return resolved
        return ResolvedDevice(
            gpu_index=process.gpu_index,
            gpu_uuid=process.gpu_uuid,
            mig_uuid=process.mig_uuid,
            mig_index=process.mig_index,
        )


def resolve(configured: Sequence[str], devices: DeviceMap) -> Resolution:
    """Resolve a container's configured identifiers; duplicates dropped, order kept."""
    found: list[ResolvedDevice] = []
    unresolved: list[str] = []
    every = False
    vague = False
    for identifier in configured:
        value = str(identifier).strip()
        if value.lower() == "all":
            every = True
            continue
        if value.lower().startswith("count:"):
            vague = True
            continue
        resolved = devices.one(value)
        if resolved is None:
            unresolved.append(value)
        elif resolved not in found:
            found.append(resolved)
    return Resolution(devices=tuple(found), all=every, vague=vague, unresolved=tuple(unresolved))


def allows(resolution: Resolution, device: ResolvedDevice) -> bool | None:
    """Whether the configuration gives ``device``; None when it cannot say.

    A whole GPU in the configuration gives each of its MIG devices too. A MIG
    device in it gives only that MIG device, not its parent or siblings.
    """
    if resolution.all:
        return True
    for given in resolution.devices:
        if given.gpu_uuid != device.gpu_uuid:
            continue
        if given.mig_uuid is None or given.mig_uuid == device.mig_uuid:
            return True
    if resolution.vague:
        return None
    return False


def device_details(device: ResolvedDevice) -> dict[str, object]:
    """The detail keys naming one device: gpu_index, gpu_uuid, mig_uuid, mig_profile."""
    return {
        "gpu_index": device.gpu_index,
        "gpu_uuid": device.gpu_uuid,
        "mig_uuid": device.mig_uuid,
        "mig_profile": device.mig_profile,
    }
