"""What /proc says about a process NVML listed: container, real uid, command, start time.

Every reader takes a ``proc=`` root (as prometheus client_python does), so it is tested
against canned trees and against the real /proc. Reads are bounded. A process that
vanished between NVML and /proc is "gone" (`read_process` returns None), never an
error: NVML can list a PID that has already died, so /proc decides.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import msgspec

PROC = "/proc"
MAX_CGROUP_BYTES = 64 * 1024
MAX_CMDLINE_BYTES = 4096
MAX_STATUS_BYTES = 16 * 1024
MAX_STAT_BYTES = 4096
# A command line is kept to this many characters in events (the envelope is 4 KiB).
MAX_COMMAND_CHARS = 512
MAX_PROGRAM_CHARS = 255

_ID = r"[0-9a-f]{64}"
# One path component naming a container's scope: docker (v2/systemd, rootless),
# containerd (Kubernetes), CRI-O, podman. ``crio-conmon-`` / ``libpod-conmon-`` are
# the monitors beside the container, not the container itself, and do not match.
_SCOPE = re.compile(rf"^(docker|cri-containerd|crio|libpod)-({_ID})\.scope$")
_BARE_ID = re.compile(rf"^{_ID}$")
# The parents under which a bare 64-hex component is a container (cgroupfs drivers).
_BARE_PARENTS = {"docker": "docker", "libpod_parent": "libpod", "crio": "crio"}
_ROOTLESS = re.compile(r"^user@(\d+)\.service$")
_RUNTIMES = {"docker": "docker", "cri-containerd": "containerd", "crio": "crio", "libpod": "podman"}


class CgroupContainer(NamedTuple):
    """The container a cgroup path names: its id, its runtime and, if rootless, the uid."""

    container_id: str
    runtime: str
    rootless_uid: int | None


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One live process as /proc shows it; ``None`` where a file could not be read."""

    pid: int
    # Clock ticks after boot (field 22 of stat): with the pid, the process's identity.
    starttime: int
    comm: str
    uid: int | None = None
    command: str = ""
    program: str = ""
    container_id: str | None = None
    runtime: str | None = None
    rootless_uid: int | None = None


def container_from_cgroup(text: str) -> CgroupContainer | None:
    """The container named by the contents of /proc/<pid>/cgroup, or None. Pure, never raises.

    Shapes: cgroup v1 ``/docker/<id>``; v2/systemd ``/system.slice/docker-<id>.scope``;
    rootless ``/user.slice/user-<uid>.slice/user@<uid>.service/.../docker-<id>.scope``;
    ``cri-containerd-<id>.scope``, ``crio-<id>.scope``, ``libpod-<id>.scope`` (podman may
    add a ``/container`` child). The unified (``0::``) line is preferred, then any other.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    lines.sort(key=lambda line: not line.startswith("0::"))
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:  # noqa: PLR2004 - hierarchy:controllers:path
            continue
        found = _from_path(parts[2])
        if found is not None:
            return found
    return None


def _from_path(path: str) -> CgroupContainer | None:
    components = [c for c in path.strip().split("/") if c]
    rootless: int | None = None
    for component in components:
        match = _ROOTLESS.match(component)
        if match:
            rootless = int(match.group(1))
    for position in range(len(components) - 1, -1, -1):
        component = components[position]
        match = _SCOPE.match(component)
        if match:
            return CgroupContainer(match.group(2), _RUNTIMES[match.group(1)], rootless)
        parent = components[position - 1] if position else ""
        if _BARE_ID.match(component) and parent in _BARE_PARENTS:
            return CgroupContainer(component, _BARE_PARENTS[parent], rootless)
    return None


def parse_stat(text: str) -> tuple[str, int] | None:
    """(comm, starttime) from /proc/<pid>/stat, or None. Pure, never raises.

    The comm is between the first ``(`` and the LAST ``)``: a command may contain ``)``
    (and spaces), so the numeric fields are the ones after the last ``)``.
    """
    start = text.find("(")
    end = text.rfind(")")
    if start < 0 or end < start:
        return None
    fields = text[end + 1 :].split()
    # After the comm come state (field 3) ... starttime (field 22): index 19 here.
    if len(fields) < 20 or not fields[19].isdigit():  # noqa: PLR2004
        return None
    return text[start + 1 : end], int(fields[19])


def parse_real_uid(text: str) -> int | None:
    """The real uid (first number of the ``Uid:`` line) of /proc/<pid>/status. Pure."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            values = line[4:].split()
            if values and values[0].isdigit():
                return int(values[0])
            return None
    return None


def parse_cmdline(raw: bytes, comm: str) -> tuple[str, str]:
    """(command line, program name) from /proc/<pid>/cmdline. Pure, never raises.

    NUL-separated arguments become one line joined by spaces, cut to
    `MAX_COMMAND_CHARS`. The program is the basename of argv[0]; a kernel thread or a
    process that emptied its arguments falls back to ``[comm]`` and ``comm``.
    """
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not args:
        return f"[{comm}]", comm
    command = " ".join(args)
    if len(command) > MAX_COMMAND_CHARS:
        command = command[: MAX_COMMAND_CHARS - 1] + "…"
    program = (args[0].rsplit("/", 1)[-1] or comm)[:MAX_PROGRAM_CHARS]
    return command, program


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _optional(path: Path, limit: int) -> bytes | None:
    """The file's first ``limit`` bytes; None when it cannot be read (hidepid, EACCES)."""
    try:
        return _read(path, limit)
    except (PermissionError, IsADirectoryError):
        return None


def read_process(pid: int, proc: str = PROC) -> ProcessInfo | None:
    """What /proc says about ``pid``; None when the process is gone. Never raises.

    Gone: no such directory, or it vanished while being read (ENOENT, ESRCH), or its
    stat cannot be parsed. Any other unreadable file leaves that field unknown.
    """
    if pid <= 0:
        return None
    base = Path(proc) / str(pid)
    try:
        stat = parse_stat(_read(base / "stat", MAX_STAT_BYTES).decode("utf-8", "replace"))
        if stat is None:
            return None
        comm, starttime = stat
        status = _optional(base / "status", MAX_STATUS_BYTES)
        cmdline = _optional(base / "cmdline", MAX_CMDLINE_BYTES)
        cgroup = _optional(base / "cgroup", MAX_CGROUP_BYTES)
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError:
        return None
    command, program = parse_cmdline(cmdline or b"", comm)
    container = container_from_cgroup(cgroup.decode("utf-8", "replace")) if cgroup else None
    return ProcessInfo(
        pid=pid,
        starttime=starttime,
        comm=comm,
        uid=parse_real_uid(status.decode("utf-8", "replace")) if status else None,
        command=command,
        program=program,
        container_id=container.container_id if container else None,
        runtime=container.runtime if container else None,
        rootless_uid=container.rootless_uid if container else None,
    )


def container_id(pid: int, proc: str = PROC) -> str | None:
    """The id of the container ``pid`` runs in; None for a host process or a gone one."""
    info = read_process(pid, proc)
    return info.container_id if info is not None else None


def real_uid(pid: int, proc: str = PROC) -> int | None:
    """The real uid of ``pid`` (from status); None when gone or unreadable."""
    info = read_process(pid, proc)
    return info.uid if info is not None else None


def starttime(pid: int, proc: str = PROC) -> int | None:
    """The start time of ``pid`` in clock ticks after boot; None when gone."""
    info = read_process(pid, proc)
    return info.starttime if info is not None else None


def command_line(pid: int, proc: str = PROC) -> str | None:
    """The command line of ``pid`` (arguments joined by spaces, bounded); None when gone."""
    info = read_process(pid, proc)
    return info.command if info is not None else None


def read_processes(pids: list[int], proc: str = PROC) -> dict[int, ProcessInfo | None]:
    """`read_process` for each pid (None: gone). Never raises."""
    return {pid: read_process(pid, proc) for pid in dict.fromkeys(pids)}


def boot_time(proc: str = PROC) -> float | None:
    """Unix time of the last boot (``btime`` of /proc/stat), or None."""
    try:
        text = _read(Path(proc) / "stat", 1 << 20).decode("ascii", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("btime "):
            value = line.split()[1]
            return float(value) if value.isdigit() else None
    return None


def boot_id(proc: str = PROC) -> str | None:
    """The random id of the current boot, so "GPU lost" state ends at reboot; or None."""
    try:
        return _read(Path(proc) / "sys/kernel/random/boot_id", 64).decode().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def clock_ticks() -> int:
    """Clock ticks per second, the unit of stat's starttime."""
    try:
        return int(os.sysconf("SC_CLK_TCK")) or 100
    except (ValueError, OSError):
        return 100


def started_at(starttime: int, btime: float | None, ticks: int) -> float | None:
    """Unix time a process started, from its stat starttime; None without the boot time."""
    if btime is None:
        return None
    return btime + starttime / ticks
