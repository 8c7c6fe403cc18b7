"""The GPU and MIG devices a container holds, from its inspect data. Pure.

Sources, all merged in this order with duplicates dropped:
``HostConfig.DeviceRequests`` (``DeviceIDs``; ``Count: -1`` means all GPUs, a
positive count without IDs is kept as ``count:N``), ``NVIDIA_VISIBLE_DEVICES`` and
``CUDA_VISIBLE_DEVICES`` in ``Config.Env`` (UUIDs, ``MIG-...``, indices or ``all``;
``void``/``none``/empty mean none), and the labels ``ds01.gpu.uuids``,
``ds01.gpu.uuid``, ``ds01.gpu.allocated`` and ``ds01.gpu_slot``, and last
``HostConfig.Devices`` entries mapping a GPU's device node ``/dev/nvidiaN`` (existing
tooling on these servers passes GPUs that way; ``/dev/nvidiactl``, ``-uvm`` and
``-caps`` name no GPU). Identifiers are kept exactly as given.
``HostConfig.Runtime == "nvidia"`` alone is not a GPU signal: it is the default
runtime on GPU servers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_ENV_KEYS = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
_LABEL_KEYS = ("ds01.gpu.uuids", "ds01.gpu.uuid", "ds01.gpu.allocated", "ds01.gpu_slot")
_NONE = frozenset({"", "void", "none", "no", "false"})
_GPU_NODE = re.compile(r"^/dev/nvidia\d{1,4}$")


def _split(value: str) -> list[str]:
    items = [part.strip() for part in value.split(",")]
    return [item for item in items if item and item.lower() not in _NONE]


def _is_gpu_request(request: Mapping[str, Any]) -> bool:
    if (request.get("Driver") or "").lower() == "nvidia":
        return True
    return any("gpu" in (group or []) for group in request.get("Capabilities") or [])


def _from_device_requests(requests: Iterable[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    for request in requests:
        if not isinstance(request, dict) or not _is_gpu_request(request):
            continue
        ids = [str(device) for device in request.get("DeviceIDs") or [] if str(device)]
        count = request.get("Count") or 0
        if ids:
            found.extend(ids)
        elif count == -1:
            found.append("all")
        elif isinstance(count, int) and count > 0:
            found.append(f"count:{count}")
    return found


def _from_env(env: Iterable[str]) -> list[str]:
    values: dict[str, str] = {}
    for entry in env:
        key, sep, value = str(entry).partition("=")
        if sep and key in _ENV_KEYS:
            values[key] = value  # a later duplicate wins, as in the process environment
    found: list[str] = []
    for key in _ENV_KEYS:
        found.extend(_split(values.get(key, "")))
    return found


def _from_labels(labels: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    for key in _LABEL_KEYS:
        found.extend(_split(str(labels.get(key) or "")))
    return found


def _from_device_nodes(devices: Iterable[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    for device in devices:
        if not isinstance(device, dict):
            continue
        path = str(device.get("PathOnHost") or "")
        if _GPU_NODE.match(path):
            found.append(path)
    return found


def gpu_devices(inspect: Mapping[str, Any]) -> list[str]:
    """GPU/MIG device identifiers the container holds, in source order, de-duplicated.

    Never raises on missing or oddly typed fields: unknown shapes count as no devices.
    """
    config = inspect.get("Config") or {}
    host_config = inspect.get("HostConfig") or {}
    found = [
        *_from_device_requests(host_config.get("DeviceRequests") or []),
        *_from_env(config.get("Env") or []),
        *_from_labels(config.get("Labels") or {}),
        *_from_device_nodes(host_config.get("Devices") or []),
    ]
    return list(dict.fromkeys(found))
