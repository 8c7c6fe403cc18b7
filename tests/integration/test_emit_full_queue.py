"""The socket route rides out a full kernel queue instead of spooling at the first EAGAIN."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import pytest

from ds01_events.emit import Settings, record
from ds01_events.envelope import encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = [pytest.mark.integration]


def _fill(path: str, line: bytes = b"{}") -> int:
    """Send to ``path`` until the kernel refuses; return how many were queued."""
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    queued = 0
    try:
        while True:
            sender.sendto(line, path)
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


def test_a_full_sink_leaves_datagrams_in_the_kernel(tmp_path: Path) -> None:
    """While the sink has no room the reader takes nothing: senders see EAGAIN, nothing is lost."""
    from watcher.intake.ingest import IngestServer, RejectCounter, open_ingest_socket
    from watcher.intake.ratelimit import RateLimiter

    got: list[str] = []
    room = threading.Event()
    sock, _ = open_ingest_socket(str(tmp_path / "events.sock"), env={})
    server = IngestServer(
        sock,
        lambda event: got.append(event.id) or True,
        RateLimiter(1000, 1000),
        RejectCounter(lambda _e: True, 60),
        has_room=room.is_set,
    )
    server.start()
    try:
        line = encode_line(make_event("test.held"))
        queued = _fill(str(tmp_path / "events.sock"), line)
        time.sleep(0.3)
        assert got == []
        assert _fill(str(tmp_path / "events.sock"), line) == 0  # the kernel still holds them
        room.set()
        assert _wait(lambda: len(got) == queued)
    finally:
        server.stop(2)
        sock.close()


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()
