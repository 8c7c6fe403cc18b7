"""The tail of the events file as the watcher finds it at start."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ds01_events.envelope import Event, decode_line

if TYPE_CHECKING:
    from pathlib import Path


def read_recent_events(path: Path, max_bytes: int = 4 << 20) -> list[Event]:
    """Return the decodable events among the last ``max_bytes`` of an events file."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    return [event for line in data.splitlines() if (event := _decode_or_none(line))]


def _decode_or_none(line: bytes) -> Event | None:
    try:
        return decode_line(line)
    except Exception:  # a torn first line or foreign text
        return None
