"""The Docker event source: dockerd's container events, mapped, attributed, never lost twice.

Two threads. The reader only reads ``/events`` and enqueues: dockerd silently drops
events for a subscriber that falls behind. The processor inspects, maps, submits,
persists the cursor, reconciles after every (re)connect and pings the daemon to find
a stream that died silently.

docker-py ends the event stream as if it were finished when the daemon goes away;
only ``stop()`` means stop. Without an engine the source says so once and retries
with capped, jittered backoff.
"""

from __future__ import annotations

import contextlib
import pwd
import queue
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.docker.cursor import DockerCursor, load_cursor, save_cursor
from watcher.docker.facts import LOOK_AHEAD, ContainerFacts
from watcher.docker.lifecycle import HANDLED_ACTIONS, ContainerLifecycle, network_container
from watcher.docker.reader import Connected, Item, RawEvent, StreamReader, why
from watcher.docker.reconcile import reconcile, replay_gap
from watcher.docker.stream import (
    EventKey,
    SeenKeys,
    base_action,
    event_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from concurrent.futures import Future

    from ds01_events.envelope import Event
    from watcher.docker.container_events import DeviceResolver
    from watcher.docker.known_container import KnownContainer
    from watcher.typing import Submit

SAVE_INTERVAL_S = 0.25
DURABLE_WAIT_S = 1.0
IDLE_POLL_S = 0.2
REPLAY_WAIT_S = 1.0
SETTLE_S = 0.1
LATENCY_SAMPLES = 20_000
WATERMARK_MARGIN_NS = 1_000_000_000


def _user_by_uid(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def _stderr(message: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"ds01-watcher docker: {message}\n")


def _logged_key(event: Event) -> tuple[str, str, str] | None:
    cid = event.details.get("container_id")
    if not isinstance(cid, str) or event.details.get("inferred"):
        return None
    return (cid, event.event_type, event.timestamp)


class DockerSource:
    """Component: Docker container events into ``submit``.

    ``already_logged`` are recent events of the log (its tail): after a crash the
    replay since the cursor re-delivers events the sink may already have written,
    and those are not submitted again. ``wait_durable(timeout)`` should return True
    once everything submitted so far is on disk (the sink's flush): the cursor is
    saved only then, so a crash never leaves it ahead of the log. Without it,
    ``submit`` is taken to be durable when it returns.
    """

    name = "docker"

    def __init__(
        self,
        submit: Submit,
        *,
        state_dir: Path,
        docker_host: str | None = None,
        already_logged: Iterable[Event] = (),
        backoff_cap_s: float = 30.0,
        ping_interval_s: float = 10.0,
        ping_timeout_s: float = 5.0,
        queue_limit: int = 200_000,
        wait_durable: Callable[[float], bool] | None = None,
        say: Callable[[str], None] = _stderr,
        user_by_uid: Callable[[int], str | None] | None = _user_by_uid,
        resolve_devices: DeviceResolver | None = None,
    ) -> None:
        self._submit = submit
        self._state_dir = Path(state_dir)
        self._docker_host = docker_host
        self._backoff_cap = backoff_cap_s
        self._ping_interval = ping_interval_s
        self._ping_timeout = ping_timeout_s
        self._ping_client: Any = None
        self._say = say
        self._wait_durable = wait_durable
        self._queue: queue.Queue[Item] = queue.Queue(queue_limit)
        self._ahead: deque[Item] = deque()
        self._stopping = threading.Event()
        self._stream_reader: StreamReader | None = None
        self._reader: threading.Thread | None = None
        self._processor: threading.Thread | None = None
        self._client: Any = None
        self._facts = ContainerFacts(self._api, docker_host)
        self._logged = {key for e in already_logged if (key := _logged_key(e)) is not None}

        cursor, problem = load_cursor(self._state_dir)
        if problem:
            say(problem)
        self._cursor = cursor or DockerCursor()
        self._lifecycle = ContainerLifecycle(
            self._cursor.containers, user_by_uid=user_by_uid, resolve_devices=resolve_devices
        )
        self._seen = SeenKeys()
        for cid, action in self._cursor.keys:
            self._seen.add(EventKey(self._cursor.time_nano, cid, action))
        # Where the reader resumes: the newest event it enqueued, else the time up to
        # which the source had seen everything (a source that never saw an event).
        self._resume_nano: int | None = None
        self._read_keys: set[tuple[str, str]] = set()
        if self._cursor.keys:
            self._resume_nano = self._cursor.time_nano
            self._read_keys = set(self._cursor.keys)
        elif self._cursor.watermark_nano:
            self._resume_nano = self._cursor.watermark_nano
        self._dirty = False
        # Set once a full listing has been reconciled: known_containers() is then complete.
        self.synced = False
        self._last_save = 0.0
        self._last_ping = 0.0
        self._tick = time.monotonic()
        self._progress = time.monotonic()
        self.submitted = 0
        self.refused = 0
        self.duplicates = 0
        self.gaps = 0
        self.connects = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.read_latencies_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    # -- Component ---------------------------------------------------------------

    def start(self) -> None:
        """Start the reader and processor threads; returns at once."""
        self._facts.start()
        self._stream_reader = StreamReader(
            self._queue,
            self._make_client,
            self._stopping,
            resume_nano=self._resume_nano,
            resume_keys=self._read_keys,
            backoff_cap_s=self._backoff_cap,
            say=self._say,
        )
        self._reader = threading.Thread(
            target=self._stream_reader.run, name="docker-reader", daemon=True
        )
        self._processor = threading.Thread(
            target=self._process_loop, name="docker-processor", daemon=True
        )
        self._processor.start()
        self._reader.start()

    def stop(self, timeout: float) -> None:
        """Stop reading, submit what was already read, save the cursor."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._stream_reader is not None:
            self._stream_reader.close_stream()
        for thread in (self._reader, self._processor):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._facts.stop()

    def healthy(self) -> bool:
        """Threads alive, processor looping, and queued events being handled."""
        now = time.monotonic()
        alive = all(t is not None and t.is_alive() for t in (self._reader, self._processor))
        backlog_moving = self._queue.empty() or now - self._progress < 30.0  # noqa: PLR2004
        looping = now - self._tick < 30.0  # noqa: PLR2004
        return alive and looping and backlog_moving and not self._stopping.is_set()

    def known_containers(self) -> dict[str, KnownContainer]:
        """A copy of what the source knows about every container, by full id (any thread)."""
        for _attempt in range(5):
            try:
                return dict(self._lifecycle.containers)
            except RuntimeError:  # resized by the processor meanwhile: copy again
                continue
        return {}

    def latency_summary(self, *, read: bool = False) -> dict[str, float]:
        """Return Docker event time to submit (or to read), in ms: count, p50, p99, max."""
        samples = sorted(self.read_latencies_ms if read else self.latencies_ms)
        if not samples:
            return {"count": 0}

        def pick(q: float) -> float:
            return round(samples[min(len(samples) - 1, int(q * len(samples)))], 1)

        return {
            "count": len(samples),
            "p50": pick(0.5),
            "p99": pick(0.99),
            "max": round(samples[-1], 1),
        }

    # -- reader ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the event stream is subscribed now."""
        return self._stream_reader is not None and self._stream_reader.connected

    @property
    def overflows(self) -> int:
        """How often the queue was full and the stream was replayed from the last event."""
        return self._stream_reader.overflows if self._stream_reader is not None else 0

    def _make_client(self, timeout: float = 30.0) -> Any:
        import docker  # noqa: PLC0415 - the service imports without the SDK loaded

        kwargs: dict[str, Any] = docker.utils.kwargs_from_env()
        if self._docker_host:
            kwargs["base_url"] = self._docker_host
        return docker.APIClient(version="auto", timeout=timeout, **kwargs)

    # -- processor ---------------------------------------------------------------

    def _next(self, timeout: float) -> Item | None:
        if not self._ahead:
            try:
                self._ahead.append(self._queue.get(timeout=timeout))
            except queue.Empty:
                return None
        self._look_ahead()
        return self._ahead.popleft()

    def _look_ahead(self) -> None:
        """Start inspecting created containers queued behind the current event.

        Inspects wait on dockerd's per-container lock; overlapping them keeps a
        burst from queueing one lock wait behind another. Order of handling and
        submitting is unchanged.
        """
        with contextlib.suppress(queue.Empty):
            while len(self._ahead) < LOOK_AHEAD:
                self._ahead.append(self._queue.get_nowait())
        for item in self._ahead:
            if isinstance(item, RawEvent) and not self._facts.prefetch(event_key(item.event)):
                return

    def _process_loop(self) -> None:
        while True:
            self._tick = time.monotonic()
            item = self._next(IDLE_POLL_S)
            if item is None:
                self._save(force=False)
                reader_done = self._reader is None or not self._reader.is_alive()
                if self._stopping.is_set() and reader_done:
                    break
                self._liveness_ping()
                continue
            try:
                if isinstance(item, Connected):
                    self._on_connected(item)
                else:
                    self._on_raw(item)
            except Exception as exc:  # one bad event must not end the audit trail
                self._say(f"could not handle a Docker event: {exc!r}")
            self._save(force=False)
        self._save(force=True)

    def _api(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _on_raw(self, item: RawEvent) -> None:
        raw = item.event
        key = event_key(raw)
        if key is None:
            return
        prefetched = self._facts.take(key)
        if not self._seen.add(key):
            self.duplicates += 1
            return
        self.read_latencies_ms.append((item.read_at_nano - key.time_nano) / 1e6)
        if base_action(key.action) in HANDLED_ACTIONS:
            inspect = None
            if self._lifecycle.needs_inspect(raw):
                inspect = self._inspect_for(raw, key, prefetched)
            for event in self._lifecycle.handle(raw, inspect):
                self._emit(event, key.time_nano)
        if key.time_nano != self._cursor.time_nano:
            self._cursor.keys = []
        self._cursor.time_nano = key.time_nano
        self._cursor.keys.append((key.actor_id, key.action))
        self._dirty = True
        self._progress = time.monotonic()

    def _inspect_for(
        self,
        raw: dict[str, Any],
        key: EventKey,
        prefetched: Future[dict[str, Any] | None] | None,
    ) -> dict[str, Any] | None:
        """Facts for an event: a network event's are its container's, not the network's."""
        if raw.get("Type") == "network":
            cid = network_container(raw)
            return self._facts.inspect(cid) if cid else None
        return prefetched.result() if prefetched is not None else self._facts.fetch(key)

    def _emit(self, event: Event, event_nano: int | None) -> None:
        logged = _logged_key(event)
        if logged is not None and logged in self._logged:
            self.duplicates += 1
            return
        if self._submit(event):
            self.submitted += 1
        else:
            self.refused += 1
        if event_nano is not None:
            self.latencies_ms.append((time.time_ns() - event_nano) / 1e6)

    def _on_connected(self, marker: Connected) -> None:
        self.connects += 1
        self._facts.find_docker_root()
        first = self._next(REPLAY_WAIT_S)
        if isinstance(first, Connected):  # that subscription died at once: use the new one
            self._ahead.appendleft(first)
            return
        if first is not None:
            self._ahead.appendleft(first)
        first_key = event_key(first.event) if isinstance(first, RawEvent) else None
        gap = replay_gap(marker.resume_nano, marker.resume_keys, marker.at_nano, first_key)
        if gap is not None:
            self.gaps += 1
            self._emit(gap, None)
        self._reconcile()

    def _reconcile(self) -> None:
        """List all containers and log what changed unseen, as inferred events."""
        listed_at = time.time_ns()
        try:
            listing = self._api().containers(all=True)
        except Exception as exc:
            self._say(f"cannot list containers to reconcile ({why(exc)})")
            return
        time.sleep(SETTLE_S)  # events from before the listing are read by now
        later = self._apply_events_before(listed_at)
        # A container with an event at or after the listing is left to that event.
        busy = {k.actor_id for i in later if isinstance(i, RawEvent) and (k := event_key(i.event))}
        known = {cid: c for cid, c in self._lifecycle.containers.items() if cid not in busy}
        current = self._facts.current_state(listing, known, busy, self._lifecycle.user_by_uid)
        for event in reconcile(known, current, resolve=self._lifecycle.resolve_devices):
            self._emit(event, None)
        for cid in known:
            self._lifecycle.containers.pop(cid, None)
        self._lifecycle.containers.update(current)
        self.synced = True
        self._dirty = True
        self._ahead.extendleft(reversed(later))

    def _drain(self) -> list[Item]:
        pending: list[Item] = list(self._ahead)
        self._ahead.clear()
        with contextlib.suppress(queue.Empty):
            while True:
                pending.append(self._queue.get_nowait())
        return pending

    def _apply_events_before(self, listed_at: int) -> list[Item]:
        """Handle queued events older than the listing; return the rest, in order."""
        pending = self._drain()
        for index, item in enumerate(pending):
            if not isinstance(item, RawEvent):
                return pending[index:]
            key = event_key(item.event)
            if key is not None and key.time_nano >= listed_at:
                return pending[index:]
            self._on_raw(item)
        return []

    def _liveness_ping(self) -> None:
        now = time.monotonic()
        if not self.connected or now - self._last_ping < self._ping_interval:
            return
        self._last_ping = now
        try:
            if self._ping_client is None:
                self._ping_client = self._make_client(self._ping_timeout)
            self._ping_client.ping()
        except Exception as exc:
            # A hung daemon leaves the stream silent, not closed: close it to reconnect.
            self._say(f"Docker engine does not answer a ping ({why(exc)}); reconnecting")
            self._client = None
            self._ping_client = None
            if self._stream_reader is not None:
                self._stream_reader.close_stream()

    def _save(self, *, force: bool) -> None:
        now = time.monotonic()
        if not self._dirty or (not force and now - self._last_save < SAVE_INTERVAL_S):
            return
        if self._wait_durable is not None and not self._wait_durable(DURABLE_WAIT_S):
            return  # what was submitted is not on disk yet: keep the older resume point
        self._cursor.containers = dict(self._lifecycle.containers)
        if self.connected and not self._ahead and self._queue.empty():
            # Caught up: everything dockerd published a moment ago has been handled.
            self._cursor.watermark_nano = time.time_ns() - WATERMARK_MARGIN_NS
        try:
            save_cursor(self._state_dir, self._cursor)
        except OSError as exc:
            self._say(f"cannot save the cursor in {self._state_dir} ({exc.strerror})")
            return
        self._dirty = False
        self._last_save = now
