"""The event catalogue: every known event type, what it means and its detail keys.

Names that existing reports depend on are kept. Types outside the catalogue are
still accepted (a script may add its own ``maintenance.*`` action); `ds01-events
types` and `ds01-events verify` show which types are documented.
"""

from __future__ import annotations

import msgspec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class EventType(msgspec.Struct, frozen=True):
    """One catalogue entry."""

    description: str
    details: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[str]:
        """The detail keys: the old module's EVENT_TYPES mapped each type to a list of them."""
        return iter(self.details)


_CONTAINER = ("container", "container_id", "image", "attributed_by", "inferred")
_GPU = ("container", "container_id", "gpu_devices", "attributed_by", "inferred")

EVENT_TYPES: dict[str, EventType] = {
    "container.create": EventType(
        "A container was created (any path: wrapper, API, compose).",
        (*_CONTAINER, "container_type", "managed", "interface", "gpu_devices"),
    ),
    "container.start": EventType("A container started.", _CONTAINER),
    "container.stop": EventType(
        "A container's main process ended; exit code and OOM state come from inspect.",
        (*_CONTAINER, "exit_code", "oom", "signal", "reason"),
    ),
    "container.remove": EventType("A container was removed.", _CONTAINER),
    "container.pause": EventType("A container was paused.", _CONTAINER),
    "container.unpause": EventType("A container was unpaused.", _CONTAINER),
    "container.restart": EventType("A container was restarted.", _CONTAINER),
    "container.rename": EventType("A container was renamed.", (*_CONTAINER, "old_name")),
    "resource.oom_kill": EventType(
        "The kernel OOM killer ended a process in a container.", _CONTAINER
    ),
    "gpu.allocate": EventType("A container started holding GPU or MIG devices.", _GPU),
    "gpu.release": EventType("A container holding GPU or MIG devices stopped.", _GPU),
    "gpu.reject": EventType(
        "A GPU request was refused by the allocator.", ("container", "reason", "requested")
    ),
    "auth.denied": EventType(
        "A user was refused an action by a wrapper script.", ("action", "reason")
    ),
    "detection.unmanaged_container": EventType(
        "A container holds GPU devices without the managed marker.",
        (*_CONTAINER, "gpu_devices"),
    ),
    "detection.host_gpu_process": EventType(
        "A process uses a GPU straight from the host (LOG-03).",
        ("pid", "command", "gpu_uuid", "mig_uuid", "used_memory_mib"),
    ),
    "detection.host_gpu_process_exited": EventType(
        "A host GPU process reported earlier has ended.", ("pid", "gpu_uuid", "mig_uuid")
    ),
    "detection.container_discovered": EventType(
        "Reconciliation found a container the event stream did not report.", _CONTAINER
    ),
    "detection.container_exited": EventType(
        "Reconciliation found a container gone that the event stream did not report.",
        _CONTAINER,
    ),
    "maintenance.cleanup": EventType(
        "Maintenance machinery acted on a container (any maintenance.* action).",
        ("container", "action", "reason"),
    ),
    "monitoring.dcgm_restart": EventType(
        "The watcher restarted the DCGM exporter (hung, stale or down), or gave up"
        " (gave_up: true) after its cap of restarts an hour; killed: the graceful stop"
        " failed and it came to SIGKILL.",
        (
            "url",
            "reason",
            "state",
            "attempt",
            "method",
            "took_s",
            "ok",
            "killed",
            "gave_up",
            "error",
        ),
    ),
    "monitoring.scrape_failure": EventType(
        "The DCGM exporter's state changed away from healthy (slow, stale, hung, down);"
        " one event per change, not per probe.",
        ("url", "state", "error", "consecutive"),
    ),
    "monitoring.dcgm_recovered": EventType(
        "The DCGM exporter answers fully and on time again.",
        ("url", "down_s", "state", "restarts"),
    ),
    "watcher.start": EventType("The watcher started.", ("version", "settings")),
    "watcher.stop": EventType("The watcher stopped.", ("version", "reason")),
    "watcher.gap": EventType(
        "A window the watcher could not observe; events in it may be missing.",
        ("since", "until", "reason"),
    ),
    "ingest.rejected": EventType(
        "Datagrams the ingest socket refused in one window, counted per reason.",
        ("window_seconds", "counts", "uids"),
    ),
}
