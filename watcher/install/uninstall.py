"""``ds01-watcher uninstall``: remove what install added (its manifest says what); keep the logs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.install.manifest import read_manifest
from watcher.sdnotify import systemd_running

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.install.plan import Layout


def uninstall(layout: Layout, out: Callable[[str], None] = print) -> int:
    """Undo the install under ``layout``; 0 when done (or nothing was installed)."""
    manifest = read_manifest(layout)
    entries = manifest.get("entries", {})
    if not entries:
        out(f"ds01-watcher uninstall: nothing to remove (no manifest at {layout.manifest})")
        return 0
    if manifest.get("enabled") and layout.root == "/" and systemd_running():
        _systemctl(["disable", "--now", *manifest["enabled"]], out)
    kept = _remove_entries(entries, out)
    _restore_backups(entries, out)
    Path(layout.manifest).unlink(missing_ok=True)
    kept += _remove_dirs(entries, out)
    if layout.root == "/" and systemd_running():
        _systemctl(["daemon-reload"], out)
    for item in kept:
        out(f"  kept         {item}")
    out("ds01-watcher uninstall: done; the event log and its directory are kept")
    return 0


def _remove_entries(entries: dict[str, dict[str, Any]], out: Callable[[str], None]) -> list[str]:
    """Remove the links, files and the venv install made; return what was kept and why."""
    kept: list[str] = []
    for path, entry in sorted(entries.items(), key=lambda item: item[0], reverse=True):
        kind = entry.get("kind")
        if kind == "link" and os.path.islink(path) and os.readlink(path) == entry["target"]:
            os.unlink(path)
            out(f"  removed      link {path}")
        elif kind == "file" and os.path.isfile(path):
            if hashlib.sha256(Path(path).read_bytes()).hexdigest() != entry["sha256"]:
                kept.append(f"{path} (changed since install)")
                continue
            os.unlink(path)
            _remove_bytecode(path)
            out(f"  removed      file {path}")
        elif kind == "venv" and os.path.isdir(path):
            shutil.rmtree(path)
            out(f"  removed      virtual environment {path}")
    return kept


def _remove_bytecode(path: str) -> None:
    """The compat loader's __pycache__ entry, written when a script imported it."""
    if not path.endswith(".py"):
        return
    cache = Path(path).parent / "__pycache__"
    for compiled in cache.glob(Path(path).stem + ".*.pyc"):
        compiled.unlink(missing_ok=True)
    try:
        cache.rmdir()
    except OSError:
        return


def _restore_backups(entries: dict[str, dict[str, Any]], out: Callable[[str], None]) -> None:
    """Put back the old system's files that --compat had moved aside."""
    for entry in entries.values():
        if (
            entry.get("kind") == "backup"
            and os.path.lexists(entry["backup"])
            and not os.path.lexists(entry["path"])
        ):
            os.rename(entry["backup"], entry["path"])
            out(f"  restored     {entry['path']} (the file install had moved aside)")


def _remove_dirs(entries: dict[str, dict[str, Any]], out: Callable[[str], None]) -> list[str]:
    """Remove the directories install created, deepest first, when empty; keep the logs."""
    kept: list[str] = []
    for path in sorted((p for p, e in entries.items() if e.get("kind") == "dir"), reverse=True):
        entry = entries[path]
        if not entry.get("created") or not os.path.isdir(path):
            continue
        if entry.get("keep"):
            kept.append(f"{path} (the logs)")
            continue
        try:
            os.rmdir(path)
            out(f"  removed      directory {path}")
        except OSError:
            kept.append(f"{path} (not empty)")
    return kept


def _systemctl(args: list[str], out: Callable[[str], None]) -> None:
    try:
        subprocess.run(["systemctl", *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        out(f"  warning      systemctl {' '.join(args)}: {exc}")
