"""Container-scoped audit events: the detail keys every one carries, GPU holding, stop reasons.

Shared by the lifecycle mapping (observed events) and reconciliation (inferred ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ds01_events.envelope import Event, make_event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from watcher.docker.known_container import KnownContainer

    # Configured identifiers to resolved devices (dicts of detail keys); None while
    # NVML is not known.
    DeviceResolver = Callable[[Sequence[str]], list[dict[str, Any]] | None]

SOURCE = "ds01-watcher"
_STOP_SIGNALS = frozenset({"15", "SIGTERM", "TERM"})


def signal_number(text: str | None) -> int | None:
    """A kill signal as its number: dockerd sends ``"15"``, a label may say ``SIGTERM``."""
    if text is None:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    import signal  # noqa: PLC0415 - names are rare; numbers are what dockerd sends

    name = text.upper() if text.upper().startswith("SIG") else f"SIG{text.upper()}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


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


def device_details(configured: Sequence[str], resolve: DeviceResolver | None) -> dict[str, Any]:
    """The configured devices as NVML knows them, once it does (else nothing).

    ``devices`` lists each as gpu_index, gpu_uuid, mig_uuid and mig_profile; with
    exactly one device those four keys are also given flat, for simple queries.
    """
    if resolve is None:
        return {}
    try:
        devices = resolve(configured)
    except Exception:  # a broken resolver must not cost the Docker event
        return {}
    if devices is None:
        return {}
    details: dict[str, Any] = {"devices": devices}
    if len(devices) == 1:
        details.update(devices[0])
    return details


def holding_events(
    container_id: str,
    known: KnownContainer,
    *,
    timestamp: str | None,
    inferred: bool = False,
    resolve: DeviceResolver | None = None,
) -> list[Event]:
    """List what a GPU holder's start adds: gpu.allocate, maybe an unmanaged flag.

    While NVML is not known (no GPU polling, no driver, no poll yet) a holder without
    the managed marker is flagged from its configuration, and ``known`` remembers it.
    Once NVML is known, GPU polling flags it when it is seen computing instead (and
    skips one already flagged here), so each container is flagged once.
    """
    if not known.gpu_devices:
        return []
    devices = device_details(known.gpu_devices, resolve)
    events = [
        container_event(
            "gpu.allocate",
            container_id,
            known,
            timestamp=timestamp,
            inferred=inferred,
            gpu_devices=list(known.gpu_devices),
            **devices,
        )
    ]
    if not devices and not known.managed and not known.infrastructure:
        known.unmanaged_flagged = True
        events.append(
            container_event(
                "detection.unmanaged_container",
                container_id,
                known,
                timestamp=timestamp,
                inferred=inferred,
                gpu_devices=list(known.gpu_devices),
                seen=False,
            )
        )
    return events


def release_events(
    container_id: str,
    known: KnownContainer,
    *,
    timestamp: str | None,
    inferred: bool = False,
    resolve: DeviceResolver | None = None,
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
            **device_details(known.gpu_devices, resolve),
        )
    ]


def stop_events(
    container_id: str,
    known: KnownContainer,
    *,
    timestamp: str | None,
    inferred: bool = False,
    resolve: DeviceResolver | None = None,
    held: KnownContainer | None = None,
    **facts: Any,
) -> list[Event]:
    """container.stop with ``facts`` (exit_code, oom, signal, reason, ran_s) and its gpu.release.

    Every stop releases what the run held, so that the log's allocations balance;
    ``held``: the state whose devices the run held, when not ``known`` itself.
    """
    return [
        container_event(
            "container.stop", container_id, known, timestamp=timestamp, inferred=inferred, **facts
        ),
        *release_events(
            container_id, held or known, timestamp=timestamp, inferred=inferred, resolve=resolve
        ),
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
