"""The `ds01-watcher gpus` view: per GPU and MIG device, who holds it. Pure.

`gpu_view` turns a snapshot and its classified processes into plain data (the
``--json`` output); `render_table` prints it for an admin, devices nobody uses
marked ``free``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from detectors.classify import ClassifiedProcess
    from detectors.snapshot import NvmlSnapshot

_SHORT_CLASS = {
    "managed_container": "managed",
    "unmanaged_container": "UNMANAGED",
    "host_process": "HOST",
    "infrastructure": "infra",
    "gone": "gone",
}


def _process(process: ClassifiedProcess) -> dict[str, Any]:
    return {
        "pid": process.pid,
        "class": process.klass,
        "rule": process.rule,
        "container": process.container,
        "container_id": process.container_id[:12] if process.container_id else None,
        "user": process.user,
        "attributed_by": process.attributed_by,
        "used_memory_mib": process.used_memory_mib,
        "program": process.program,
        "command": process.command,
        "outside_config": process.outside_config,
    }


def gpu_view(snapshot: NvmlSnapshot, classified: Iterable[ClassifiedProcess]) -> dict[str, Any]:
    """Plain data for ``--json``: every GPU, its MIG devices, and each one's processes."""
    on_gpu: dict[str, list[dict[str, Any]]] = {}
    on_mig: dict[str, list[dict[str, Any]]] = {}
    for process in classified:
        entry = _process(process)
        if process.mig_uuid:
            on_mig.setdefault(process.mig_uuid, []).append(entry)
        else:
            on_gpu.setdefault(process.gpu_uuid, []).append(entry)
    gpus: list[dict[str, Any]] = []
    free: list[str] = []
    for gpu in sorted(snapshot.gpus, key=lambda g: g.index):
        migs = sorted(
            (m for m in snapshot.mig_devices if m.parent_index == gpu.index),
            key=lambda m: m.mig_index,
        )
        mig_views = []
        for mig in migs:
            processes = on_mig.get(mig.uuid, [])
            if not processes and gpu.failed is None and not gpu.lost:
                free.append(f"{gpu.index}:{mig.mig_index}")
            mig_views.append(
                {
                    "mig_index": mig.mig_index,
                    "uuid": mig.uuid,
                    "profile": mig.profile,
                    "gpu_instance_id": mig.gpu_instance_id,
                    "compute_instance_id": mig.compute_instance_id,
                    "memory_total_mib": mig.memory_total_mib,
                    "processes": processes,
                }
            )
        processes = on_gpu.get(gpu.uuid, [])
        if not (migs or processes or gpu.failed or gpu.lost or gpu.mig_mode):
            free.append(str(gpu.index))
        gpus.append(
            {
                "index": gpu.index,
                "uuid": gpu.uuid,
                "name": gpu.name,
                "memory_total_mib": gpu.memory_total_mib,
                "mig_mode": gpu.mig_mode,
                "lost": gpu.lost,
                "failed": gpu.failed,
                "processes": processes,
                "mig_devices": mig_views,
            }
        )
    return {
        "taken_at": snapshot.taken_at,
        "driver_version": snapshot.driver_version,
        "gpus": gpus,
        "free_devices": free,
    }


_COLUMNS = ("DEVICE", "PROFILE", "CLASS", "CONTAINER", "USER", "PID", "MEMORY", "PROGRAM")


def _rows_for(device: str, profile: str, processes: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    if not processes:
        return [(device, profile, "free", "", "", "", "", "")]
    rows: list[tuple[str, ...]] = []
    for p in processes:
        klass = _SHORT_CLASS.get(p["class"], p["class"])
        if p["outside_config"]:
            klass += " (outside its devices)"
        memory = f"{p['used_memory_mib']} MiB" if p["used_memory_mib"] is not None else "n/a"
        rows.append(
            (
                device,
                profile,
                klass,
                p["container"] or (p["container_id"] or "-"),
                p["user"] or "?",
                str(p["pid"]),
                memory,
                p["program"] or "",
            )
        )
        device, profile = "", ""
    return rows


def render_table(view: dict[str, Any], notes: Iterable[str] = ()) -> str:
    """The admin's table, then the free devices and any notes (one line each)."""
    rows: list[tuple[str, ...]] = [_COLUMNS]
    for gpu in view["gpus"]:
        name = f"GPU {gpu['index']}"
        if gpu["lost"]:
            rows.append((name, "", "LOST (until reset or reboot)", "", "", "", "", ""))
            continue
        if gpu["failed"]:
            rows.append((name, "", f"unknown: {gpu['failed']}", "", "", "", "", ""))
            continue
        if gpu["mig_mode"]:
            count = len(gpu["mig_devices"])
            label = (
                f"MIG mode, {count} device{'s' if count != 1 else ''}"
                if count
                else ("MIG mode, no MIG devices")
            )
            rows.append((name, "", label, "", "", "", "", ""))
            rows.extend(_rows_for("", "", gpu["processes"]) if gpu["processes"] else [])
            for mig in gpu["mig_devices"]:
                device = f"  {gpu['index']}:{mig['mig_index']}"
                rows.extend(_rows_for(device, mig["profile"] or "", mig["processes"]))
            continue
        rows.extend(_rows_for(name, gpu["name"] or "", gpu["processes"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    free = view["free_devices"]
    lines.append(f"free: {', '.join(free)}" if free else "free: none")
    lines.extend(notes)
    return "\n".join(lines) + "\n"
