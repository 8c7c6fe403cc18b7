"""Reconciliation: last known state against a full container listing. Pure.

Whatever changed without the event stream telling us becomes an inferred event
(``details.inferred: true``) stamped with the time it was found, not a guessed time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ds01_events.envelope import Event, make_event
from watcher.docker.container_events import (
    SOURCE,
    container_event,
    holding_events,
    release_events,
    stop_events,
    stop_reason,
)
from watcher.docker.times import timestamp_from_nanos

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from watcher.docker.container_events import DeviceResolver
    from watcher.docker.known_container import KnownContainer
    from watcher.docker.stream import EventKey


def reconcile(
    known: Mapping[str, KnownContainer],
    current: Mapping[str, KnownContainer],
    *,
    timestamp: str | None = None,
    resolve: DeviceResolver | None = None,
) -> list[Event]:
    """Inferred events that turn ``known`` into ``current`` (both keyed by container id).

    New container: detection.container_discovered (+ gpu.allocate if it runs
    holding GPUs, + container.start_failed if inspect says its start failed). Gone container:
    detection.container_exited (+ gpu.release if it was running with GPUs). A known
    container that stopped or started: container.stop / container.start with the
    GPU events.
    """
    events: list[Event] = []
    for cid, now in current.items():
        before = known.get(cid)
        if before is None:
            events.append(
                container_event(
                    "detection.container_discovered",
                    cid,
                    now,
                    timestamp=timestamp,
                    inferred=True,
                    running=now.running,
                    gpu_devices=list(now.gpu_devices),
                )
            )
            if now.running:
                events.extend(
                    holding_events(cid, now, timestamp=timestamp, inferred=True, resolve=resolve)
                )
            elif now.start_error:  # a `docker run` that failed while nobody watched
                events.append(
                    container_event(
                        "container.start_failed",
                        cid,
                        now,
                        timestamp=timestamp,
                        inferred=True,
                        exit_code=now.exit_code,
                        error=now.start_error,
                    )
                )
        elif before.running and not now.running:
            reason = stop_reason(
                oom=bool(now.oom_killed), kill_signal=None, killed=False, stop_signal=None
            )
            events.extend(
                stop_events(
                    cid,
                    now,
                    timestamp=timestamp,
                    inferred=True,
                    resolve=resolve,
                    held=before,
                    exit_code=now.exit_code,
                    oom=now.oom_killed,
                    signal=None,
                    reason=reason,
                    ran_s=now.ran_s,
                )
            )
        elif now.running and not before.running:
            events.append(
                container_event("container.start", cid, now, timestamp=timestamp, inferred=True)
            )
            events.extend(
                holding_events(cid, now, timestamp=timestamp, inferred=True, resolve=resolve)
            )
    for cid, before in known.items():
        if cid not in current:
            events.append(
                container_event(
                    "detection.container_exited",
                    cid,
                    before,
                    timestamp=timestamp,
                    inferred=True,
                    was_running=before.running,
                )
            )
            if before.running:
                events.extend(
                    release_events(cid, before, timestamp=timestamp, inferred=True, resolve=resolve)
                )
    return events


def gap_event(since_nano: int, until_nano: int, reason: str) -> Event:
    """watcher.gap: Docker events between the bounds may be missing from the log."""
    return make_event(
        "watcher.gap",
        source=SOURCE,
        details={
            "since": timestamp_from_nanos(since_nano),
            "until": timestamp_from_nanos(max(since_nano, until_nano)),
            "reason": reason,
            "stream": "docker",
        },
    )


def replay_gap(
    resume_nano: int | None,
    resume_keys: Collection[tuple[str, str]],
    subscribed_nano: int,
    first: EventKey | None,
) -> Event | None:
    """``watcher.gap`` when a replay since ``resume_nano`` may have missed events, else None.

    The replay is proven complete only when its first event is the last one seen
    (``since`` is inclusive): same time and one of the (id, action) pairs seen then.
    The gap runs to the first replayed event, or to the time of subscribing.
    """
    if resume_nano is None:
        return None  # first run ever: nothing to resume
    if (
        first is not None
        and first.time_nano == resume_nano
        and (first.actor_id, first.action) in resume_keys
    ):
        return None
    until = subscribed_nano if first is None else min(subscribed_nano, first.time_nano)
    return gap_event(
        resume_nano,
        until,
        "the Docker replay no longer holds the last event seen"
        " (dockerd restarted, or more than its 256 buffered events passed)",
    )
