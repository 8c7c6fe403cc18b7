"""Container-scoped audit events: the detail keys every one carries, GPU holding, stop reasons.

Shared by the lifecycle mapping (observed events) and reconciliation (inferred ones).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ds01_events.envelope import Event, make_event

if TYPE_CHECKING:
    from watcher.docker.known_container import KnownContainer

SOURCE = "ds01-watcher"
_STOP_SIGNALS = frozenset({"15", "SIGTERM", "TERM"})


def timestamp_from_nanos(time_nano: int) -> str:
    """Turn a Docker ``timeNano`` into an envelope timestamp (UTC, microseconds), exactly."""
    seconds, micros = divmod(time_nano // 1000, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def container_event(
    event_type: str,
    container_id: str,
    known: KnownContainer,
    *,
    timestamp: str | None = None,
    inferred: bool = False,
    **extra: Any,
) -> Event:
    """One container-scoped audit event with the common detail keys."""
    details: dict[str, Any] = {
        "container": known.name,
        "container_id": container_id,
        "image": known.image,
        "attributed_by": known.attributed_by,
    }
    details.update(extra)
    if inferred:
        details["inferred"] = True
    return make_event(
        event_type, user=known.user, source=SOURCE, details=details, timestamp=timestamp
    )


def holding_events(
    container_id: str, known: KnownContainer, *, timestamp: str | None, inferred: bool = False
) -> list[Event]:
    """List what a GPU holder's start adds: gpu.allocate, maybe an unmanaged flag."""
    if not known.gpu_devices:
        return []
    events = [
        container_event(
            "gpu.allocate",
            container_id,
            known,
            timestamp=timestamp,
            inferred=inferred,
            gpu_devices=list(known.gpu_devices),
        )
    ]
    if not known.managed and not known.infrastructure:
        events.append(
            container_event(
                "detection.unmanaged_container",
                container_id,
                known,
                timestamp=timestamp,
                inferred=inferred,
                gpu_devices=list(known.gpu_devices),
            )
        )
    return events


def release_events(
    container_id: str, known: KnownContainer, *, timestamp: str | None, inferred: bool = False
) -> list[Event]:
    """gpu.release for a GPU-holding container that stopped."""
    if not known.gpu_devices:
        return []
    return [
        container_event(
            "gpu.release",
            container_id,
            known,
            timestamp=timestamp,
            inferred=inferred,
            gpu_devices=list(known.gpu_devices),
        )
    ]


def stop_reason(
    *, oom: bool, kill_signal: str | None, killed: bool, stop_signal: str | None
) -> str:
    """Classify a stop: exited, oom, stopped (the stop signal came first) or killed."""
    if oom:
        return "oom"
    if not killed:
        return "exited"
    stop_signals = _STOP_SIGNALS | ({stop_signal} if stop_signal else set())
    return "stopped" if kill_signal in stop_signals else "killed"
