"""What `ds01-watcher install` does, as a plain list of steps (pure: no I/O here).

Each step says what it puts where; `watcher.install.command` checks each against the host
(already so: "unchanged"), applies it or, under --dry-run, only prints it. The files
the steps write name the places they are written to: under ``--prefix DIR`` the
units' ExecStart names DIR/opt/ds01/venv, because a virtual environment cannot be
moved once made (its scripts name their interpreter by full path).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

VENV = "/opt/ds01/venv"
COMMANDS = ("ds01-watcher", "ds01-events", "ds01-log")
ENABLE_UNITS = ("ds01-watcher.socket", "ds01-watcher.service")
COMPAT_LIB = "/opt/ds01-infra/scripts/lib"
INSTALLED_EXEC = "/usr/local/bin/ds01-watcher"
DOCKER_EXEC = "/usr/bin/docker"
TMPFILES = (
    "# /run/ds01 holds the ingest socket (the socket unit also makes it).\n"
    "d /run/ds01 0755 root root -\n"
)


@dataclass(frozen=True)
class Layout:
    """Every path install touches, under ``root`` ("/" on a host, DIR under --prefix)."""

    root: str = "/"

    def at(self, path: str) -> str:
        """Return ``path`` (absolute) under the root."""
        return os.path.join(self.root, path.lstrip("/")) if self.root != "/" else path

    @property
    def venv(self) -> str:
        """The virtual environment the project is installed into."""
        return self.at(VENV)

    @property
    def manifest(self) -> str:
        """What install added, read by uninstall."""
        return self.at("/var/lib/ds01/install-manifest.json")

    @property
    def log_dir(self) -> str:
        """The audit log's directory (kept by uninstall)."""
        return self.at("/var/log/ds01")

    @property
    def events_file(self) -> str:
        """The audit log."""
        return self.at("/var/log/ds01/events.jsonl")


@dataclass(frozen=True)
class MakeDir:
    """A directory with its mode and owner (an existing one is brought to them)."""

    path: str
    mode: int
    owner: str = "root"
    group: str = "root"
    keep_on_uninstall: bool = False

    def describe(self) -> str:
        """One line for the admin."""
        return f"directory {self.path} ({self.mode:04o} {self.owner}:{self.group})"


@dataclass(frozen=True)
class WriteFile:
    """A file with exactly this content and mode, owned by root."""

    path: str
    content: bytes
    mode: int = 0o644
    # An existing file that is not ours is renamed to path + BACKUP_SUFFIX first.
    backup_foreign: bool = False

    def describe(self) -> str:
        """One line for the admin."""
        return f"file {self.path} ({self.mode:04o}, {len(self.content)} bytes)"

    @property
    def digest(self) -> str:
        """sha256 of the content, kept in the manifest."""
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Link:
    """A symbolic link ``path`` -> ``target``."""

    path: str
    target: str
    backup_foreign: bool = False

    def describe(self) -> str:
        """One line for the admin."""
        return f"link {self.path} -> {self.target}"


@dataclass(frozen=True)
class MakeVenv:
    """A virtual environment made from ``python`` (the distribution's interpreter)."""

    path: str
    python: str

    def describe(self) -> str:
        """One line for the admin."""
        return f"virtual environment {self.path} (from {self.python})"


@dataclass(frozen=True)
class PipInstall:
    """The project installed (not editable) into the venv from a checkout or a wheel."""

    venv: str
    source: str
    fingerprint: str

    def describe(self) -> str:
        """One line for the admin."""
        return f"install {self.source} into {self.venv} (pip, not editable)"


@dataclass(frozen=True)
class Systemctl:
    """A systemctl call, run only on a host where systemd runs."""

    args: tuple[str, ...]
    # daemon-reload runs only when one of these files changed in this run.
    when_changed: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the admin."""
        return "systemctl " + " ".join(self.args)


@dataclass(frozen=True)
class ApplySettings:
    """A command that puts a changed file into effect (sysctl -p); a failure only warns."""

    args: tuple[str, ...]
    when_changed: tuple[str, ...]

    def describe(self) -> str:
        """One line for the admin."""
        return " ".join(self.args)


Step = MakeDir | WriteFile | Link | MakeVenv | PipInstall | Systemctl | ApplySettings
BACKUP_SUFFIX = ".pre-ds01"


@dataclass(frozen=True)
class Bundle:
    """What the source holds: unit, logrotate, sysctl texts and the docs, by name."""

    units: dict[str, bytes]
    logrotate: bytes
    sysctl: bytes
    docs: dict[str, bytes]


@dataclass(frozen=True)
class Choices:
    """How to install: root, interpreter, source, group, compat, whether systemd runs."""

    layout: Layout
    python: str
    source: str
    fingerprint: str
    log_group: str = "adm"
    compat: bool = False
    systemd: bool = False
    docker: str = DOCKER_EXEC
    site_packages: str = ""


def rewrite_unit(text: bytes, venv: str, docker: str) -> bytes:
    """Point ExecStart at the venv's command and the docker calls at this host's client."""
    out = text.replace(INSTALLED_EXEC.encode(), f"{venv}/bin/ds01-watcher".encode())
    if docker != DOCKER_EXEC:
        out = out.replace(DOCKER_EXEC.encode(), docker.encode())
    return out


def compat_shim(venv: str, site_packages: str) -> bytes:
    """The ``ds01_events.py`` placed where the old scripts import it from (see the template)."""
    from watcher.install.compat import shim_text  # noqa: PLC0415 - keeps the template apart

    return shim_text(venv, site_packages).encode()


def plan_install(choices: Choices, bundle: Bundle) -> list[Step]:
    """Return every step of an install, in order."""
    lay = choices.layout
    venv = lay.venv
    steps: list[Step] = [
        MakeDir(lay.at("/opt/ds01"), 0o755),
        MakeVenv(venv, choices.python),
        PipInstall(venv, choices.source, choices.fingerprint),
        MakeDir(lay.at("/usr/local/bin"), 0o755),
    ]
    steps += [Link(lay.at(f"/usr/local/bin/{name}"), f"{venv}/bin/{name}") for name in COMMANDS]
    unit_dir = lay.at("/etc/systemd/system")
    steps.append(MakeDir(unit_dir, 0o755))
    unit_paths = []
    for name, text in sorted(choices_units(bundle).items()):
        path = f"{unit_dir}/{name}"
        unit_paths.append(path)
        steps.append(WriteFile(path, rewrite_unit(text, venv, choices.docker)))
    steps += [
        MakeDir(lay.at("/etc/logrotate.d"), 0o755),
        WriteFile(lay.at("/etc/logrotate.d/ds01"), bundle.logrotate),
        MakeDir(lay.at("/etc/sysctl.d"), 0o755),
        WriteFile(lay.at("/etc/sysctl.d/60-ds01-watcher.conf"), bundle.sysctl),
        MakeDir(lay.at("/etc/tmpfiles.d"), 0o755),
        WriteFile(lay.at("/etc/tmpfiles.d/ds01-watcher.conf"), TMPFILES.encode()),
        MakeDir(lay.at("/usr/share/doc/ds01"), 0o755),
    ]
    steps += [
        WriteFile(lay.at(f"/usr/share/doc/ds01/{name}"), text)
        for name, text in sorted(bundle.docs.items())
    ]
    steps += [
        MakeDir(lay.at("/var/log/ds01"), 0o750, "root", choices.log_group, keep_on_uninstall=True),
        # 0755: the workload inventory in it is read by dashboards as any user; the
        # state files beside it (cursor, GPU detections) are 0600 each.
        MakeDir(lay.at("/var/lib/ds01"), 0o755),
        MakeDir(lay.at("/var/spool/ds01"), 0o755),
        MakeDir(lay.at("/var/spool/ds01/events"), 0o1733),
    ]
    if lay.root == "/":
        # /run is a tmpfs: nothing to stage under a root; tmpfiles.d remakes it at boot.
        steps.append(MakeDir("/run/ds01", 0o755))
        sysctl = "/etc/sysctl.d/60-ds01-watcher.conf"
        steps.append(ApplySettings(("sysctl", "-q", "-p", sysctl), (sysctl,)))
    if choices.compat:
        steps += plan_compat(choices)
    if choices.systemd and lay.root == "/":
        steps += [
            Systemctl(("daemon-reload",), when_changed=tuple(unit_paths)),
            Systemctl(("enable", "--now", *ENABLE_UNITS)),
        ]
    return steps


def choices_units(bundle: Bundle) -> dict[str, bytes]:
    """The unit files to install (services and sockets)."""
    return {n: t for n, t in bundle.units.items() if n.endswith((".service", ".socket"))}


def plan_compat(choices: Choices) -> list[Step]:
    """The old system's paths, pointing at ours: the Bash library and ``ds01_events.py``."""
    lay = choices.layout
    lib = lay.at(COMPAT_LIB)
    site = choices.site_packages
    return [
        MakeDir(lay.at("/opt/ds01-infra"), 0o755),
        MakeDir(lay.at("/opt/ds01-infra/scripts"), 0o755),
        MakeDir(lib, 0o755),
        Link(f"{lib}/ds01_events.sh", f"{site}/ds01_events/ds01_events.sh", backup_foreign=True),
        WriteFile(
            f"{lib}/ds01_events.py",
            compat_shim(lay.venv, site),
            0o755,
            backup_foreign=True,
        ),
    ]


def refusals(facts: HostFacts) -> list[str]:
    """What on the host would break the install, each one line saying what to do."""
    problems: list[str] = []
    if not facts.root_user and not facts.prefixed:
        problems.append("install needs root: run it with sudo, or give --prefix DIR to stage it")
    if facts.python_problem:
        problems.append(facts.python_problem)
    if not facts.group_exists:
        problems.append(
            f"the log group {facts.log_group!r} does not exist: create it (groupadd"
            f" {facts.log_group}) or set log_group in /etc/ds01/watcher.toml"
        )
    if facts.log_dir_mode is not None and facts.log_dir_mode & 0o002:
        problems.append(
            f"{facts.log_dir} is writable by others (mode {facts.log_dir_mode & 0o7777:04o}):"
            f" anyone could replace the audit log; run chmod o-w {facts.log_dir}"
        )
    if facts.events_file_owner is not None and facts.events_file_owner != 0:
        problems.append(
            f"{facts.events_file} belongs to uid {facts.events_file_owner}, not root: its owner"
            f" could rewrite the trail; check it, then chown root:{facts.log_group} it"
        )
    if facts.events_file_not_regular:
        problems.append(
            f"{facts.events_file} is not a regular file: move it away and run install again"
        )
    problems += [
        f"{path} exists and is not ours: remove it (pip uninstall ds01-events, if pip put it"
        " there) and run install again"
        for path in facts.foreign_commands
    ]
    return problems


@dataclass(frozen=True)
class HostFacts:
    """What `refusals` looks at, gathered by `watcher.install.gather_facts`."""

    prefixed: bool
    root_user: bool
    log_group: str
    group_exists: bool
    log_dir: str
    log_dir_mode: int | None
    events_file: str
    events_file_owner: int | None
    events_file_not_regular: bool = False
    foreign_commands: tuple[str, ...] = ()
    python_problem: str = ""
