"""What an install added: the manifest uninstall reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watcher.install.plan import Layout


def read_manifest(layout: Layout) -> dict[str, Any]:
    """The previous install's manifest, or an empty one."""
    try:
        data: dict[str, Any] = json.loads(Path(layout.manifest).read_text())
    except (OSError, ValueError):
        return {}
    return data


def write_manifest(layout: Layout, manifest: dict[str, Any]) -> None:
    """Write the manifest where the layout keeps it (a missing state dir: a dry run)."""
    path = Path(layout.manifest)
    if path.parent.is_dir():
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
