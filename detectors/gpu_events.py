"""The audit events GPU polling writes, built from debounce outcomes. Pure.

Detail keys are listed in ds01_events.catalogue; every event naming a device carries
gpu_index, gpu_uuid, mig_uuid and mig_profile (None off MIG).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ds01_events.envelope import Event, InvalidEvent
from ds01_events.envelope import make_event as _make_event

if TYPE_CHECKING:
    from detectors.classify import ClassifiedProcess
    from detectors.debounce import Outcome, Tracked
    from detectors.snapshot import Gpu

SOURCE = "ds01-watcher"


def make_event(event_type: str, *, user: str | None = None, **kwargs: Any) -> Event:
    """make_event, but a user name the envelope refuses (from a label) is left out."""
    try:
        return _make_event(event_type, user=user, **kwargs)
    except InvalidEvent:
        return _make_event(event_type, **kwargs)


def _device(process: ClassifiedProcess) -> dict[str, Any]:
    return {
        "gpu_index": process.gpu_index,
        "gpu_uuid": process.gpu_uuid,
        "mig_uuid": process.mig_uuid,
        "mig_profile": process.mig_profile,
    }


def host_process_details(process: ClassifiedProcess) -> dict[str, Any]:
    """Details of detection.host_gpu_process (and, with ran_s, of its exit)."""
    return {
        "user": process.user,
        "uid": process.uid,
        "attributed_by": process.attributed_by,
        "pid": process.pid,
        "command": process.command,
        **_device(process),
        "used_memory_mib": process.used_memory_mib,
    }


def container_details(process: ClassifiedProcess) -> dict[str, Any]:
    """Details of detection.unmanaged_container and detection.gpu_mismatch."""
    return {
        "container": process.container,
        "container_id": process.container_id,
        "image": process.image,
        "user": process.user,
        "attributed_by": process.attributed_by,
        "class": process.klass,
        **_device(process),
        "pid": process.pid,
        "used_memory_mib": process.used_memory_mib,
        "gpu_devices": list(process.configured),
    }


def appeared_event(tracked: Tracked, *, timestamp: str | None = None) -> Event:
    """The event for a subject reported now."""
    process = tracked.process
    if tracked.kind == "host":
        event_type, details = "detection.host_gpu_process", host_process_details(process)
    elif tracked.kind == "unmanaged":
        event_type = "detection.unmanaged_container"
        details = {**container_details(process), "seen": True}
    else:
        event_type, details = "detection.gpu_mismatch", container_details(process)
    return make_event(
        event_type, user=process.user, source=SOURCE, details=details, timestamp=timestamp
    )


def exited_event(tracked: Tracked, *, timestamp: str | None = None) -> Event:
    """detection.host_gpu_process_exited for a host process no longer on its device."""
    details = {**host_process_details(tracked.process), "ran_s": tracked.ran_s}
    return make_event(
        "detection.host_gpu_process_exited",
        user=tracked.process.user,
        source=SOURCE,
        details=details,
        timestamp=timestamp,
    )


def gpu_lost_event(gpu: Gpu, *, timestamp: str | None = None) -> Event:
    """detection.gpu_lost: NVML answered GPU_IS_LOST; gone until reboot."""
    return make_event(
        "detection.gpu_lost",
        source=SOURCE,
        details={"gpu_index": gpu.index, "gpu_uuid": gpu.uuid, "gpu_name": gpu.name},
        timestamp=timestamp,
    )


def nvml_unresponsive_event(timeout_s: float, *, timestamp: str | None = None) -> Event:
    """monitoring.nvml_unresponsive: a poll did not return within its deadline."""
    return make_event(
        "monitoring.nvml_unresponsive",
        source=SOURCE,
        details={
            "timeout_s": timeout_s,
            "action": "left running; no new poll starts until it returns",
        },
        timestamp=timestamp,
    )


def outcome_events(outcome: Outcome, *, timestamp: str | None = None) -> list[Event]:
    """Every event one debounce step asks for, lost GPUs first."""
    return [
        *(gpu_lost_event(gpu, timestamp=timestamp) for gpu in outcome.lost),
        *(exited_event(t, timestamp=timestamp) for t in outcome.exited),
        *(appeared_event(t, timestamp=timestamp) for t in outcome.appeared),
    ]
