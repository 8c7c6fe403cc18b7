"""The fakes ds01_events.testing ships for scripts' own tests."""

from __future__ import annotations

import os

from ds01_events import log_event
from ds01_events.envelope import encode_line, make_event
from ds01_events.testing import FakeWatcher, read_events, routes_in


def test_fake_watcher_receives_what_log_event_sends(tmp_path):
    """A plain log_event call reaches the fake over a real socket, user and details intact."""
    with FakeWatcher(tmp_path) as watcher:
        assert log_event("maintenance.cleanup", user="alice", slot="1.10") is True
        (event,) = watcher.events(count=1)
    assert event.event_type == "maintenance.cleanup"
    assert event.user == "alice"
    assert event.details == {"slot": "1.10"}


def test_fake_watcher_restores_the_environment(tmp_path):
    """Leaving the fake puts DS01_EVENTS_SOCKET back as it was and removes its socket."""
    before = os.environ.get("DS01_EVENTS_SOCKET")
    with FakeWatcher(tmp_path) as watcher:
        assert os.environ["DS01_EVENTS_SOCKET"] == watcher.settings.socket_path
    assert os.environ.get("DS01_EVENTS_SOCKET") == before
    assert not (tmp_path / "events.sock").exists()


def test_fake_watcher_keeps_invalid_datagrams_apart(tmp_path):
    """A datagram that is not a client event is kept as rejected, not as an event."""
    import socket

    with FakeWatcher(tmp_path) as watcher:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"not json", watcher.settings.socket_path)
        assert log_event("maintenance.cleanup") is True
        watcher.events(count=1)
    assert watcher.rejected == [b"not json"]


def test_read_events_reads_an_events_file(tmp_path):
    """read_events decodes every line of a file in routes_in's place; a missing file is empty."""
    settings = routes_in(tmp_path)
    assert read_events(settings.events_file) == []
    line = encode_line(make_event("auth.denied", user="bob"))
    with open(settings.events_file, "wb") as handle:
        handle.write(line + line)
    assert [e.user for e in read_events(settings.events_file)] == ["bob", "bob"]
