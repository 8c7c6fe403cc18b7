"""Snapshots and /proc answers built by hand, for the GPU logic's unit tests."""

from __future__ import annotations

from detectors.procfs import ProcessInfo
from detectors.snapshot import Gpu, GpuProcess, MigDevice, NvmlSnapshot

UUID = [f"GPU-{i:08d}-0000-0000-0000-000000000000" for i in range(8)]


def mig_uuid(gpu: int, mig: int) -> str:
    """A MIG device UUID for GPU ``gpu``, instance ``mig``."""
    return f"MIG-{gpu:04d}{mig:04d}-0000-0000-0000-000000000000"


def gpus(
    count: int = 2,
    *,
    mig: tuple[int, ...] = (),
    failed: dict[int, str] | None = None,
    lost: tuple[int, ...] = (),
) -> tuple[Gpu, ...]:
    """``count`` GPUs; those in ``mig`` are in MIG mode."""
    failed = failed or {}
    return tuple(
        Gpu(
            index=i,
            uuid=UUID[i],
            name="NVIDIA H100 80GB HBM3",
            memory_total_mib=81559,
            mig_mode=i in mig,
            failed=failed.get(i),
            lost=i in lost,
        )
        for i in range(count)
    )


def migs(gpu: int, count: int = 7, profile: str = "1g.10gb") -> tuple[MigDevice, ...]:
    """``count`` MIG devices on ``gpu``."""
    return tuple(
        MigDevice(
            parent_index=gpu,
            mig_index=m,
            uuid=mig_uuid(gpu, m),
            gpu_instance_id=7 + m,
            compute_instance_id=0,
            profile=profile,
            memory_total_mib=9856,
        )
        for m in range(count)
    )


def on_gpu(pid: int, gpu: int, memory: int | None = 512) -> GpuProcess:
    """A process on a whole GPU."""
    return GpuProcess(pid=pid, gpu_index=gpu, gpu_uuid=UUID[gpu], used_memory_mib=memory)


def on_mig(pid: int, gpu: int, mig: int, memory: int | None = 256) -> GpuProcess:
    """A process on a MIG device."""
    return GpuProcess(
        pid=pid,
        gpu_index=gpu,
        gpu_uuid=UUID[gpu],
        used_memory_mib=memory,
        mig_uuid=mig_uuid(gpu, mig),
        mig_index=mig,
    )


def snapshot(
    *processes: GpuProcess,
    count: int = 2,
    mig: tuple[int, ...] = (),
    mig_devices: tuple[MigDevice, ...] = (),
    taken_at: float = 1000.0,
    failed: dict[int, str] | None = None,
    lost: tuple[int, ...] = (),
    error: str | None = None,
) -> NvmlSnapshot:
    """One poll's snapshot."""
    if error is not None:
        return NvmlSnapshot(taken_at=taken_at, error=error)
    return NvmlSnapshot(
        taken_at=taken_at,
        driver_version="550.54.15",
        gpus=gpus(count, mig=mig, failed=failed, lost=lost),
        mig_devices=mig_devices,
        processes=processes,
    )


def host(pid: int, uid: int = 1001, starttime: int = 5000, program: str = "python3") -> ProcessInfo:
    """/proc's answer for a host process."""
    return ProcessInfo(
        pid=pid,
        starttime=starttime,
        comm=program[:15],
        uid=uid,
        command=f"/usr/bin/{program} train.py",
        program=program,
    )


def contained(
    pid: int,
    container_id: str,
    starttime: int = 6000,
    uid: int = 0,
    rootless_uid: int | None = None,
) -> ProcessInfo:
    """/proc's answer for a process in a container."""
    return ProcessInfo(
        pid=pid,
        starttime=starttime,
        comm="python",
        uid=uid,
        command="python",
        program="python",
        container_id=container_id,
        runtime="docker",
        rootless_uid=rootless_uid,
    )
