"""The only module that imports pynvml: one NVML poll in, one immutable snapshot out.

Every NVML call goes through ``_call``, and every error has one written policy
(``POLICY``; docs/gpu.md says the same for admins):

- NOT_SUPPORTED, NO_PERMISSION, NOT_FOUND (an empty MIG slot) and any other error of
  a single question: the answer is ``None``. On a process list the same errors void
  that GPU's part of the poll (``Gpu.failed``), since "no answer" is not "no process".
- GPU_IS_LOST: that GPU is marked ``lost`` (and ``failed``); the other GPUs still count.
- LIBRARY_NOT_FOUND, DRIVER_NOT_LOADED, LIB_RM_VERSION_MISMATCH, UNINITIALIZED, and
  pynvml's ``NVMLLibraryMismatchError`` (not an ``NVMLError``; a driver older than
  pynvml): NVML is unavailable; the snapshot carries ``error`` and no GPUs.
- INSUFFICIENT_SIZE on a process list (it grew past pynvml's margin between the two
  sizing calls): asked again, up to ``LIST_ATTEMPTS`` times.

Facts honoured here: instance ids are 0xFFFFFFFF without MIG and are not used; used
memory ``ULLONG_MAX`` is N/A (pynvml gives ``None``); in MIG mode only the MIG device
handles are asked (the parent's list is privileged and, with privileges, repeats
every MIG device's processes); ``nvmlDeviceIsMigDeviceHandle`` answers a ctypes
``c_uint``; the detail-list call is not used (its wrapper raises TypeError on N/A
memory). NVML reports host PIDs whatever namespace a process lives in.

NVML calls can hang in the kernel: run ``NvmlReader.read`` only where it can be
abandoned (detectors.poller does).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pynvml

from detectors.snapshot import Gpu, GpuProcess, MigDevice, NvmlSnapshot, ProcessKind

if TYPE_CHECKING:
    from collections.abc import Callable

Policy = Literal["unknown", "lost", "unavailable", "retry"]

#: What each NVML error means for the poll; codes not listed are "unknown".
POLICY: dict[int, Policy] = {
    pynvml.NVML_ERROR_NOT_SUPPORTED: "unknown",
    pynvml.NVML_ERROR_NO_PERMISSION: "unknown",
    pynvml.NVML_ERROR_NOT_FOUND: "unknown",
    pynvml.NVML_ERROR_GPU_IS_LOST: "lost",
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: "unavailable",
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: "unavailable",
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: "unavailable",
    pynvml.NVML_ERROR_UNINITIALIZED: "unavailable",
    pynvml.NVML_ERROR_INSUFFICIENT_SIZE: "retry",
}

#: The one line an admin reads when NVML as a whole cannot be used.
UNAVAILABLE_REASONS: dict[int, str] = {
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: (
        "NVML library libnvidia-ml.so.1 not found: is the NVIDIA driver installed?"
    ),
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: (
        "NVIDIA driver not loaded: is the nvidia kernel module loaded (nvidia-smi)?"
    ),
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
        "NVML library and NVIDIA kernel driver versions differ: driver upgraded"
        " without a reboot? Reboot, or reload the nvidia modules"
    ),
    pynvml.NVML_ERROR_UNINITIALIZED: "NVML is not initialised",
}

LIST_ATTEMPTS = 3
_MIB = 1024 * 1024
_NOT_AVAILABLE = 2**64 - 1


class NvmlUnavailable(Exception):
    """NVML as a whole cannot answer; ``reason`` is the admin's one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GpuLost(Exception):
    """The GPU answered GPU_IS_LOST: gone until a reset or reboot."""


class NoAnswer(Exception):
    """One question got no answer; ``reason`` says why, for ``Gpu.failed``."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    @property
    def retry(self) -> bool:
        """Whether asking again may help (a list that grew between the sizing calls)."""
        return self.code is not None and POLICY.get(self.code) == "retry"


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call one pynvml function under ``POLICY``: its value, or one of the three errors."""
    name = getattr(fn, "__name__", "nvml")
    try:
        return fn(*args)
    except pynvml.NVMLLibraryMismatchError as exc:
        raise NvmlUnavailable(f"NVML driver older than pynvml: {exc}") from exc
    except pynvml.NVMLError as exc:
        value = getattr(exc, "value", None)
        code = value if isinstance(value, int) else -1
        policy = POLICY.get(code, "unknown")
        if policy == "unavailable":
            raise NvmlUnavailable(UNAVAILABLE_REASONS.get(code, str(exc))) from exc
        if policy == "lost":
            raise GpuLost(name) from exc
        raise NoAnswer(f"{name}: {exc}", code=code) from exc
    except Exception as exc:
        # pynvml's own traps (TypeError on N/A fields, bad bytes): one unanswered question.
        raise NoAnswer(f"{name}: {type(exc).__name__}: {exc}") from exc


def _value(fn: Callable[..., Any], *args: Any) -> Any:
    """``_call`` for a single question: ``None`` when NVML gives no answer."""
    try:
        return _call(fn, *args)
    except NoAnswer:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _mib(value: Any) -> int | None:
    if not isinstance(value, int) or value < 0 or value == _NOT_AVAILABLE:
        return None
    return value // _MIB


def _total_mib(handle: Any) -> int | None:
    memory = _value(pynvml.nvmlDeviceGetMemoryInfo, handle)
    return None if memory is None else _mib(getattr(memory, "total", None))


def _profile(name: str | None) -> str | None:
    """``"NVIDIA A100-SXM4-80GB MIG 3g.40gb"`` -> ``"3g.40gb"``."""
    if name is None or " MIG " not in name:
        return None
    return name.rsplit(" MIG ", 1)[1].strip() or None


def _list(fn: Callable[..., Any], handle: Any) -> list[Any]:
    """One process list, asked again while it grows past pynvml's margin."""
    for attempt in range(LIST_ATTEMPTS):
        try:
            return list(_call(fn, handle))
        except NoAnswer as exc:
            if not exc.retry or attempt == LIST_ATTEMPTS - 1:
                raise
    return []  # pragma: no cover - the loop returns or raises


def _processes(handle: Any) -> list[tuple[int, int | None, ProcessKind]]:
    """Compute then graphics processes of one handle: (pid, MiB or None, kind), pid once.

    Raises NoAnswer when the compute list is unanswered, or the graphics list is for
    any reason but NOT_SUPPORTED (compute-only boards); GpuLost, NvmlUnavailable.
    """
    found: dict[int, tuple[int, int | None, ProcessKind]] = {}
    kinds: tuple[tuple[Callable[..., Any], ProcessKind], ...] = (
        (pynvml.nvmlDeviceGetComputeRunningProcesses, "compute"),
        (pynvml.nvmlDeviceGetGraphicsRunningProcesses, "graphics"),
    )
    for fn, kind in kinds:
        try:
            entries = _list(fn, handle)
        except NoAnswer as exc:
            if kind == "graphics" and exc.code == pynvml.NVML_ERROR_NOT_SUPPORTED:
                continue
            raise
        for entry in entries:
            pid = getattr(entry, "pid", None)
            if isinstance(pid, int) and pid > 0 and pid not in found:
                found[pid] = (pid, _mib(getattr(entry, "usedGpuMemory", None)), kind)
    return list(found.values())


class _GpuPart(NamedTuple):
    """What one GPU contributes to a snapshot."""

    gpu: Gpu
    migs: list[MigDevice]
    processes: list[GpuProcess]


class NvmlReader:
    """Reads snapshots. Not thread-safe: one ``read`` at a time (the poller's rule).

    Keeps NVML initialised between reads and remembers each index's UUID, so a GPU
    lost later is still named.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._initialised = False
        self._driver: str | None = None
        self._uuids: dict[int, str] = {}

    def read(self) -> NvmlSnapshot:
        """One poll. Never raises; NVML unavailable gives a snapshot with ``error``."""
        taken_at = self._clock()
        try:
            self._init()
            count = _call(pynvml.nvmlDeviceGetCount)
            parts = [self._gpu(index) for index in range(int(count))]
        except NvmlUnavailable as exc:
            self._forget()
            return NvmlSnapshot(taken_at=taken_at, error=exc.reason)
        except (NoAnswer, GpuLost) as exc:
            self._forget()
            return NvmlSnapshot(taken_at=taken_at, error=f"NVML did not answer: {exc}")
        except Exception as exc:  # never raise out of a poll
            self._forget()
            return NvmlSnapshot(taken_at=taken_at, error=f"NVML poll failed: {exc!r}")
        return NvmlSnapshot(
            taken_at=taken_at,
            driver_version=self._driver,
            gpus=tuple(part.gpu for part in parts),
            mig_devices=tuple(mig for part in parts for mig in part.migs),
            processes=tuple(proc for part in parts for proc in part.processes),
        )

    def close(self) -> None:
        """Shut NVML down (best effort)."""
        self._forget()

    def _init(self) -> None:
        if not self._initialised:
            _call(pynvml.nvmlInit)
            self._initialised = True
            self._driver = _text(_value(pynvml.nvmlSystemGetDriverVersion))

    def _forget(self) -> None:
        if self._initialised:
            self._initialised = False
            try:
                _call(pynvml.nvmlShutdown)
            except (NvmlUnavailable, GpuLost, NoAnswer):  # the next read initialises again
                return

    def _gpu(self, index: int) -> _GpuPart:
        handle: Any = None
        try:
            handle = _call(pynvml.nvmlDeviceGetHandleByIndex, index)
            uuid = _text(_call(pynvml.nvmlDeviceGetUUID, handle)) or ""
            if uuid:
                self._uuids[index] = uuid
            return self._gpu_part(index, handle, uuid)
        except GpuLost:
            uuid = self._uuids.get(index, "")
            lost = Gpu(index=index, uuid=uuid, lost=True, failed="GPU is lost")
            return _GpuPart(lost, [], [])
        except NoAnswer as exc:
            return _GpuPart(
                Gpu(index=index, uuid=self._uuids.get(index, ""), failed=exc.reason), [], []
            )

    def _gpu_part(self, index: int, handle: Any, uuid: str) -> _GpuPart:
        name = _text(_value(pynvml.nvmlDeviceGetName, handle))
        memory = _total_mib(handle)
        mode = _value(pynvml.nvmlDeviceGetMigMode, handle)
        mig_mode = None if mode is None else bool(mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE)
        minor = _value(pynvml.nvmlDeviceGetMinorNumber, handle)

        def gpu(failed: str | None = None) -> Gpu:
            return Gpu(
                index=index,
                uuid=uuid,
                name=name,
                memory_total_mib=memory,
                mig_mode=mig_mode,
                failed=failed,
                minor=minor if isinstance(minor, int) else None,
            )

        migs: list[MigDevice] = []
        processes: list[GpuProcess] = []
        try:
            if mig_mode:
                for mig, mig_handle in self._mig_devices(index, handle):
                    migs.append(mig)
                    processes.extend(
                        GpuProcess(
                            pid=pid,
                            gpu_index=index,
                            gpu_uuid=uuid,
                            kind=kind,
                            used_memory_mib=used,
                            mig_uuid=mig.uuid,
                            mig_index=mig.mig_index,
                        )
                        for pid, used, kind in _processes(mig_handle)
                    )
            else:
                processes.extend(
                    GpuProcess(
                        pid=pid, gpu_index=index, gpu_uuid=uuid, kind=kind, used_memory_mib=used
                    )
                    for pid, used, kind in _processes(handle)
                )
        except NoAnswer as exc:
            # The part is void: listing the devices but no process would read as "all exited".
            return _GpuPart(gpu(failed=exc.reason), migs, [])
        return _GpuPart(gpu(), migs, processes)

    def _mig_devices(self, index: int, handle: Any) -> list[tuple[MigDevice, Any]]:
        """Every populated MIG slot of a GPU in MIG mode; empty slots answer NOT_FOUND.

        Any other unanswered question here raises NoAnswer: a slot skipped by mistake
        would read as its processes having exited.
        """
        slots = _call(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle)
        found: list[tuple[MigDevice, Any]] = []
        for slot in range(int(slots)):
            try:
                mig_handle = _call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
            except NoAnswer as exc:
                if exc.code == pynvml.NVML_ERROR_NOT_FOUND:
                    continue
                raise
            is_mig = _value(pynvml.nvmlDeviceIsMigDeviceHandle, mig_handle)
            if is_mig is not None and not getattr(is_mig, "value", is_mig):
                continue  # not a MIG handle after all: never count the parent twice
            mig_uuid = _text(_call(pynvml.nvmlDeviceGetUUID, mig_handle))
            if not mig_uuid:
                raise NoAnswer(f"MIG device {index}/{slot} has no UUID")
            mig = MigDevice(
                parent_index=index,
                mig_index=slot,
                uuid=mig_uuid,
                gpu_instance_id=_instance_id(_value(pynvml.nvmlDeviceGetGpuInstanceId, mig_handle)),
                compute_instance_id=_instance_id(
                    _value(pynvml.nvmlDeviceGetComputeInstanceId, mig_handle)
                ),
                profile=_profile(_text(_value(pynvml.nvmlDeviceGetName, mig_handle))),
                memory_total_mib=_total_mib(mig_handle),
            )
            found.append((mig, mig_handle))
        return found


def _instance_id(value: Any) -> int | None:
    """An instance id, ``None`` for 0xFFFFFFFF (no MIG) or no answer."""
    if not isinstance(value, int) or value in (0xFFFFFFFF, -1):
        return None
    return value
