"""Who each GPU process is: managed or unmanaged container, host process, infrastructure, gone.

Pure: the snapshot, what /proc said per pid and what the watcher knows about
containers come in as plain data. Each result says which rule matched (``rule``) and
how its user was found (``attributed_by``), like the watcher's container attribution.

Rules, first match wins:

1. no /proc entry: ``gone`` (NVML can list a PID that has already died)
2. a process in a container (from its cgroup):
   a. container labelled infrastructure: ``infrastructure`` (``infrastructure_label``)
   b. an infrastructure program: ``infrastructure`` (``infrastructure_program``)
   c. container with the managed marker: ``managed_container`` (``managed_label``)
   d. any other container known to Docker: ``unmanaged_container`` (``no_managed_label``)
   e. a container Docker does not know (rootless, another runtime, engine away):
      ``unmanaged_container`` (``unknown_container``). A cgroup under a user's
      ``user@<uid>.service`` is never matched to the system daemon's containers: the
      user names those cgroups, and could otherwise pass a host process off as
      someone's managed container.
3. a host process: an infrastructure program is ``infrastructure``
   (``infrastructure_program``), anything else a ``host_process`` (``host``).

Container processes run as root: their user is the container's attribution, never the
uid. A host process's user is its real uid's account (``attributed_by: uid``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec
from msgspec.structs import replace

from detectors.devices import DeviceMap, ResolvedDevice, allows, resolve

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from detectors.procfs import ProcessInfo
    from detectors.snapshot import GpuProcess, NvmlSnapshot

ProcessClass = Literal[
    "managed_container", "unmanaged_container", "host_process", "infrastructure", "gone"
]
# Programs that hold GPUs for the platform itself (the display server too, as the
# existing workload detector had it). comm is cut to 15 characters, so the program
# name (argv[0]) is compared first and comm by prefix.
INFRASTRUCTURE_PROGRAMS = (
    "nvidia-persistenced",
    "nv-hostengine",
    "dcgm-exporter",
    "dcgmi",
    "nvidia-smi",
    "Xorg",
)


class ContainerFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the watcher knows about one container, handed in as plain data."""

    id: str
    name: str
    user: str | None = None
    attributed_by: str | None = None
    managed: bool = False
    infrastructure: bool = False
    gpu_devices: tuple[str, ...] = ()
    image: str | None = None
    origin: str = "raw-docker"
    status: str = "running"
    # Already flagged as unmanaged from its configuration by the Docker side.
    flagged_unmanaged: bool = False


class ClassifiedProcess(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU process with its class, user and device; ``None`` wherever unknown.

    ``outside_config`` is True when a container computes on a device its
    configuration does not give it, None when that cannot be told.
    """

    pid: int
    klass: ProcessClass
    rule: str
    gpu_index: int
    gpu_uuid: str
    starttime: int | None = None
    user: str | None = None
    uid: int | None = None
    attributed_by: str | None = None
    command: str | None = None
    program: str | None = None
    container_id: str | None = None
    container: str | None = None
    image: str | None = None
    configured: tuple[str, ...] = ()
    outside_config: bool | None = None
    mig_uuid: str | None = None
    mig_index: int | None = None
    mig_profile: str | None = None
    used_memory_mib: int | None = None
    kind: str = "compute"


def is_infrastructure_program(program: str, comm: str) -> bool:
    """Whether the program (or its 15-character comm) is GPU infrastructure."""
    return any(
        program == name
        or (comm and name.startswith(comm) and len(comm) >= 15)  # noqa: PLR2004
        or comm == name
        for name in INFRASTRUCTURE_PROGRAMS
    )


def classify(
    snapshot: NvmlSnapshot,
    processes: Mapping[int, ProcessInfo | None],
    containers: Mapping[str, ContainerFacts],
    *,
    user_by_uid: Callable[[int], str | None] | None = None,
) -> list[ClassifiedProcess]:
    """Classify every process of the snapshot, in snapshot order. Never raises.

    ``processes`` maps a pid to /proc's answer (None or missing: gone);
    ``containers`` maps a full container id to its facts.
    """
    devices = DeviceMap(snapshot.gpus, snapshot.mig_devices)
    return [
        _classify_one(process, processes.get(process.pid), containers, devices, user_by_uid)
        for process in snapshot.processes
    ]


def _name_of(uid: int | None, user_by_uid: Callable[[int], str | None] | None) -> str | None:
    if uid is None:
        return None
    name = None
    if user_by_uid is not None:
        try:
            name = user_by_uid(uid)
        except Exception:  # a broken account lookup must not stop classification
            name = None
    return name or str(uid)


def _classify_one(
    process: GpuProcess,
    info: ProcessInfo | None,
    containers: Mapping[str, ContainerFacts],
    devices: DeviceMap,
    user_by_uid: Callable[[int], str | None] | None,
) -> ClassifiedProcess:
    device = devices.process_device(process)
    gone = ClassifiedProcess(
        pid=process.pid,
        klass="gone",
        rule="no_proc",
        gpu_index=device.gpu_index,
        gpu_uuid=device.gpu_uuid,
        mig_uuid=device.mig_uuid,
        mig_index=device.mig_index,
        mig_profile=device.mig_profile,
        used_memory_mib=process.used_memory_mib,
        kind=process.kind,
    )
    if info is None:
        return gone
    seen = replace(
        gone, starttime=info.starttime, uid=info.uid, command=info.command, program=info.program
    )
    infra_program = is_infrastructure_program(info.program, info.comm)
    if info.container_id is None:
        return replace(
            seen,
            klass="infrastructure" if infra_program else "host_process",
            rule="infrastructure_program" if infra_program else "host",
            user=_name_of(info.uid, user_by_uid),
            attributed_by="uid" if info.uid is not None else None,
        )
    # A cgroup under user@<uid>.service belongs to that user's own (rootless) daemon, and
    # its names are the user's to choose: it never stands for a system container.
    facts = containers.get(info.container_id) if info.rootless_uid is None else None
    if facts is None:
        # Not our dockerd's: a rootless daemon's container runs under its owner's uid.
        uid = info.rootless_uid if info.rootless_uid is not None else info.uid
        known_uid = uid is not None and uid != 0
        how = "rootless_uid" if info.rootless_uid is not None else "uid"
        return replace(
            seen,
            klass="infrastructure" if infra_program else "unmanaged_container",
            rule="infrastructure_program" if infra_program else "unknown_container",
            container_id=info.container_id,
            user=_name_of(uid, user_by_uid) if known_uid else None,
            attributed_by=how if known_uid else None,
        )
    seen = replace(
        seen,
        container_id=info.container_id,
        container=facts.name,
        image=facts.image,
        configured=facts.gpu_devices,
        user=facts.user,
        attributed_by=facts.attributed_by,
    )
    if facts.infrastructure or infra_program:
        rule = "infrastructure_label" if facts.infrastructure else "infrastructure_program"
        return replace(seen, klass="infrastructure", rule=rule)
    if facts.managed:
        return replace(
            seen,
            klass="managed_container",
            rule="managed_label",
            outside_config=_outside(facts.gpu_devices, device, devices),
        )
    return replace(
        seen,
        klass="unmanaged_container",
        rule="no_managed_label",
        # Without any GPU configuration it is flagged as unmanaged, not as a mismatch.
        outside_config=_outside(facts.gpu_devices, device, devices) if facts.gpu_devices else None,
    )


def _outside(
    configured: tuple[str, ...], device: ResolvedDevice, devices: DeviceMap
) -> bool | None:
    """True when a container computes outside its configuration; None when unknowable.

    A managed container with no GPU configuration at all is outside it.
    """
    if not configured:
        return True
    verdict = allows(resolve(configured, devices), device)
    return None if verdict is None else not verdict
