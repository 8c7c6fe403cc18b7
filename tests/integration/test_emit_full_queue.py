"""The socket route rides out a full kernel queue instead of spooling at the first EAGAIN."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import pytest

from ds01_events.emit import Settings, record
from ds01_events.envelope import make_event

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration]


def _fill(path: str) -> int:
    """Send to ``path`` until the kernel refuses; return how many were queued."""
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    queued = 0
    try:
        while True:
            sender.sendto(b"{}", path)
            queued += 1
    except BlockingIOError:
        return queued
    finally:
        sender.close()


@pytest.mark.parametrize("run", range(3))
def test_a_queue_emptied_within_the_bound_takes_the_event(tmp_path: Path, run: int) -> None:
    """Queue full, reader back 5 ms later: the event goes by socket, not to the spool."""
    del run
    path = str(tmp_path / "events.sock")
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(path)
    got: list[bytes] = []
    try:
        assert _fill(path) > 0
        settings = Settings(
            socket_path=path,
            events_file=str(tmp_path / "events.jsonl"),
            spool_dir=str(tmp_path / "spool"),
            timeout=0.05,
        )

        def drain_later() -> None:
            time.sleep(0.005)
            reader.settimeout(0.5)
            while len(got) < 10_000:
                try:
                    got.append(reader.recv(8192))
                except TimeoutError:
                    return

        thread = threading.Thread(target=drain_later)
        thread.start()
        began = time.monotonic()
        outcome = record(make_event("test.full_queue"), settings)
        spent = time.monotonic() - began
        thread.join()
    finally:
        reader.close()
    assert outcome.route == "socket", outcome
    assert any(b"test.full_queue" in data for data in got)
    assert spent < 0.15  # the 50 ms bound, with room for a loaded machine
    assert not (tmp_path / "spool").exists()


def test_a_queue_that_stays_full_falls_back_within_the_bound(tmp_path: Path) -> None:
    """Nobody reads: after at most half the bound the event is spooled; the call stays bounded."""
    path = str(tmp_path / "events.sock")
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(path)
    try:
        _fill(path)
        settings = Settings(
            socket_path=path,
            events_file=str(tmp_path / "events.jsonl"),
            spool_dir=str(tmp_path / "spool"),
            timeout=0.05,
        )
        began = time.monotonic()
        outcome = record(make_event("test.full_queue"), settings)
        spent = time.monotonic() - began
    finally:
        reader.close()
    assert outcome.route == "spool", outcome
    assert 0.02 <= spent < 0.15
