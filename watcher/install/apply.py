"""Carrying out install steps: compare each with the host, then change only what differs.

`Applier.run(step)` returns "ok" (already so), "changed" or, under dry-run, "would
change"; nothing is written in dry-run. What it created or replaced is collected in
`Applier.record` for the manifest that uninstall reads.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.install.plan import (
    BACKUP_SUFFIX,
    ApplySettings,
    Link,
    MakeDir,
    MakeVenv,
    PipInstall,
    Step,
    Systemctl,
    WriteFile,
)

STAMP = ".ds01-installed"
PIP_TIMEOUT = 900


class InstallError(RuntimeError):
    """A step failed; the message says which and why."""


@dataclass
class Applier:
    """Applies steps one by one; ``dry_run`` only looks."""

    dry_run: bool = False
    as_root: bool = True
    # Paths written in this run (daemon-reload and restart look at these).
    changed: set[str] = field(default_factory=set)
    record: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    say: Any = print

    def run(self, step: Step) -> str:
        """Bring the host to what ``step`` says; return ok / changed / would change."""
        handlers = {
            MakeDir: self._dir,
            WriteFile: self._file,
            Link: self._link,
            MakeVenv: self._venv,
            PipInstall: self._pip,
            Systemctl: self._systemctl,
            ApplySettings: self._apply_settings,
        }
        done: bool = handlers[type(step)](step)  # type: ignore[operator]
        if done:
            return "ok"
        # Also in a dry run, so that it shows the daemon-reload a changed unit would need.
        if isinstance(step, PipInstall):
            self.changed.add(f"{step.venv}/{STAMP}")
        elif isinstance(step, MakeDir | WriteFile | Link | MakeVenv):
            self.changed.add(step.path)
        return "would change" if self.dry_run else "changed"

    # -- each kind: return True when nothing needed doing ----------------------

    def _ids(self, owner: str, group: str) -> tuple[int, int]:
        try:
            return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
        except KeyError as exc:
            raise InstallError(f"no such user or group: {owner}:{group}") from exc

    def _dir(self, step: MakeDir) -> bool:
        uid, gid = self._ids(step.owner, step.group)
        try:
            info = os.lstat(step.path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise InstallError(f"{step.path} exists and is not a directory: move it away")
        mode_ok = info is not None and stat.S_IMODE(info.st_mode) == step.mode
        owner_ok = info is not None and (
            not self.as_root or (info.st_uid, info.st_gid) == (uid, gid)
        )
        created = self.previous.get(step.path, {}).get("created", False) or info is None
        self.record[step.path] = {
            "kind": "dir",
            "created": created,
            "keep": step.keep_on_uninstall,
        }
        if mode_ok and owner_ok:
            return True
        if self.dry_run:
            return False
        if info is None:
            self._parents(os.path.dirname(step.path))
            os.mkdir(step.path, 0o700)
        if self.as_root:
            os.chown(step.path, uid, gid)
        os.chmod(step.path, step.mode)  # after chown, which clears the sticky/setgid bits
        self.changed.add(step.path)
        return False

    def _parents(self, path: str) -> None:
        """Make missing parents 0755 (under --prefix); uninstall removes them when empty."""
        if os.path.isdir(path):
            return
        self._parents(os.path.dirname(path))
        os.mkdir(path, 0o755)
        self.record[path] = {"kind": "dir", "created": True, "keep": False}

    def _backup(self, path: str, ours: bool) -> None:
        """Keep a file that is not ours (the old system's) as path.pre-ds01."""
        if ours or not os.path.lexists(path):
            return
        backup = path + BACKUP_SUFFIX
        if not os.path.lexists(backup):
            os.rename(path, backup)
            self.record[path + "#backup"] = {"kind": "backup", "path": path, "backup": backup}

    def _file(self, step: WriteFile) -> bool:
        self.record[step.path] = {"kind": "file", "sha256": step.digest}
        previous_backup = self.previous.get(step.path + "#backup")
        if previous_backup:
            self.record[step.path + "#backup"] = previous_backup
        try:
            info = os.lstat(step.path)
            same = (
                stat.S_ISREG(info.st_mode)
                and stat.S_IMODE(info.st_mode) == step.mode
                and Path(step.path).read_bytes() == step.content
            )
        except FileNotFoundError:
            same = False
        if same:
            return True
        if self.dry_run:
            return False
        ours = step.path in self.previous or not step.backup_foreign
        self._backup(step.path, ours)
        tmp = f"{step.path}.ds01-tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, step.content)
            os.fchmod(fd, step.mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, step.path)
        self.changed.add(step.path)
        return False

    def _link(self, step: Link) -> bool:
        self.record[step.path] = {"kind": "link", "target": step.target}
        previous_backup = self.previous.get(step.path + "#backup")
        if previous_backup:
            self.record[step.path + "#backup"] = previous_backup
        if os.path.islink(step.path) and os.readlink(step.path) == step.target:
            return True
        if self.dry_run:
            return False
        ours = step.path in self.previous or not step.backup_foreign
        self._backup(step.path, ours)
        if os.path.islink(step.path):
            os.unlink(step.path)
        os.symlink(step.target, step.path)
        self.changed.add(step.path)
        return False

    def _venv(self, step: MakeVenv) -> bool:
        self.record[step.path] = {"kind": "venv"}
        cfg = Path(step.path) / "pyvenv.cfg"
        home = str(Path(step.python).parent)
        try:
            made_from = [
                line.split("=", 1)[1].strip()
                for line in cfg.read_text().splitlines()
                if line.startswith("home")
            ]
        except OSError:
            made_from = []
        if made_from == [home] and os.access(f"{step.path}/bin/python", os.X_OK):
            return True
        if self.dry_run:
            return False
        if os.path.lexists(step.path):
            ours = step.path in self.previous or os.path.exists(f"{step.path}/{STAMP}")
            if not ours:
                msg = f"{step.path} exists and was not made by install: move it away"
                raise InstallError(msg)
            shutil.rmtree(step.path)  # made from another interpreter: make it anew
        _call([step.python, "-m", "venv", step.path], f"making the venv {step.path}")
        self.changed.add(step.path)
        return False

    def _pip(self, step: PipInstall) -> bool:
        stamp = Path(step.venv) / STAMP
        try:
            current = stamp.read_text().strip()
        except OSError:
            current = ""
        if current == step.fingerprint:
            return True
        if self.dry_run:
            return False
        pip = [f"{step.venv}/bin/python", "-m", "pip", "install", "--no-input", "-q"]
        _call([*pip, step.source], f"pip install {step.source}")
        if current:
            # An upgrade with an unchanged version number: pip would keep the old files.
            _call([*pip, "--force-reinstall", "--no-deps", step.source], "pip reinstall")
        stamp.write_text(step.fingerprint + "\n")
        self.changed.add(str(stamp))
        return False

    def _systemctl(self, step: Systemctl) -> bool:
        if step.args[0] in ("daemon-reload", "try-restart"):
            if not self.changed.intersection(step.when_changed):
                return True
        elif step.args[:2] == ("enable", "--now"):
            units = list(step.args[2:])
            enabled = _quiet(["systemctl", "is-enabled", "--quiet", *units])
            active = _quiet(["systemctl", "is-active", "--quiet", *units])
            if enabled and active:
                return True
        if self.dry_run:
            return False
        _call(["systemctl", *step.args], f"systemctl {' '.join(step.args)}")
        return False

    def _apply_settings(self, step: ApplySettings) -> bool:
        if not self.changed.intersection(step.when_changed):
            return True
        if self.dry_run:
            return False
        # sysctl lives in /usr/sbin, which is not on every PATH.
        found = shutil.which(step.args[0]) or shutil.which(step.args[0], path="/usr/sbin:/sbin")
        try:
            _call([found or step.args[0], *step.args[1:]], " ".join(step.args))
        except InstallError as exc:  # e.g. a container whose /proc/sys is read-only
            self.say(f"  warning      {exc}; it applies at the next boot")
        return False


def _quiet(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _call(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what} failed: {exc}") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise InstallError(f"{what} failed (exit {result.returncode}): {' / '.join(tail)}")
