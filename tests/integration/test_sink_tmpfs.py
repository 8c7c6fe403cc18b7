"""The sink against a real small tmpfs: full, then freed; read-only, then writable."""

from __future__ import annotations

import errno
import io
import subprocess
from typing import TYPE_CHECKING

import msgspec
import pytest
from watcher_support import fill, mount_tmpfs, needs_root, read_events, wait_for

from ds01_events.envelope import make_event
from watcher.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.integration, needs_root]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """Yield a 256 KiB tmpfs, unmounted (all layers) afterwards."""
    mnt = tmp_path / "mnt"
    mount_tmpfs(mnt, "size=256k,mode=0755")
    yield mnt
    for _ in range(3):
        # Lazy: a failed test may leave the sink's file open.
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def test_disk_full_holds_events_and_writes_them_when_freed(small_fs: Path) -> None:
    """ENOSPC: said once, events held and written when freed, refusals in one gap, no half line."""
    path = small_fs / "events.jsonl"
    err = io.StringIO()
    sink = Sink(str(path), queue_size=100, group=None, retry_seconds=0.05, stderr=err)
    sink.start()
    first = make_event("test.before_full")
    sink.submit(first)
    assert wait_for(lambda: sink.written == 1)
    filler = fill(small_fs)
    # The log's last page may still have room: add events until a write fails.
    held = []
    for n in range(100):
        event = make_event("test.held", details={"n": n, "pad": "x" * 300})
        held.append(event)
        sink.submit(event)
        assert wait_for(lambda: sink.written == len(held) + 1 or sink.failing is not None)
        if sink.failing is not None:
            break
    assert sink.failing is not None
    more = [make_event("test.held", details={"n": n, "pad": "x" * 300}) for n in range(1, 300)]
    accepted = [e for e in more if sink.submit(e)]
    assert len(accepted) == 100
    assert sink.dropped == 199
    wait_for(lambda: False, 0.5)  # several retries while still full
    assert err.getvalue().count("cannot write") == 1
    assert "No space left on device" in err.getvalue()
    filler.unlink()
    assert wait_for(lambda: sink.pending() == 0 and sink.failing is None)
    sink.stop(5)
    lines = path.read_bytes().splitlines()
    events = [msgspec.json.decode(line) for line in lines]  # every line whole
    ids = [e["id"] for e in events]
    expected = [first.id, *(e.id for e in held), *(e.id for e in accepted)]
    assert [i for i in ids if i in set(expected)] == expected
    gaps = [e for e in events if e["event_type"] == "watcher.gap"]
    assert len(gaps) == 1
    assert gaps[0]["details"]["dropped"] == 199
    assert "writing to" in err.getvalue()


def test_read_only_target_holds_events_until_writable(small_fs: Path) -> None:
    """EROFS over the log's directory: events are held and written once it is writable again."""
    path = small_fs / "events.jsonl"
    err = io.StringIO()
    sink = Sink(str(path), group=None, retry_seconds=0.05, stderr=err)
    sink.start()
    first = make_event("test.before_ro")
    sink.submit(first)
    assert wait_for(lambda: sink.written == 1)
    # An open file blocks remount,ro; a read-only tmpfs over the directory is what the
    # writer then sees: the path is gone and creating it fails with EROFS.
    mount_tmpfs(small_fs, "ro,size=64k")
    try:
        held = [make_event("test.held_ro", details={"n": n}) for n in range(50)]
        assert all(sink.submit(e) for e in held)
        assert wait_for(lambda: sink.failing is not None)
        with pytest.raises(OSError, match="Read-only") as caught:
            (small_fs / "probe").write_text("x")
        assert caught.value.errno == errno.EROFS
        assert "Read-only file system" in err.getvalue()
        wait_for(lambda: False, 0.3)
        assert sink.written == 1
    finally:
        subprocess.run(["umount", str(small_fs)], check=True)
    assert wait_for(lambda: sink.pending() == 0 and sink.failing is None)
    sink.stop(5)
    ids = [e["id"] for e in read_events(path)]
    assert ids == [first.id, *(e.id for e in held)]
    assert err.getvalue().count("cannot write") == 1
