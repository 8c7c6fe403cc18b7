"""Docker container events to audit events. Pure: plain dicts in, envelopes out.

dockerd copies a container's labels over the event attributes, so a label named
``exitCode``, ``signal`` or ``oldName`` forges them (``image`` and ``name`` are set
after the labels and stay true). Facts therefore come from ``inspect`` and from
what this module tracked itself; an attribute is used only when no label of the
same name exists.

``kill`` and ``stop`` produce no event of their own: they are folded into the
``container.stop`` logged at ``die`` (``reason`` stopped/killed, ``signal``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watcher.docker.container_events import (
    container_event,
    holding_events,
    release_events,
    stop_reason,
    timestamp_from_nanos,
)
from watcher.docker.known_container import KnownContainer, known_from_event, known_from_inspect
from watcher.docker.stream import base_action, event_key

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ds01_events.envelope import Event
    from watcher.docker.container_events import DeviceResolver

HANDLED_ACTIONS = frozenset(
    {
        "create",
        "start",
        "die",
        "stop",
        "kill",
        "destroy",
        "oom",
        "pause",
        "unpause",
        "restart",
        "rename",
    }
)
_SIMPLE = {
    "pause": "container.pause",
    "unpause": "container.unpause",
    "restart": "container.restart",
}


class ContainerLifecycle:
    """Tracks containers across events and maps each Docker event to audit events.

    ``containers`` is the known state (what reconciliation compares against).
    """

    def __init__(
        self,
        containers: dict[str, KnownContainer] | None = None,
        *,
        user_by_uid: Callable[[int], str | None] | None = None,
        resolve_devices: DeviceResolver | None = None,
    ) -> None:
        self.containers: dict[str, KnownContainer] = dict(containers or {})
        self.user_by_uid = user_by_uid
        # Configured GPU identifiers to NVML's devices, for gpu.allocate / gpu.release.
        self.resolve_devices = resolve_devices
        # Per container since its last start: first kill signal ("" when forged), last signal.
        self._first_kill: dict[str, str] = {}
        self._last_signal: dict[str, str | None] = {}
        self._oom: set[str] = set()

    def needs_inspect(self, event: Mapping[str, Any]) -> bool:
        """Whether handling ``event`` wants fresh inspect data.

        Always at create (GPU devices and cgroup parent are not in the event) and for
        a container not seen before. At die only when a label named ``exitCode``
        forges the attribute: inspect takes the container lock, which dockerd holds
        through a start or stop, so it is the slow path under load. OOM state comes
        from the ``oom`` event dockerd emits before ``die``.
        """
        action = base_action(str(event.get("Action") or ""))
        if action not in HANDLED_ACTIONS or action == "destroy":
            return False
        actor_id = str((event.get("Actor") or {}).get("ID") or "")
        known = self.containers.get(actor_id)
        if action == "create" or known is None:
            return True
        return action == "die" and "exitCode" in known.label_keys

    def handle(
        self, event: Mapping[str, Any], inspect: Mapping[str, Any] | None = None
    ) -> list[Event]:
        """Audit events for one Docker event (empty for noise). Never raises on odd input."""
        key = event_key(dict(event))
        action = base_action(key.action) if key else ""
        if key is None or action not in HANDLED_ACTIONS:
            return []
        cid = key.actor_id
        attributes = dict((event.get("Actor") or {}).get("Attributes") or {})
        previous = self.containers.get(cid)
        old_name = previous.name if previous is not None else None
        known = self._refresh(cid, event, inspect, attributes)
        if action == "rename":
            stamp = timestamp_from_nanos(key.time_nano)
            return self._on_rename(cid, known, attributes, old_name, stamp)
        timestamp = timestamp_from_nanos(key.time_nano)
        handler = getattr(self, f"_on_{action}", None)
        if handler is not None:
            result: list[Event] = handler(cid, known, attributes, inspect, timestamp)
            return result
        if action in _SIMPLE:
            return [container_event(_SIMPLE[action], cid, known, timestamp=timestamp)]
        return []

    def _refresh(
        self,
        cid: str,
        event: Mapping[str, Any],
        inspect: Mapping[str, Any] | None,
        attributes: dict[str, Any],
    ) -> KnownContainer:
        previous = self.containers.get(cid)
        if inspect is not None:
            known = known_from_inspect(inspect, user_by_uid=self.user_by_uid)
            if previous is not None:
                known.running = previous.running
                known.unmanaged_flagged = previous.unmanaged_flagged
        elif previous is not None:
            known = previous
        else:
            known = known_from_event(event, user_by_uid=self.user_by_uid)
        if attributes.get("name"):
            known.name = str(attributes["name"])
        if attributes.get("image"):
            known.image = str(attributes["image"])
        self.containers[cid] = known
        return known

    def _attribute(self, known: KnownContainer, attributes: dict[str, Any], key: str) -> str | None:
        """Return an event attribute, unless a label of that name may have overwritten it."""
        if key in known.label_keys or key not in attributes:
            return None
        return str(attributes[key])

    def _on_create(
        self,
        cid: str,
        known: KnownContainer,
        _a: dict[str, Any],
        _i: Mapping[str, Any] | None,
        timestamp: str,
    ) -> list[Event]:
        known.running = False
        return [
            container_event(
                "container.create",
                cid,
                known,
                timestamp=timestamp,
                container_type=known.container_type,
                managed=known.managed,
                interface=known.interface,
                gpu_devices=list(known.gpu_devices),
            )
        ]

    def _on_start(
        self,
        cid: str,
        known: KnownContainer,
        _a: dict[str, Any],
        _i: Mapping[str, Any] | None,
        timestamp: str,
    ) -> list[Event]:
        known.running = True
        self._first_kill.pop(cid, None)
        self._last_signal.pop(cid, None)
        self._oom.discard(cid)
        return [
            container_event("container.start", cid, known, timestamp=timestamp),
            *holding_events(cid, known, timestamp=timestamp, resolve=self.resolve_devices),
        ]

    def _on_kill(
        self,
        cid: str,
        known: KnownContainer,
        attributes: dict[str, Any],
        _i: Mapping[str, Any] | None,
        _t: str,
    ) -> list[Event]:
        signal = self._attribute(known, attributes, "signal")
        self._first_kill.setdefault(cid, signal or "")
        self._last_signal[cid] = signal
        return []

    def _on_oom(
        self,
        cid: str,
        known: KnownContainer,
        _a: dict[str, Any],
        _i: Mapping[str, Any] | None,
        timestamp: str,
    ) -> list[Event]:
        self._oom.add(cid)
        return [container_event("resource.oom_kill", cid, known, timestamp=timestamp)]

    def _on_die(
        self,
        cid: str,
        known: KnownContainer,
        attributes: dict[str, Any],
        inspect: Mapping[str, Any] | None,
        timestamp: str,
    ) -> list[Event]:
        state = (inspect or {}).get("State") or {}
        exit_code: int | None = None
        oom = cid in self._oom
        if state and not state.get("Running"):
            exit_code = state.get("ExitCode") if isinstance(state.get("ExitCode"), int) else None
            oom = oom or bool(state.get("OOMKilled"))
        if exit_code is None:
            raw = self._attribute(known, attributes, "exitCode")
            exit_code = int(raw) if raw is not None and raw.lstrip("-").isdigit() else None
        known.running = False
        known.exit_code = exit_code
        known.oom_killed = oom
        killed = cid in self._first_kill
        reason = stop_reason(
            oom=oom,
            kill_signal=self._first_kill.get(cid) or None,
            killed=killed,
            stop_signal=known.stop_signal,
        )
        signal = self._last_signal.get(cid)
        self._first_kill.pop(cid, None)
        self._last_signal.pop(cid, None)
        self._oom.discard(cid)
        return [
            container_event(
                "container.stop",
                cid,
                known,
                timestamp=timestamp,
                exit_code=exit_code,
                oom=oom,
                signal=signal,
                reason=reason,
            ),
            *release_events(cid, known, timestamp=timestamp, resolve=self.resolve_devices),
        ]

    def _on_stop(
        self, _c: str, _k: KnownContainer, _a: dict[str, Any], _i: Mapping[str, Any] | None, _t: str
    ) -> list[Event]:
        return []  # folded into the container.stop logged at die

    def _on_destroy(
        self,
        cid: str,
        known: KnownContainer,
        _a: dict[str, Any],
        _i: Mapping[str, Any] | None,
        timestamp: str,
    ) -> list[Event]:
        self.containers.pop(cid, None)
        self._first_kill.pop(cid, None)
        self._last_signal.pop(cid, None)
        self._oom.discard(cid)
        return [container_event("container.remove", cid, known, timestamp=timestamp)]

    def _on_rename(
        self,
        cid: str,
        known: KnownContainer,
        attributes: dict[str, Any],
        old_name: str | None,
        timestamp: str,
    ) -> list[Event]:
        old = old_name
        if old is None or old == known.name:
            raw = self._attribute(known, attributes, "oldName")
            old = raw.lstrip("/") if raw else None
        return [container_event("container.rename", cid, known, timestamp=timestamp, old_name=old)]
