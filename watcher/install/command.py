"""``ds01-watcher install`` and ``uninstall``: put the service on a Debian host, or take it off.

The steps come from `watcher.install.plan`; `watcher.install.apply` compares each with
the host and changes only what differs, so a second run changes nothing and says so.
What install added is listed in /var/lib/ds01/install-manifest.json; uninstall removes
exactly that, keeps the logs, and puts back what --compat had moved aside.
"""

from __future__ import annotations

import grp
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.install.apply import STAMP, Applier, InstallError
from watcher.install.manifest import read_manifest, write_manifest
from watcher.install.plan import (
    COMMANDS,
    ENABLE_UNITS,
    Bundle,
    Choices,
    HostFacts,
    Layout,
    PipInstall,
    Step,
    Systemctl,
    plan_install,
    refusals,
)
from watcher.sdnotify import systemd_running

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

SYSTEM_PYTHON = "/usr/bin/python3"
_TREE = ("pyproject.toml", "README.md", "lib", "watcher", "detectors", "bin", "deploy", "docs")


class Source:
    """Where the project and its deploy files come from: a checkout, a wheel or ourselves."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.kind = "installed" if path is None else ("wheel" if path.is_file() else "checkout")
        self._zip = zipfile.ZipFile(path) if self.kind == "wheel" and path else None

    def read(self, rel: str) -> bytes:
        """A deploy file by its name in the wheel's ds01_deploy, e.g. systemd/x.service."""
        if self._zip is not None:
            return self._zip.read(f"ds01_deploy/{rel}")
        if self.path is not None:
            base = self.path if rel.startswith("docs/") else self.path / "deploy"
            return (base / rel).read_bytes()
        return (resources.files("ds01_deploy") / rel).read_bytes()

    def names(self, rel: str) -> list[str]:
        """The files in one deploy folder."""
        if self._zip is not None:
            prefix = f"ds01_deploy/{rel}/"
            return sorted(
                n[len(prefix) :]
                for n in self._zip.namelist()
                if n.startswith(prefix) and "/" not in n[len(prefix) :]
            )
        if self.path is not None:
            folder = self.path / "docs" if rel == "docs" else self.path / "deploy" / rel
            return sorted(p.name for p in folder.iterdir() if p.is_file())
        packaged = resources.files("ds01_deploy") / rel
        return sorted(p.name for p in packaged.iterdir() if p.is_file() and p.name != "__init__.py")

    def bundle(self) -> Bundle:
        """Everything install writes besides the venv."""
        return Bundle(
            units={n: self.read(f"systemd/{n}") for n in self.names("systemd")},
            logrotate=self.read("logrotate/ds01"),
            sysctl=self.read("sysctl.d/60-ds01-watcher.conf"),
            docs={
                **{n: self.read(f"docs/{n}") for n in self.names("docs") if n.endswith(".md")},
                # The alert rules, for the admin to copy into Prometheus's rule_files.
                **{
                    n: self.read(f"prometheus/{n}")
                    for n in self.names("prometheus")
                    if n.endswith(".rules.yml")
                },
            },
        )

    def fingerprint(self) -> str:
        """Changes whenever what pip would install changes."""
        digest = hashlib.sha256()
        if self.path is None:
            from watcher import __version__  # noqa: PLC0415

            return f"installed-{__version__}"
        if self.kind == "wheel":
            digest.update(self.path.read_bytes())
            return digest.hexdigest()
        for top in _TREE:
            for path in sorted(_files(self.path / top)):
                digest.update(str(path.relative_to(self.path)).encode() + b"\0")
                digest.update(path.read_bytes())
        return digest.hexdigest()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return [
        p
        for p in path.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not p.name.endswith((".pyc", ".egg-info"))
        and not any(part.endswith(".egg-info") for part in p.parts)
    ]


def find_source(given: str | None, layout: Layout) -> Source:
    """The --from argument, else the checkout this code runs from, else the installed venv."""
    if given:
        path = Path(given).resolve()
        if path.is_file() and path.suffix == ".whl":
            return Source(path)
        if (path / "pyproject.toml").is_file() and (path / "deploy" / "systemd").is_dir():
            return Source(path)
        msg = f"--from {given}: give a ds01-events wheel (.whl) or a checkout"
        raise InstallError(msg)
    checkout = Path(__file__).resolve().parents[2]  # watcher/install/command.py
    if (checkout / "pyproject.toml").is_file() and (checkout / "deploy" / "systemd").is_dir():
        return Source(checkout)
    if Path(sys.prefix).resolve() == Path(layout.venv).resolve():
        return Source(None)
    msg = "not run from a checkout: give --from the wheel or the checkout"
    raise InstallError(msg)


def gather_facts(layout: Layout, log_group: str, python: str) -> HostFacts:
    """Look at the host for what would break the install (read only)."""
    try:
        grp.getgrnam(log_group)
        group_exists = True
    except KeyError:
        group_exists = False
    try:
        log_mode: int | None = os.lstat(layout.log_dir).st_mode
    except OSError:
        log_mode = None
    try:
        info = os.lstat(layout.events_file)
        owner: int | None = info.st_uid
        not_regular = not stat.S_ISREG(info.st_mode)
    except OSError:
        owner, not_regular = None, False
    foreign = tuple(
        path
        for path in (layout.at(f"/usr/local/bin/{name}") for name in COMMANDS)
        if os.path.lexists(path) and not os.path.islink(path)
    )
    return HostFacts(
        prefixed=layout.root != "/",
        root_user=os.geteuid() == 0,
        log_group=log_group,
        group_exists=group_exists,
        log_dir=layout.log_dir,
        log_dir_mode=log_mode,
        events_file=layout.events_file,
        events_file_owner=owner,
        events_file_not_regular=not_regular,
        foreign_commands=foreign,
        python_problem=_python_problem(python),
    )


def _python_problem(python: str) -> str:
    try:
        result = subprocess.run(
            [python, "-c", "import ensurepip, venv, sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return f"{python} cannot be run: install python3 (apt-get install python3 python3-venv)"
    if result.returncode != 0:
        return f"{python} has no venv module: apt-get install python3-venv"
    return ""


def python_version(python: str) -> str:
    """``3.11`` for the interpreter the venv is made from."""
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def _plan(args: argparse.Namespace, layout: Layout, source: Source) -> tuple[Choices, list[Step]]:
    """The choices this host and these flags make, and the steps that follow from them."""
    version = python_version(args.python)
    choices = Choices(
        layout=layout,
        python=args.python,
        source=str(source.path or layout.venv),
        fingerprint=source.fingerprint(),
        log_group=args.log_group,
        compat=args.compat,
        systemd=systemd_running(),
        docker=shutil.which("docker") or "/usr/bin/docker",
        site_packages=f"{layout.venv}/lib/python{version}/site-packages",
    )
    steps = plan_install(choices, source.bundle())
    if source.kind == "installed":  # run from the venv itself: nothing for pip to do
        steps = [s for s in steps if not isinstance(s, PipInstall)]
    if choices.systemd and layout.root == "/":
        # New code or units: restart a running service so that it runs them.
        stamp = f"{layout.venv}/{STAMP}"
        units = tuple(f"/etc/systemd/system/{u}" for u in ENABLE_UNITS)
        steps.append(Systemctl(("try-restart", "ds01-watcher.service"), (*units, stamp)))
    return choices, steps


def install(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """Run (or, with --dry-run, show) every install step; exit 0, or 1 with one line why."""
    layout = Layout(os.path.abspath(args.prefix) if args.prefix else "/")
    applier: Applier | None = None
    try:
        facts = gather_facts(layout, args.log_group, args.python)
        problems = refusals(facts)
        if problems:
            for problem in problems:
                _err(f"ds01-watcher install: refused: {problem}")
            return 1
        source = find_source(args.source, layout)
        choices, steps = _plan(args, layout, source)
        manifest = read_manifest(layout)
        applier = Applier(
            dry_run=args.dry_run,
            as_root=os.geteuid() == 0,
            previous=manifest.get("entries", {}),
        )
        changes = 0
        for step in steps:
            outcome = applier.run(step)
            changes += outcome != "ok"
            out(f"  {outcome:<12} {step.describe()}")
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        _err(f"ds01-watcher install: failed: {exc}; fix that and run install again")
        if applier is not None and not args.dry_run and applier.record:
            # What was done so far, so that uninstall can take it off again.
            write_manifest(layout, {**manifest, "entries": {**applier.previous, **applier.record}})
        return 1
    new_manifest = {
        "format": 1,
        "root": layout.root,
        "venv": layout.venv,
        "enabled": list(ENABLE_UNITS) if choices.systemd and layout.root == "/" else [],
        # Entries of earlier runs stay (parents made then, files a newer version no
        # longer writes): uninstall still has to take them off.
        "entries": {**applier.previous, **applier.record},
    }
    if args.dry_run:
        out(
            f"ds01-watcher install: dry run, {changes} of {len(steps)} steps would change"
            " something; nothing was written"
        )
        return 0
    if new_manifest != manifest:
        write_manifest(layout, new_manifest)
    if changes == 0:
        out("ds01-watcher install: nothing to change, everything is already installed")
    else:
        command = f"{layout.venv}/bin/ds01-watcher"
        out(f"ds01-watcher install: {changes} changes; the service runs {command}")
    if not (choices.systemd and layout.root == "/"):
        out("ds01-watcher install: systemd not running here (or --prefix): units not enabled")
    return 0


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def add_parsers(commands: Any) -> None:
    """Add ``install`` and ``uninstall`` to the ds01-watcher command line."""
    inst = commands.add_parser(
        "install", help="install the service: venv, commands, units, logrotate, directories"
    )
    inst.add_argument("--prefix", help="install under this root (tests, staging) instead of /")
    inst.add_argument("--dry-run", action="store_true", help="print every step, write nothing")
    inst.add_argument(
        "--compat",
        action="store_true",
        help="also put ours at the old scripts' paths (/opt/ds01-infra/scripts/lib)",
    )
    inst.add_argument(
        "--from", dest="source", help="a wheel or checkout to install (default: this checkout)"
    )
    inst.add_argument(
        "--python", default=SYSTEM_PYTHON, help=f"the venv's interpreter (default {SYSTEM_PYTHON})"
    )
    inst.add_argument("--log-group", default=None, help="the log's group (default: log_group, adm)")
    inst.set_defaults(handler=_run_install)
    uninst = commands.add_parser("uninstall", help="remove what install added; keep the logs")
    uninst.add_argument("--prefix", help="the root install used")
    uninst.set_defaults(handler=_run_uninstall)


def _run_install(args: argparse.Namespace) -> int:
    if args.log_group is None:
        args.log_group = _configured_group(args.prefix)
    return install(args)


def _configured_group(prefix: str | None) -> str:
    """DS01_LOG_GROUP, else log_group from the settings file under the root (as the watcher).

    Read with tomllib alone: install runs on the bare system python3, before the venv
    (and msgspec) exist.
    """
    import tomllib  # noqa: PLC0415

    if os.environ.get("DS01_LOG_GROUP"):  # as for the watcher: the variable beats the file
        return os.environ["DS01_LOG_GROUP"]
    config = Layout(os.path.abspath(prefix) if prefix else "/").at("/etc/ds01/watcher.toml")
    try:
        with open(config, "rb") as handle:
            group = tomllib.load(handle).get("log_group", "adm")
    except (OSError, tomllib.TOMLDecodeError):
        return "adm"
    return group if isinstance(group, str) and group else "adm"


def _run_uninstall(args: argparse.Namespace) -> int:
    from watcher.install.uninstall import uninstall  # noqa: PLC0415

    return uninstall(Layout(os.path.abspath(args.prefix) if args.prefix else "/"))
