"""The event catalogue: every known event type, what it means and its detail keys.

Names that existing reports depend on are kept. Types outside the catalogue are
still accepted (a script may add its own ``maintenance.*`` action); `ds01-events
types` and `ds01-events verify` show which types are documented.

Two detail keys may appear on any event a client sent (one with ``origin``): the
watcher writes its own ``timestamp`` and keeps the client's in
``client_timestamp`` when it differs (for a spooled event, the spool file's
time), and replaces an ``id`` already in the log, keeping the client's in
``client_id``. Clients cannot set either. Types whose category is watcher,
container, detection, monitoring or ingest, ``resource.oom_kill`` and the source
``ds01-watcher`` are refused from clients: only the watcher writes them.
"""

from __future__ import annotations

import msgspec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class EventType(msgspec.Struct, frozen=True):
    """One catalogue entry: what the event means and its detail keys."""

    description: str
    details: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[str]:
        """The detail keys: the old module's EVENT_TYPES mapped each type to a list of them."""
        return iter(self.details)


_CONTAINER = ("container", "container_id", "image", "attributed_by", "inferred")
# Once NVML is known, gpu.* also name the resolved devices: ``devices`` (each with
# gpu_index, gpu_uuid, mig_uuid, mig_profile), and those four flat for one device.
_DEVICE = ("gpu_index", "gpu_uuid", "mig_uuid", "mig_profile")
_GPU = (
    "container",
    "container_id",
    "gpu_devices",
    "attributed_by",
    "inferred",
    "devices",
    *_DEVICE,
)
_HOST_GPU = ("user", "uid", "attributed_by", "pid", "command", *_DEVICE, "used_memory_mib")
_SEEN = (
    "container",
    "container_id",
    "image",
    "user",
    "attributed_by",
    "class",
    *_DEVICE,
    "pid",
    "used_memory_mib",
    "gpu_devices",
)

EVENT_TYPES: dict[str, EventType] = {
    "container.create": EventType(
        "A container was created (any path: wrapper, API, compose).",
        (*_CONTAINER, "container_type", "managed", "interface", "gpu_devices"),
    ),
    "container.start": EventType("A container started.", _CONTAINER),
    "container.stop": EventType(
        "A container's main process ended; exit code and OOM state come from inspect,"
        " signal is the number of the last kill signal, ran_s how long it ran (seconds).",
        (*_CONTAINER, "exit_code", "oom", "signal", "reason", "ran_s"),
    ),
    "container.start_failed": EventType(
        "A docker start failed (a missing command, a bad mount): the container never ran;"
        " exit_code and dockerd's error say why.",
        (*_CONTAINER, "exit_code", "error"),
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
        "A container without the managed marker uses GPUs: seen computing on a GPU or MIG"
        " device by GPU polling (seen: true, with the device and pid; once per container and"
        " device while it runs), or, while NVML is not known, holding GPU devices by its"
        " configuration at start (seen: false). Each container is flagged once.",
        (*_SEEN, "seen", "inferred"),
    ),
    "detection.gpu_mismatch": EventType(
        "A container was seen computing on a GPU or MIG device its configuration does not"
        " give it (gpu_devices: what it was given).",
        _SEEN,
    ),
    "detection.host_gpu_process": EventType(
        "A process uses a GPU straight from the host, outside any container (LOG-03).",
        _HOST_GPU,
    ),
    "detection.host_gpu_process_exited": EventType(
        "A host GPU process reported earlier is no longer on its device; ran_s: how long"
        " the polls saw it run.",
        (*_HOST_GPU, "ran_s"),
    ),
    "detection.gpu_lost": EventType(
        "NVML answered GPU_IS_LOST for a GPU: gone until a reset or reboot (once per boot).",
        ("gpu_index", "gpu_uuid", "gpu_name"),
    ),
    "monitoring.nvml_unresponsive": EventType(
        "An NVML poll did not return within its deadline; it is left running and no other"
        " starts until it returns (once per stuck poll).",
        ("timeout_s", "action"),
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
    "watcher.start": EventType("The watcher started.", ("version", "pid", "settings")),
    "watcher.stop": EventType("The watcher stopped.", ("version", "reason")),
    "watcher.gap": EventType(
        "A window the watcher could not observe; events in it may be missing. Reasons:"
        " the sink's queue was full (dropped), a Docker replay could not cover a"
        " reconnect, or 'unclean stop': the previous run ended without watcher.stop"
        " (since: its last line on disk, until: this start).",
        ("since", "until", "reason", "dropped", "previous_pid", "previous_start", "note"),
    ),
    "watcher.stall": EventType(
        "The process or one of its loops (main, sink, ingest) did not run for longer than"
        " stall_report_seconds (SIGSTOP, a frozen machine, a hung disk); logged when it"
        " ends, once per stretch.",
        ("component", "seconds", "since", "until", "reason"),
    ),
    "ingest.rejected": EventType(
        "Datagrams and spool lines refused in one window, counted per reason (oversize,"
        " binary, invalid, too_deep, reserved_type, reserved_source, rate_limited,"
        " no_credentials, and for spool files symlink, not_regular, hardlink,"
        " writable_by_others, unreadable, too_many_lines) and per sender uid.",
        ("window_seconds", "counts", "uids"),
    ),
    "ingest.quarantined": EventType(
        "A spool entry the watcher would not read (see ingest.rejected reasons) was moved"
        " to the quarantine directory beside the spool; reported once, with its owner.",
        ("name", "reason", "uid", "size", "moved_to"),
    ),
}
