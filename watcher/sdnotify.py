"""Talking to systemd without libsystemd: sd_notify (one datagram to $NOTIFY_SOCKET), sd_booted."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


def systemd_running(root: str = "/") -> bool:
    """True when systemd is PID 1 here (sd_booted(3)'s test: /run/systemd/system exists)."""
    return os.path.isdir(os.path.join(root, "run/systemd/system"))


def notify_address(env: Mapping[str, str]) -> str | None:
    """Return the socket address from NOTIFY_SOCKET; '@' names an abstract socket."""
    path = env.get("NOTIFY_SOCKET", "")
    if not path or not (path.startswith(("/", "@"))):
        return None
    return "\0" + path[1:] if path.startswith("@") else path


def watchdog_seconds(env: Mapping[str, str], pid: int) -> float | None:
    """Return how often systemd expects WATCHDOG=1, if WATCHDOG_USEC is for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """Tells systemd about readiness, status, liveness and stopping.

    Without NOTIFY_SOCKET (not under systemd) every call is a no-op returning False.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = notify_address(env)
        self.watchdog = watchdog_seconds(env, os.getpid())

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; True if it was sent."""
        if self.address is None:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(1.0)
                sock.sendto(message, self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        """READY=1 with a STATUS= line."""
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        """STATUS= only."""
        return self.send(f"STATUS={status}")

    def alive(self) -> bool:
        """WATCHDOG=1: call only while every component is making progress."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        """STOPPING=1 with a STATUS= line."""
        return self.send("STOPPING=1", f"STATUS={status}")
