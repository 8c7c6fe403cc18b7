"""Docker container events to audit events. Pure: plain dicts in, envelopes out.

dockerd copies a container's labels over the event attributes, so a label named
``exitCode``, ``signal`` or ``oldName`` forges them (``image`` and ``name`` are set
after the labels and stay true). Facts therefore come from ``inspect`` and from
what this module tracked itself; an attribute is used only when no label of the
same name exists.

``kill`` and ``stop`` produce no event of their own: they are folded into the
``container.stop`` logged at ``die`` (``reason`` stopped/killed, ``signal`` as a
number, ``ran_s``).

A ``docker start`` that fails (a missing command, say) is ``container.start_failed``
with ``exit_code`` and dockerd's ``error``. dockerd 20.10 emits no container event
for it at all, only a ``network`` ``disconnect`` naming the container; newer ones may
emit ``die`` without ``start``. Both are caught: a die, or a disconnect of a container
that did not die since its start, is checked with inspect (``State.Error``); a
container gone before inspect (``docker run --rm``) counts when it joined a network
and left it with no start between.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watcher.docker.container_events import (
    container_event,
    holding_events,
    signal_number,
    stop_events,
    stop_reason,
)
from watcher.docker.known_container import (
    MAX_ERROR,
    KnownContainer,
    known_from_event,
    known_from_inspect,
)
from watcher.docker.stream import base_action, event_key
from watcher.docker.times import docker_time_nanos, ran_seconds, timestamp_from_nanos

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
        "connect",  # network events: a start begins with connect; on dockerd 20.10 a
        "disconnect",  # failed start ends with disconnect and no container event
    }
)
_SIMPLE = {
    "pause": "container.pause",
    "unpause": "container.unpause",
    "restart": "container.restart",
}


def network_container(event: Mapping[str, Any]) -> str | None:
    """The container a ``network`` event names (``Actor.Attributes.container``), or None."""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    cid = attributes.get("container") if isinstance(attributes, dict) else None
    return cid if isinstance(cid, str) and cid else None


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
        # Containers that died since their last start: their network disconnect is no news.
        self._died: set[str] = set()
        # Containers that joined a network (a start begins so) and have not started since.
        self._attempts: set[str] = set()
        self._event_nano = 0

    def needs_inspect(self, event: Mapping[str, Any]) -> bool:
        """Whether handling ``event`` wants fresh inspect data.

        Always at create (GPU devices and cgroup parent are not in the event) and for
        a container not seen before. At die only when a label named ``exitCode``
        forges the attribute: inspect takes the container lock, which dockerd holds
        through a start or stop, so it is the slow path under load. OOM state comes
        from the ``oom`` event dockerd emits before ``die``.
        """
        action = base_action(str(event.get("Action") or ""))
        if event.get("Type") == "network":
            cid = network_container(event)
            known = self.containers.get(cid) if cid else None
            disconnect = base_action(str(event.get("Action") or "")) == "disconnect"
            return disconnect and known is not None and not known.running and cid not in self._died
        if action not in HANDLED_ACTIONS or action in {"destroy", "disconnect"}:
            return False
        actor_id = str((event.get("Actor") or {}).get("ID") or "")
        known = self.containers.get(actor_id)
        if action == "create" or known is None:
            return True
        # A die of a container never seen running is a failed start: inspect has the error.
        return action == "die" and ("exitCode" in known.label_keys or not known.running)

    def handle(
        self, event: Mapping[str, Any], inspect: Mapping[str, Any] | None = None
    ) -> list[Event]:
        """Audit events for one Docker event (empty for noise). Never raises on odd input."""
        key = event_key(dict(event))
        action = base_action(key.action) if key else ""
        if key is None or action not in HANDLED_ACTIONS:
            return []
        self._event_nano = key.time_nano
        if event.get("Type") == "network":
            return self._on_network(action, network_container(event), inspect, key.time_nano)
        cid = key.actor_id
        attributes = dict((event.get("Actor") or {}).get("Attributes") or {})
        previous = self.containers.get(cid)
        old_name = previous.name if previous is not None else None
        timestamp = timestamp_from_nanos(key.time_nano)
        # Only our own tracking says "running" here: a container first met at this
        # event has its state from inspect, which already shows the start.
        unseen = (
            self._unseen_stop(cid, previous, timestamp)
            if previous is not None and action in ("start", "destroy")
            else []
        )
        known = self._refresh(cid, event, inspect, attributes)
        if action == "rename":
            return self._on_rename(cid, known, attributes, old_name, timestamp)
        handler = getattr(self, f"_on_{action}", None)
        if handler is not None:
            result: list[Event] = handler(cid, known, attributes, inspect, timestamp)
            return [*unseen, *result]
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
        known.started_nano = self._event_nano
        self._first_kill.pop(cid, None)
        self._last_signal.pop(cid, None)
        self._oom.discard(cid)
        self._died.discard(cid)
        self._attempts.discard(cid)
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
        was_running = known.running
        self._died.add(cid)
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
        # Only dockerd's own word makes a die a failed start: a start the stream lost
        # (its replay buffer overran) also leaves a die with no start before it.
        error = state.get("Error") if isinstance(state.get("Error"), str) else ""
        if error and not was_running:
            return self._start_failed(cid, known, timestamp, exit_code, error)
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
        return stop_events(
            cid,
            known,
            timestamp=timestamp,
            resolve=self.resolve_devices,
            exit_code=exit_code,
            oom=oom,
            signal=signal_number(signal),
            reason=reason,
            ran_s=self._ran_s(known, state),
        )

    def _ran_s(self, known: KnownContainer, state: Mapping[str, Any]) -> float | None:
        """How long the run took: inspect's own bounds, else start event to die event."""
        exact = ran_seconds(
            docker_time_nanos(state.get("StartedAt")), docker_time_nanos(state.get("FinishedAt"))
        )
        return exact if exact is not None else ran_seconds(known.started_nano, self._event_nano)

    def _start_failed(
        self,
        cid: str,
        known: KnownContainer,
        timestamp: str,
        exit_code: int | None,
        error: str | None,
    ) -> list[Event]:
        known.running = False
        known.start_error = error
        self._oom.discard(cid)
        self._first_kill.pop(cid, None)
        self._last_signal.pop(cid, None)
        return [
            container_event(
                "container.start_failed",
                cid,
                known,
                timestamp=timestamp,
                exit_code=exit_code,
                error=error[:MAX_ERROR] if error else None,
            )
        ]

    def _on_network(
        self, action: str, cid: str | None, inspect: Mapping[str, Any] | None, time_nano: int
    ) -> list[Event]:
        """Network events only matter for the start they begin or a failed start's end."""
        if action == "connect" and cid in self.containers:
            if not self.containers[cid].running:
                self._attempts.add(cid)
            return []
        if action == "disconnect" and cid is not None:
            return self._network_disconnect(cid, inspect, time_nano)
        return []

    def _network_disconnect(
        self, cid: str | None, inspect: Mapping[str, Any] | None, time_nano: int
    ) -> list[Event]:
        """A container left a network: news only when it did not die since its start.

        inspect's ``State.Error`` says the start failed. A container already gone
        (``docker run --rm``) cannot be inspected: it failed when it joined a network
        and left it with no start between.
        """
        known = self.containers.get(cid) if cid else None
        attempted = cid in self._attempts
        self._attempts.discard(cid or "")
        if cid is None or known is None or known.running or cid in self._died:
            self._died.discard(cid or "")
            return []
        state = (inspect or {}).get("State") or {}
        error = state.get("Error")
        gone = inspect is None and attempted
        if not gone and (state.get("Running") or not isinstance(error, str) or not error):
            return []
        self._died.add(cid)  # one trace per failed start, even if a die follows
        code = state.get("ExitCode")
        exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        known.exit_code = exit_code
        stamp = timestamp_from_nanos(time_nano)
        return self._start_failed(cid, known, stamp, exit_code, error or None)

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
        self._died.discard(cid)
        self._attempts.discard(cid)
        self._first_kill.pop(cid, None)
        self._last_signal.pop(cid, None)
        self._oom.discard(cid)
        return [container_event("container.remove", cid, known, timestamp=timestamp)]

    def _unseen_stop(self, cid: str, known: KnownContainer, timestamp: str) -> list[Event]:
        """An inferred stop (and release) for a container still thought running, else nothing.

        A start or a destroy of a container we think runs means its die fell into a
        gap: dockerd restarted, killing it, and then restarted it (a restart policy)
        or it was removed before the stream was back. Reason and exit code are not
        known, so they are null, not guessed; the release keeps the GPU count true.
        """
        if not known.running:
            return []
        known.running = False
        return stop_events(
            cid,
            known,
            timestamp=timestamp,
            inferred=True,
            resolve=self.resolve_devices,
            exit_code=None,
            oom=None,
            signal=None,
            reason=None,
            ran_s=None,
        )

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
