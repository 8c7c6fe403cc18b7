"""The Docker source's persisted position: last event seen and the container state then.

Written atomically (temporary file, fsync, rename, fsync of the directory), so a
crash or ``kill -9`` leaves either the previous or the new state, never a torn file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from detectors.atomic_file import replace_file
from watcher.docker.known_container import KnownContainer  # noqa: TC001 - msgspec needs it at runtime

if TYPE_CHECKING:
    from pathlib import Path

STATE_FILE = "docker-cursor.json"


class DockerCursor(msgspec.Struct, kw_only=True):
    """Resume point: the last handled event's time and the known containers.

    ``keys`` are the (id, action) pairs handled at exactly ``time_nano``: ``since`` is
    inclusive, so the replay starts with them again.
    """

    time_nano: int = 0
    keys: list[tuple[str, str]] = msgspec.field(default_factory=list)
    # A time up to which every event was handled, for a source that never saw one.
    watermark_nano: int = 0
    containers: dict[str, KnownContainer] = msgspec.field(default_factory=dict)


_decoder = msgspec.json.Decoder(DockerCursor)


def load_cursor(state_dir: Path) -> tuple[DockerCursor | None, str | None]:
    """Return the saved cursor, or (None, why) when there is none or it cannot be read."""
    path = state_dir / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    try:
        return _decoder.decode(data), None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        return None, f"ignoring unreadable {path}: {exc}"


def save_cursor(state_dir: Path, cursor: DockerCursor) -> None:
    """Replace the saved cursor atomically (0600). Raises OSError (the caller decides)."""
    replace_file(state_dir / STATE_FILE, msgspec.json.encode(cursor), mode=0o600)
