"""Facts about containers from dockerd: its own files for a create, else ``inspect``.

``inspect`` waits on a per-container lock that dockerd holds through a whole start,
so during a burst a create's inspect waits hundreds of ms. dockerd writes
``config.v2.json`` and ``hostconfig.json`` atomically at create, before it publishes
the event: when the engine is local and its data root readable, those are read
instead, and creates queued behind the current event are fetched ahead of time in a
small pool.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.docker.known_container import KnownContainer, known_from_inspect

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.docker.stream import EventKey

LOOK_AHEAD = 256
INSPECT_THREADS = 4


def config_from_disk(root: Path, container_id: str) -> dict[str, Any] | None:
    """Inspect-shaped facts from dockerd's own files, without the container lock.

    None when they cannot be read (not root, remote engine, container gone): the
    caller inspects instead.
    """
    if not container_id.isalnum():
        return None
    folder = root / "containers" / container_id
    try:
        config = json.loads((folder / "config.v2.json").read_bytes())
        host_config = json.loads((folder / "hostconfig.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(config, dict) or not isinstance(host_config, dict):
        return None
    return {
        "Id": config.get("ID"),
        "Name": config.get("Name"),
        "Config": config.get("Config"),
        "HostConfig": host_config,
        "State": config.get("State"),
    }


class ContainerFacts:
    """Inspect data for the Docker source; ``api()`` returns the current low-level client.

    Never raises: a container already gone or an engine away gives None.
    """

    def __init__(self, api: Callable[[], Any], docker_host: str | None) -> None:
        self._api = api
        self._docker_host = docker_host
        self._docker_root: Path | None = None  # dockerd's data root, when we can read it
        self._pool: ThreadPoolExecutor | None = None
        self._prefetch: dict[EventKey, Future[dict[str, Any] | None]] = {}

    def start(self) -> None:
        """Start the look-ahead pool."""
        self._pool = ThreadPoolExecutor(INSPECT_THREADS, thread_name_prefix="docker-inspect")

    def stop(self) -> None:
        """Drop look-ahead work not started yet; returns at once."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def find_docker_root(self) -> None:
        """Use dockerd's files for create facts only if this engine's data root is ours to read."""
        self._docker_root = None
        host = self._docker_host or os.environ.get("DOCKER_HOST") or "unix://"
        if not host.startswith("unix://"):
            return
        try:
            root = Path(self._api().info()["DockerRootDir"])
        except Exception:
            return
        if os.access(root / "containers", os.R_OK | os.X_OK):
            self._docker_root = root

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """``docker inspect``, or None."""
        try:
            result: dict[str, Any] = self._api().inspect_container(container_id)
        except Exception:  # gone already (404) or engine away: fall back to the event
            return None
        return result

    def created(self, container_id: str) -> dict[str, Any] | None:
        """Facts for a create: dockerd's files when readable, else inspect."""
        root = self._docker_root
        facts = config_from_disk(root, container_id) if root is not None else None
        return facts if facts is not None else self.inspect(container_id)

    def prefetch(self, key: EventKey | None) -> bool:
        """Start fetching a queued create's facts; False once the look-ahead is full."""
        if self._pool is None or len(self._prefetch) >= LOOK_AHEAD:
            return False
        if key is not None and key.action == "create" and key not in self._prefetch:
            self._prefetch[key] = self._pool.submit(self.created, key.actor_id)
        return True

    def take(self, key: EventKey) -> Future[dict[str, Any] | None] | None:
        """The prefetch for this event, if any; call for every event so none lingers."""
        return self._prefetch.pop(key, None)

    def fetch(self, key: EventKey) -> dict[str, Any] | None:
        """Facts for this event now: created() for a create, inspect() otherwise."""
        if key.action == "create":
            return self.created(key.actor_id)
        return self.inspect(key.actor_id)

    def current_state(
        self,
        listing: list[dict[str, Any]],
        known: dict[str, KnownContainer],
        busy: set[str],
        user_by_uid: Callable[[int], str | None] | None,
    ) -> dict[str, KnownContainer]:
        """What a full listing says now, inspecting only containers whose state changed.

        Containers in ``busy`` (an event at or after the listing) are left out.
        """
        current: dict[str, KnownContainer] = {}
        for entry in listing:
            cid = entry.get("Id")
            if not isinstance(cid, str) or cid in busy:
                continue
            running = entry.get("State") == "running"
            before = known.get(cid)
            if before is not None and before.running == running:
                current[cid] = before
                continue
            inspect = self.inspect(cid)
            if inspect is None:
                if before is not None:
                    current[cid] = before  # vanished meanwhile: its destroy event follows
                continue
            fresh = known_from_inspect(inspect, user_by_uid=user_by_uid)
            fresh.running = running
            fresh.unmanaged_flagged = before is not None and before.unmanaged_flagged
            current[cid] = fresh
        return current
