"""What the watcher knows about one container, built from ``inspect`` or from an event.

dockerd copies a container's labels over the event attributes; ``image`` and
``name`` are set after the labels and stay true, the action's own keys
(``exitCode``, ``signal``, ``oldName``) can be forged by a label of that name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from watcher.docker import attribution
from watcher.docker.gpu_devices import gpu_devices
from watcher.docker.stream import base_action
from watcher.docker.times import docker_time_nanos, ran_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MAX_ERROR = 500  # dockerd's start errors are a line or two; a log line stays bounded
# Attributes dockerd sets after copying labels: always the facts.
TRUSTED_ATTRIBUTES = frozenset({"image", "name"})
# Attributes a label of the same name overwrites, per action.
ACTION_ATTRIBUTES = {"die": ("exitCode",), "kill": ("signal",), "rename": ("oldName",)}


class KnownContainer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the watcher knows about one container; persisted with the cursor."""

    name: str
    image: str | None = None
    running: bool = False
    user: str | None = None
    attributed_by: str | None = None
    gpu_devices: list[str] = msgspec.field(default_factory=list)
    managed: bool = False
    infrastructure: bool = False
    container_type: str | None = None
    interface: str | None = None
    label_keys: list[str] = msgspec.field(default_factory=list)
    stop_signal: str | None = None
    exit_code: int | None = None
    oom_killed: bool | None = None
    # Flagged as unmanaged from its configuration (NVML was not known at its start).
    unmanaged_flagged: bool = False
    # When its last run started (epoch ns), from the start event or State.StartedAt.
    started_nano: int | None = None
    # From inspect of a stopped container: how long its last run took, and why its last
    # start failed (State.Error; dockerd clears it at a successful start).
    ran_s: float | None = None
    start_error: str | None = None


def known_from_inspect(
    inspect: Mapping[str, Any], *, user_by_uid: Callable[[int], str | None] | None = None
) -> KnownContainer:
    """Everything the watcher records about a container, from ``docker inspect``."""
    config = inspect.get("Config") or {}
    host_config = inspect.get("HostConfig") or {}
    state = inspect.get("State") or {}
    labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    name = str(inspect.get("Name") or "").lstrip("/")
    who = attribution.attribute_user(
        labels, name, host_config.get("CgroupParent"), user_by_uid=user_by_uid
    )
    exit_code = state.get("ExitCode")
    started = docker_time_nanos(state.get("StartedAt"))
    running = bool(state.get("Running"))
    error = state.get("Error")
    return KnownContainer(
        name=name,
        image=config.get("Image") or inspect.get("Image"),
        running=running,
        user=who.user,
        attributed_by=who.attributed_by,
        gpu_devices=gpu_devices(inspect),
        managed=attribution.is_managed(labels),
        infrastructure=attribution.is_infrastructure(labels),
        container_type=attribution.container_type(labels),
        interface=attribution.interface(labels),
        label_keys=sorted(labels),
        stop_signal=config.get("StopSignal") or None,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        oom_killed=state.get("OOMKilled") if isinstance(state.get("OOMKilled"), bool) else None,
        started_nano=started,
        ran_s=None if running else ran_seconds(started, docker_time_nanos(state.get("FinishedAt"))),
        start_error=error[:MAX_ERROR] if isinstance(error, str) and error and not running else None,
    )


def known_from_event(
    event: Mapping[str, Any], *, user_by_uid: Callable[[int], str | None] | None = None
) -> KnownContainer:
    """Fallback when the container is already gone: labels recovered from the attributes.

    The attributes are the labels plus ``image``, ``name`` and the action's own keys;
    a label colliding with an action key cannot be told apart here.
    """
    attributes = dict((event.get("Actor") or {}).get("Attributes") or {})
    action = base_action(str(event.get("Action") or ""))
    labels = {
        k: str(v)
        for k, v in attributes.items()
        if k not in TRUSTED_ATTRIBUTES and k not in ACTION_ATTRIBUTES.get(action, ())
    }
    inspect_like = {
        "Name": attributes.get("name") or "",
        "Config": {"Image": attributes.get("image") or event.get("from"), "Labels": labels},
    }
    return known_from_inspect(inspect_like, user_by_uid=user_by_uid)
