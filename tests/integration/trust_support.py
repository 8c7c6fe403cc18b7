"""Helpers for the attack tests: a watcher other users can reach, and acting as nobody."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from watcher_support import read_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watcher_support import Watcher

NOBODY = 65534

# Sends each hex-encoded argument after the first (the socket) as one datagram.
SEND = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for data in sys.argv[2:]:
    sock.sendto(bytes.fromhex(data), sys.argv[1])
"""


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp root is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ds01-trust-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_nobody(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command as nobody (the distribution's python3 for Python)."""
    return subprocess.run(
        ["/usr/sbin/runuser", "-u", "nobody", "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
    )


def send_as_nobody(watcher: Watcher, *datagrams: bytes) -> None:
    """Send datagrams from a process running as nobody."""
    as_nobody("/usr/bin/python3", "-c", SEND, str(watcher.socket), *(d.hex() for d in datagrams))


def settings_file(root: Path, **values: float) -> list[str]:
    """Write a watcher.toml with ``values``; return the flags that use it (no Docker, GPU, DCGM)."""
    path = root / "watcher.toml"
    path.write_text("".join(f"{key} = {value}\n" for key, value in values.items()))
    return [
        "--config",
        str(path),
        "--gpu",
        "off",
        "--dcgm-url",
        "off",
        "--docker-host",
        f"unix://{root}/no-docker.sock",
    ]


def reachable_watcher(make_watcher: Callable[..., Watcher], root: Path, **values: float) -> Watcher:
    """A watcher in ``root`` whose socket and spool nobody can use."""
    watcher = make_watcher(root=root, extra=settings_file(root, **values))
    watcher.spool.mkdir(parents=True, exist_ok=True)
    watcher.spool.chmod(0o1733)
    return watcher


def of_type(watcher: Watcher, event_type: str) -> list[dict[str, Any]]:
    """The logged events of one type."""
    return [e for e in read_events(watcher.events_file) if e["event_type"] == event_type]


def rejected(watcher: Watcher) -> tuple[dict[str, int], dict[str, int]]:
    """Sum of every ingest.rejected so far: (counts per reason, counts per uid)."""
    counts: dict[str, int] = {}
    uids: dict[str, int] = {}
    for event in of_type(watcher, "ingest.rejected"):
        for key, value in event["details"]["counts"].items():
            counts[key] = counts.get(key, 0) + value
        for key, value in event["details"]["uids"].items():
            uids[key] = uids.get(key, 0) + value
    return counts, uids
