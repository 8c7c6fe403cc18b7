"""The checks `ds01-watcher doctor` makes, as pure functions over gathered facts.

Each takes the facts `watcher.doctor.gather` collected and returns a `Check`: ok,
warn (worth knowing, no action needed now), fail (needs action: doctor exits 1) or
skip (does not apply here), with one line saying what was found and, unless it is
ok, one line saying what to do.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "fail", "skip"]

DISK_FAIL_BYTES = 256 * 1024 * 1024
DISK_FAIL_FRACTION = 0.02
DISK_WARN_FRACTION = 0.10
SPOOL_WARN_FILES = 100
SPOOL_FAIL_AGE_SECONDS = 300.0
QUIET_WARN_SECONDS = 3600.0
GAP_RECENT_SECONDS = 86_400.0


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    summary: str
    fix: str = ""


@dataclass(frozen=True)
class PathFacts:
    """lstat of one path, or None when it is missing."""

    path: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    group: str | None = None
    denied: bool = False  # this user may not look (the log's directory is 0750)


@dataclass(frozen=True)
class Facts:
    """Everything the checks look at; None where a fact could not be gathered."""

    docker_host: str
    docker_error: str | None  # None: answered /_ping
    docker_permission: bool = False
    gpu_setting: str = "auto"
    nvml: str | None = None  # "ok:N", "missing:...", "error:...", "hung"
    events_dir: PathFacts = field(default_factory=lambda: PathFacts(""))
    events_file: PathFacts = field(default_factory=lambda: PathFacts(""))
    socket_path: str = ""
    socket_state: str = "missing"  # "accepting", "missing", "not-a-socket", "refused", "error:..."
    spool_dir: str = ""
    spool_files: int | None = None
    spool_oldest_age: float | None = None
    quarantined: int = 0
    disk_free: int | None = None
    disk_total: int | None = None
    logrotate_config: str = ""
    logrotate: str | None = None  # None: not installed; "" ok; else the error text
    logrotate_shipped: str | None = None  # the same, for the shipped file, when not installed
    dcgm_url: str | None = None
    dcgm: str | None = None  # None: not probed; "ok", else what went wrong
    gpus: int = 0  # as NVML counts them
    systemd: bool = False
    units: dict[str, str] = field(default_factory=dict)
    newest_age: float | None = None
    newest_type: str = ""
    last_gap_age: float | None = None
    last_gap_details: str = ""


def check_docker(f: Facts) -> Check:
    """Docker answers; a permission error on its socket is named as such."""
    if f.docker_error is None:
        return Check("docker", "ok", f"the Docker engine answers at {f.docker_host}")
    if f.docker_permission:
        return Check(
            "docker",
            "fail",
            f"permission denied on the Docker socket ({f.docker_host})",
            "run doctor as root (the watcher runs as root), or add this user to the docker group",
        )
    return Check(
        "docker",
        "fail",
        f"no Docker engine at {f.docker_host}: {f.docker_error}",
        "start it (systemctl start docker) or set docker_host in /etc/ds01/watcher.toml",
    )


def check_nvml(f: Facts) -> Check:
    """NVML initialises in a child process within the bound (a hung driver is a failure)."""
    if f.gpu_setting == "off":
        return Check("nvml", "skip", "GPU polling is off (gpu = off)")
    state = f.nvml or "error:not checked"
    if state.startswith("ok:"):
        return Check("nvml", "ok", f"NVML answers: {state[3:]} GPU(s)")
    if state.startswith("missing:"):
        return Check(
            "nvml",
            "warn",
            f"no NVIDIA driver here ({state[8:]}): GPU processes are not watched",
            "on a GPU server install the driver; elsewhere set gpu = off",
        )
    if state == "hung":
        return Check(
            "nvml",
            "fail",
            "NVML did not answer in time: the driver may be stuck",
            "check nvidia-smi and dmesg; a reboot may be needed",
        )
    return Check("nvml", "fail", f"NVML fails: {state.removeprefix('error:')}", "check nvidia-smi")


def _writable_by_others(p: PathFacts) -> bool:
    return p.mode is not None and bool(p.mode & 0o002)


def check_events_file(f: Facts) -> Check:  # noqa: PLR0911 - one return per finding
    """The log and its directory belong to root and nobody else may write them."""
    d, e = f.events_dir, f.events_file
    if e.denied or d.denied:
        return Check(
            "events file",
            "warn",
            f"{e.path} cannot be examined by this user (permission denied)",
            "run doctor as root, or as a member of the log's group",
        )
    if d.mode is None:
        return Check("events file", "fail", f"{d.path} does not exist", "run ds01-watcher install")
    for p in (d, e):
        if _writable_by_others(p):
            return Check(
                "events file",
                "fail",
                f"{p.path} is writable by others (mode {stat.S_IMODE(p.mode or 0):04o}):"
                " anyone could rewrite the trail",
                f"chmod o-w {p.path}",
            )
        if p.uid not in (None, 0):
            return Check(
                "events file",
                "fail",
                f"{p.path} belongs to uid {p.uid}, not root",
                f"check it, then chown root {p.path}",
            )
    if e.mode is None:
        return Check(
            "events file",
            "warn",
            f"{e.path} does not exist yet",
            "start the watcher: it creates the file (systemctl start ds01-watcher)",
        )
    if not stat.S_ISREG(e.mode):
        return Check(
            "events file", "fail", f"{e.path} is not a regular file", "move it away; restart"
        )
    mode = stat.S_IMODE(e.mode)
    return Check("events file", "ok", f"{e.path} {mode:04o} root:{e.group or e.gid}")


def check_socket(f: Facts) -> Check:
    """The ingest socket exists and someone is bound to it."""
    if f.socket_state == "accepting":
        return Check("socket", "ok", f"{f.socket_path} accepts datagrams")
    why = {
        "missing": f"{f.socket_path} is missing: scripts fall back to the file or the spool",
        "not-a-socket": f"{f.socket_path} is not a socket",
        "refused": f"{f.socket_path} exists but nothing is bound to it (stale)",
    }.get(f.socket_state, f"{f.socket_path}: {f.socket_state.removeprefix('error:')}")
    return Check(
        "socket",
        "fail",
        why,
        "systemctl restart ds01-watcher.socket ds01-watcher.service",
    )


def check_spool(f: Facts) -> Check:
    """The spool drains (no old backlog) and nothing is quarantined."""
    if f.spool_files is None:
        return Check(
            "spool",
            "warn",
            f"{f.spool_dir} cannot be read or does not exist",
            "run ds01-watcher install",
        )
    if f.spool_oldest_age is not None and f.spool_oldest_age > SPOOL_FAIL_AGE_SECONDS:
        return Check(
            "spool",
            "fail",
            f"{f.spool_files} event(s) waiting in {f.spool_dir}, the oldest for"
            f" {f.spool_oldest_age / 60:.0f} min: the watcher is not draining it",
            "systemctl restart ds01-watcher; see journalctl -u ds01-watcher",
        )
    if f.quarantined:
        return Check(
            "spool",
            "warn",
            f"{f.quarantined} spool file(s) set aside in quarantine",
            f"inspect them in {f.spool_dir.rstrip('/')}.quarantine (who sent them), then"
            " delete them",
        )
    if f.spool_files > SPOOL_WARN_FILES:
        return Check("spool", "warn", f"{f.spool_files} event(s) waiting in {f.spool_dir}")
    return Check("spool", "ok", f"{f.spool_files} event(s) waiting, none quarantined")


def check_disk(f: Facts) -> Check:
    """Room for the log: fail under 2% or 256 MiB free, warn under 10%."""
    if f.disk_free is None or not f.disk_total:
        return Check("disk", "skip", "the log's filesystem could not be measured")
    fraction = f.disk_free / f.disk_total
    text = f"{f.disk_free / 2**20:.0f} MiB free of {f.disk_total / 2**20:.0f} MiB ({fraction:.0%})"
    where = f.events_dir.path
    if f.disk_free < DISK_FAIL_BYTES or fraction < DISK_FAIL_FRACTION:
        return Check(
            "disk",
            "fail",
            f"{where}: {text}: events will be lost",
            "free space (old rotated logs: ds01-events reads .gz too; move them elsewhere)",
        )
    if fraction < DISK_WARN_FRACTION:
        return Check("disk", "warn", f"{where}: {text}", "free space before it runs out")
    return Check("disk", "ok", f"{where}: {text}")


def check_logrotate(f: Facts) -> Check:
    """Logrotate -d accepts the config."""
    if f.logrotate is None:
        shipped = "" if f.logrotate_shipped == "" else " (and the shipped one does not check)"
        return Check(
            "logrotate",
            "warn" if f.logrotate_shipped == "" else "fail",
            f"{f.logrotate_config} is not installed{shipped}: nothing rotates the log",
            "run ds01-watcher install",
        )
    if f.logrotate:
        return Check(
            "logrotate",
            "fail",
            f"logrotate -d {f.logrotate_config}: {f.logrotate}",
            "fix the file, or run ds01-watcher install to put the shipped one back",
        )
    return Check("logrotate", "ok", f"logrotate -d accepts {f.logrotate_config}")


def check_dcgm(f: Facts) -> Check:
    """The exporter answers /metrics with DCGM series (needed only where NVML sees GPUs)."""
    if f.dcgm_url is None or f.dcgm is None:
        return Check("dcgm exporter", "skip", "no exporter configured (dcgm_url = off)")
    if f.dcgm == "ok":
        return Check("dcgm exporter", "ok", f"{f.dcgm_url} answers with DCGM series")
    if f.gpus == 0:
        return Check(
            "dcgm exporter", "skip", f"{f.dcgm_url}: {f.dcgm}; no GPUs here, so none is needed"
        )
    return Check(
        "dcgm exporter",
        "fail",
        f"{f.dcgm_url}: {f.dcgm}",
        "systemctl restart ds01-dcgm-exporter; journalctl -u ds01-dcgm-exporter",
    )


def check_units(f: Facts) -> Check:
    """The socket and the service are active (where systemd runs)."""
    if not f.systemd:
        return Check("units", "skip", "systemd is not running here")
    down = {u: s for u, s in f.units.items() if s != "active"}
    if down:
        listed = ", ".join(f"{u} {s}" for u, s in sorted(down.items()))
        return Check(
            "units",
            "fail",
            listed,
            "systemctl enable --now ds01-watcher.socket ds01-watcher.service",
        )
    return Check("units", "ok", ", ".join(sorted(f.units)) + " active")


def check_newest_event(f: Facts) -> Check:
    """The log has a recent line (the watcher writes at least its own start)."""
    if f.newest_age is None:
        return Check("newest event", "warn", "no event in the log yet")
    age = f.newest_age
    text = f"the newest event ({f.newest_type}) is {_age(age)} old"
    if age > QUIET_WARN_SECONDS:
        return Check(
            "newest event",
            "warn",
            text,
            "a quiet server is fine; otherwise check that the watcher runs",
        )
    return Check("newest event", "ok", text)


def check_last_gap(f: Facts) -> Check:
    """The last watcher.gap: a window the trail could not observe."""
    if f.last_gap_age is None:
        return Check("last gap", "ok", "no watcher.gap in the recent log")
    text = f"watcher.gap {_age(f.last_gap_age)} ago: {f.last_gap_details}"
    if f.last_gap_age < GAP_RECENT_SECONDS:
        return Check(
            "last gap",
            "warn",
            text,
            "ds01-events --type watcher.gap shows its bounds; events in it may be missing",
        )
    return Check("last gap", "ok", text)


def _age(seconds: float) -> str:
    if seconds < 120:  # noqa: PLR2004
        return f"{seconds:.0f} s"
    if seconds < 7200:  # noqa: PLR2004
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


CHECKS = (
    check_docker,
    check_nvml,
    check_events_file,
    check_socket,
    check_spool,
    check_disk,
    check_logrotate,
    check_dcgm,
    check_units,
    check_newest_event,
    check_last_gap,
)


def run_checks(facts: Facts) -> list[Check]:
    """Every check, in report order."""
    return [check(facts) for check in CHECKS]
