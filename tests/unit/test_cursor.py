"""Atomic persistence of the Docker cursor."""

from __future__ import annotations

from watcher.docker.cursor import STATE_FILE, DockerCursor, load_cursor, save_cursor
from watcher.docker.known_container import KnownContainer


def test_round_trip(tmp_path):
    """A saved cursor loads back equal, containers included."""
    cursor = DockerCursor(
        time_nano=1_795_317_630_000_000_042,
        keys=[("abc", "die")],
        containers={"abc": KnownContainer(name="c", running=True)},
    )
    save_cursor(tmp_path / "state", cursor)
    loaded, problem = load_cursor(tmp_path / "state")
    assert problem is None
    assert loaded == cursor


def test_missing_is_no_cursor(tmp_path):
    """No file means no cursor and no complaint."""
    assert load_cursor(tmp_path) == (None, None)


def test_corrupt_file_is_reported(tmp_path):
    """An unreadable file gives no cursor and a one-line reason naming the file."""
    (tmp_path / STATE_FILE).write_text("{torn")
    cursor, problem = load_cursor(tmp_path)
    assert cursor is None
    assert problem is not None
    assert STATE_FILE in problem


def test_no_temporary_left_behind(tmp_path):
    """After saving, only the state file is in the directory."""
    save_cursor(tmp_path, DockerCursor(time_nano=5))
    save_cursor(tmp_path, DockerCursor(time_nano=6))
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]
    loaded, _ = load_cursor(tmp_path)
    assert loaded is not None
    assert loaded.time_nano == 6


def test_cursor_not_saved_before_the_sink_is_durable(tmp_path):
    """The Docker source keeps the older cursor while the sink has not written what it got."""
    from watcher.docker.source import DockerSource

    durable = {"now": False}
    source = DockerSource(
        lambda _event: True,
        state_dir=tmp_path,
        wait_durable=lambda _timeout: durable["now"],
        say=lambda _m: None,
    )
    source._cursor.time_nano = 7
    source._dirty = True
    source._save(force=True)
    assert not (tmp_path / STATE_FILE).exists()
    durable["now"] = True
    source._save(force=True)
    loaded, _ = load_cursor(tmp_path)
    assert loaded is not None
    assert loaded.time_nano == 7
