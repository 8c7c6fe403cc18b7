"""The workload inventory existing dashboards and tools read: shape, build, atomic write.

``/var/lib/ds01/workload-inventory.json`` (the path is a setting)::

    {"last_scan": "<UTC ISO, Z>",
     "containers": {"<12-char id>": {"id", "name", "origin", "user", "has_gpu",
                                     "gpu_devices", "status", "image", "detected_at"}},
     "host_processes": {"<pid>": {"pid", "user", "cmdline", "gpu_memory_mb",
                                  "gpu_uuid", "detected_at"}}}

``origin`` is ``ds01-managed``, ``devcontainer``, ``compose`` or ``raw-docker``; host
processes are those reported (seen in two polls), infrastructure left out. The file
is world-readable (0644) as those tools expect, so ``cmdline`` holds the program name
only: full command lines stay in the 0640 event log. ``detected_at`` survives
rewrites (and watcher restarts: the previous file is read back).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from detectors.atomic_file import replace_file

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping
    from pathlib import Path

    from detectors.classify import ClassifiedProcess, ContainerFacts

INVENTORY_MODE = 0o644
MAX_INVENTORY_BYTES = 16 << 20


def utc_iso(when: float) -> str:
    """Unix time as the inventory writes it: UTC, microseconds, ``Z``."""
    seconds = int(when)
    micros = round((when - seconds) * 1_000_000)
    if micros >= 1_000_000:  # noqa: PLR2004
        seconds, micros = seconds + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def origin_of(*, managed: bool, label_keys: Collection[str], name: str) -> str:
    """How a container was made, in the existing tools' words. Pure.

    The managed marker first, then devcontainer labels, then compose, then the VS Code
    ``vsc-`` name prefix, else ``raw-docker``.
    """
    if managed:
        return "ds01-managed"
    if any(key.startswith("devcontainer.") for key in label_keys):
        return "devcontainer"
    if "com.docker.compose.project" in label_keys:
        return "compose"
    if name.lstrip("/").startswith("vsc-"):
        return "devcontainer"
    return "raw-docker"


def build_inventory(
    now: float,
    containers: Iterable[ContainerFacts],
    host_processes: Iterable[ClassifiedProcess],
    *,
    computing: Collection[str] = (),
    previous: Mapping[str, Any] | None = None,
    containers_complete: bool = True,
) -> dict[str, Any]:
    """The inventory as plain data. Pure, never raises.

    ``computing`` holds the full ids of containers seen on a GPU (``has_gpu`` even
    without a GPU configuration). ``previous`` is the last inventory written, for
    ``detected_at``. ``containers_complete`` False (the Docker side has not listed
    everything yet, as just after a start) keeps the previous containers and only
    updates the ones given.
    """
    stamp = utc_iso(now)
    before = previous or {}
    old_containers = _section(before, "containers")
    old_processes = _section(before, "host_processes")
    seen_on_gpu = {cid[:12] for cid in computing}
    result_containers: dict[str, Any] = {} if containers_complete else dict(old_containers)
    for facts in containers:
        short = facts.id[:12]
        result_containers[short] = {
            "id": short,
            "name": facts.name,
            "origin": facts.origin,
            "user": facts.user or "unknown",
            "has_gpu": bool(facts.gpu_devices) or short in seen_on_gpu,
            "gpu_devices": list(facts.gpu_devices),
            "status": facts.status,
            "image": facts.image or "unknown",
            "detected_at": _kept(old_containers.get(short), stamp),
        }
    result_processes: dict[str, Any] = {}
    for process in host_processes:
        key = str(process.pid)
        entry = result_processes.get(key)
        if entry is not None:  # one process on several devices: one entry, memory summed
            if process.used_memory_mib is not None:
                entry["gpu_memory_mb"] = (entry["gpu_memory_mb"] or 0) + process.used_memory_mib
            continue
        result_processes[key] = {
            "pid": process.pid,
            "user": process.user or "unknown",
            "cmdline": process.program or "",
            "gpu_memory_mb": process.used_memory_mib,
            "gpu_uuid": process.gpu_uuid,
            "detected_at": _kept(old_processes.get(key), stamp),
        }
    return {"last_scan": stamp, "containers": result_containers, "host_processes": result_processes}


def _section(inventory: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = inventory.get(name)
    return value if isinstance(value, dict) else {}


def _kept(old: object, stamp: str) -> str:
    if isinstance(old, dict) and isinstance(old.get("detected_at"), str):
        return str(old["detected_at"])
    return stamp


def write_inventory(path: Path, inventory: Mapping[str, Any]) -> None:
    """Replace the inventory file atomically (temporary file, fsync, rename), 0644.

    Raises OSError.
    """
    data = json.dumps(inventory, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    replace_file(path, data.encode(), mode=INVENTORY_MODE)


def read_inventory(path: Path) -> dict[str, Any] | None:
    """The inventory last written, or None (missing, unreadable, not an inventory)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INVENTORY_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_INVENTORY_BYTES:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
