"""Restart the DCGM exporter gracefully: through its systemd unit, else the Docker API.

A SIGKILL of the exporter has frozen MIG GPUs until a reboot (Xid 119/120), so both paths
stop with SIGTERM and a timeout first and kill only when that did not end it. Whether it
came to a kill is read from the engine's own ``kill`` events for the container (signal 9),
the same for both paths. Never raises: every failure is a `RestartOutcome` with ``ok``
false and a one-line ``error``.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from typing import TYPE_CHECKING, Any, Literal

from watcher.dcgm.watchdog import RestartOutcome
from watcher.sdnotify import systemd_running

if TYPE_CHECKING:
    from collections.abc import Callable

Method = Literal["systemd", "docker"]
# Time systemctl gets on top of the unit's stop timeout for the start and docker's pull.
START_MARGIN_S = 90.0
# Signals that mean "killed" in the engine's kill events (docker stop's escalation).
_KILL_SIGNALS = frozenset({"9", "SIGKILL", "KILL"})


class ExporterRestarter:
    """Knows how the exporter is run here and restarts it that way."""

    def __init__(
        self,
        *,
        unit: str,
        container: str,
        stop_timeout: float,
        docker_host: str | None = None,
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
        systemd_running: Callable[[], bool] = systemd_running,
        docker_client: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unit = unit
        self.container = container
        self.stop_timeout = stop_timeout
        self._docker_host = docker_host
        self._run = run
        self._systemd_running = systemd_running
        self._docker_client = docker_client or self._make_client
        self._clock = clock
        self._client: Any = None

    # -- what is installed ----------------------------------------------------------

    def method(self) -> Method | None:
        """Return how to restart: systemd when the unit is installed, else docker, else None."""
        if self.unit and self._systemd_running() and self._unit_installed():
            return "systemd"
        if self.container and self.container_state() is not None:
            return "docker"
        return None

    def container_state(self) -> str | None:
        """The container's status (running, paused, exited...), None if absent or unknown."""
        import docker.errors  # noqa: PLC0415 - the service imports without the SDK loaded

        try:
            if self._client is None:  # kept: asked on every failed probe
                self._client = self._docker_client()
            info = self._client.inspect_container(self.container)
        except docker.errors.NotFound:
            return None
        except Exception:
            self._client = None  # the engine went away: a new client next time
            return None
        status = info.get("State", {}).get("Status")
        return str(status) if status else None

    def nothing_installed(self) -> str:
        """One line for the admin when there is nothing to restart."""
        return (
            f"neither the systemd unit {self.unit} nor a container {self.container} exists:"
            " install the exporter (docs/watcher.md), name yours with --dcgm-unit or"
            " --dcgm-container, or turn probing off with --dcgm-url off"
        )

    def _unit_installed(self) -> bool:
        try:
            result = self._run(
                ["systemctl", "cat", "--", self.unit],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0

    # -- restarting ------------------------------------------------------------------

    def restart(self, method: Method) -> RestartOutcome:
        """Restart the exporter by ``method``; wait for it to be started again."""
        start = self._clock()
        wall_start = time.time()
        try:
            if method == "systemd":
                error, killed = self._restart_unit(), None
            else:
                error, killed = self._restart_container()
        except Exception as exc:  # a restart must never end the watchdog's thread
            error, killed = f"{type(exc).__name__}: {exc}"[:300], None
        if killed is None:
            killed = self._engine_killed(wall_start, time.time())
        return RestartOutcome(
            method=method,
            took_s=self._clock() - start,
            ok=error is None,
            killed=killed,
            error=error,
        )

    def _restart_unit(self) -> str | None:
        # systemctl restart runs the unit's ExecStop (docker stop -t N: TERM, N s, KILL),
        # then ExecStopPost and the start; TimeoutStopSec bounds the stop part.
        limit = self.stop_timeout + START_MARGIN_S
        try:
            result = self._run(
                ["systemctl", "restart", "--", self.unit],
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"systemctl restart {self.unit} did not finish within {limit:g} s"
        except OSError as exc:
            return f"cannot run systemctl: {exc.strerror}"
        if result.returncode != 0:
            last = (result.stderr or result.stdout or "").strip().splitlines()
            why = last[-1] if last else f"exit status {result.returncode}"
            return f"systemctl restart {self.unit} failed: {why}"[:300]
        return None

    def _restart_container(self) -> tuple[str | None, bool | None]:
        import docker.errors  # noqa: PLC0415 - the service imports without the SDK loaded

        api = self._docker_client(timeout=self.stop_timeout + 30)
        name = self.container
        killed: bool | None = None
        try:
            # The engine sends SIGTERM, waits stop_timeout, then SIGKILL (paused: it thaws).
            api.stop(name, timeout=int(max(self.stop_timeout, 1)))
        except docker.errors.NotFound:
            return f"container {name} does not exist", False
        except Exception as exc:
            # The stop did not go through (the engine timed out on its side): last resort.
            with contextlib.suppress(Exception):
                if api.inspect_container(name)["State"]["Running"]:
                    api.kill(name)
                    killed = True
            if killed is None:
                return f"stopping {name} failed: {exc}"[:300], None
        try:
            api.start(name)
        except docker.errors.NotFound:
            removed = (
                f"container {name} removed itself when stopped (--rm): run it under"
                " the systemd unit, or without --rm"
            )
            return removed, killed
        except Exception as exc:
            return f"starting {name} failed: {exc}"[:300], killed
        return None, killed

    def _engine_killed(self, since: float, until: float) -> bool | None:
        """Ask the engine whether it sent the container SIGKILL between ``since`` and ``until``."""
        try:
            api = self._docker_client()
            events = api.events(
                since=int(since) - 1,
                until=int(until) + 1,
                filters={"container": self.container, "event": "kill"},
                decode=True,
            )
            return any(
                str(e.get("Actor", {}).get("Attributes", {}).get("signal")) in _KILL_SIGNALS
                and since - 1 <= e.get("timeNano", 0) / 1e9 <= until + 1
                for e in events
            )
        except Exception:
            return None

    def _make_client(self, timeout: float = 30.0) -> Any:
        import docker  # noqa: PLC0415 - the service imports without the SDK loaded

        kwargs: dict[str, Any] = docker.utils.kwargs_from_env()
        if self._docker_host:
            kwargs["base_url"] = self._docker_host
        return docker.APIClient(version="auto", timeout=timeout, **kwargs)
