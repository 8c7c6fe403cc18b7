"""Fixtures for the watcher integration tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from watcher_support import Watcher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def make_watcher(tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    """Build watchers under tmp_path (or a given directory); all are stopped afterwards."""
    made: list[Watcher] = []

    def build(
        root: Path | None = None, log_dir: Path | None = None, extra: list[str] | None = None
    ) -> Watcher:
        base = root or tmp_path
        base.mkdir(parents=True, exist_ok=True)
        watcher = Watcher(
            root=base,
            events_file=(log_dir or base / "log") / "events.jsonl",
            socket=base / "events.sock",
            spool=base / "spool",
            extra_args=extra or [],
        )
        made.append(watcher)
        return watcher

    yield build
    for watcher in made:
        if watcher.proc is not None and watcher.proc.poll() is None:
            watcher.proc.kill()
            watcher.proc.wait()
