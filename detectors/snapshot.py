"""What one NVML poll saw: immutable plain data, ``None`` wherever NVML could not say.

The nvml adapter is the only producer; procfs, classify and debounce consume these
Structs and never touch pynvml, so they are tested with plain data.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ProcessKind = Literal["compute", "graphics"]


class Gpu(msgspec.Struct, frozen=True, kw_only=True):
    """One physical GPU.

    ``lost``: NVML answered GPU_IS_LOST (gone until reboot). ``failed``: why this GPU's
    process lists could not be read in this poll (its part of the poll is void: no
    exits may be concluded for it), or ``None`` when they were read.
    """

    index: int
    uuid: str
    name: str | None = None
    memory_total_mib: int | None = None
    mig_mode: bool | None = None
    lost: bool = False
    failed: str | None = None
    # The N of its /dev/nvidiaN node (None: NVML did not say). The driver numbers its
    # nodes in its own probe order, which need not be NVML's index order.
    minor: int | None = None


class MigDevice(msgspec.Struct, frozen=True, kw_only=True):
    """One MIG device (a GPU instance + compute instance) of a GPU in MIG mode."""

    parent_index: int
    mig_index: int
    uuid: str
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    profile: str | None = None  # e.g. "3g.40gb"
    memory_total_mib: int | None = None


class GpuProcess(msgspec.Struct, frozen=True, kw_only=True):
    """One process NVML lists on a GPU or MIG device. ``pid`` is always a host PID."""

    pid: int
    gpu_index: int
    gpu_uuid: str
    kind: ProcessKind = "compute"
    used_memory_mib: int | None = None
    mig_uuid: str | None = None
    mig_index: int | None = None


class NvmlSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One poll. ``taken_at`` is Unix time; ``error`` says why NVML as a whole failed.

    A snapshot with ``error`` set carries no GPUs and must never produce exits.
    """

    taken_at: float
    driver_version: str | None = None
    gpus: tuple[Gpu, ...] = ()
    mig_devices: tuple[MigDevice, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    error: str | None = None
