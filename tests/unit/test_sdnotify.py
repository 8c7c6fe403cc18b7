"""sd_notify without libsystemd."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from watcher.sdnotify import Notifier, notify_address, watchdog_seconds

if TYPE_CHECKING:
    from pathlib import Path


def test_abstract_socket_names_start_with_nul() -> None:
    """An '@name' address becomes abstract (leading NUL); a path stays a path."""
    assert notify_address({"NOTIFY_SOCKET": "@sd/notify"}) == "\0sd/notify"
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "relative"}) is None
    assert notify_address({}) is None


def test_watchdog_only_for_this_pid() -> None:
    """WATCHDOG_USEC counts only when WATCHDOG_PID is absent or ours."""
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}, 7) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 7) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, 7) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "0"}, 7) is None


def test_messages_reach_a_path_socket(tmp_path: Path) -> None:
    """READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 arrive as datagrams."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.ready("up")
        assert listener.recv(1024) == b"READY=1\nSTATUS=up"
        assert notifier.alive()
        assert listener.recv(1024) == b"WATCHDOG=1"
        assert notifier.stopping("bye")
        assert listener.recv(1024) == b"STOPPING=1\nSTATUS=bye"


def test_messages_reach_an_abstract_socket() -> None:
    """An '@' NOTIFY_SOCKET is reached in the abstract namespace."""
    name = f"ds01-test-{os.getpid()}-{os.urandom(4).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert listener.recv(1024) == b"STATUS=hello"


def test_no_socket_is_a_quiet_no_op(tmp_path: Path) -> None:
    """Without NOTIFY_SOCKET, or with nobody listening, calls return False and never raise."""
    assert not Notifier({}).ready("x")
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "absent")}).alive()
