"""The other decoders of outside input: deep nesting is a clean refusal, never an exception."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from watcher.config import ConfigError, load_settings
from watcher.docker.cursor import STATE_FILE, load_cursor
from watcher.docker.facts import config_from_disk
from watcher.docker.stream import ChunkDecoder

if TYPE_CHECKING:
    from pathlib import Path

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_deep_docker_stream_line_is_skipped() -> None:
    """A line nesting 100,000 deep is counted as skipped; the next event still comes out."""
    decoder = ChunkDecoder()
    events = decoder.feed(b'{"a":' + DEEP[:20_000] + DEEP[-20_000:] + b'}\n{"Action":"start"}\n')
    assert events == [{"Action": "start"}]
    assert decoder.skipped == 1


def test_a_deep_cursor_file_is_ignored_with_a_reason(tmp_path: Path) -> None:
    """A corrupt state file nested deep is reported, not raised."""
    (tmp_path / STATE_FILE).write_bytes(DEEP)
    cursor, why = load_cursor(tmp_path)
    assert cursor is None
    assert why is not None
    assert "ignoring" in why


def test_deep_docker_config_files_fall_back_to_inspect(tmp_path: Path) -> None:
    """Deep nesting in dockerd's own files reads as 'cannot use them'."""
    folder = tmp_path / "containers" / "abc123"
    folder.mkdir(parents=True)
    (folder / "config.v2.json").write_bytes(DEEP)
    (folder / "hostconfig.json").write_bytes(b"{}")
    assert config_from_disk(tmp_path, "abc123") is None


def test_a_deep_config_file_is_one_clear_error(tmp_path: Path) -> None:
    """A TOML value nested 5,000 deep is a ConfigError naming the file."""
    path = tmp_path / "w.toml"
    path.write_text("queue_size = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"w\.toml"):
        load_settings({"config": str(path)}, {}, euid=0, writable=lambda _p: True)
