"""The thread that reads dockerd's event stream: subscribe, read, enqueue, nothing else.

dockerd silently drops events for a subscriber that does not take them in time, so
this thread never waits on disk, on inspect or on the sink. docker-py ends the
stream as if it were finished when the daemon goes away; only the stop flag means
stop. Reconnects use capped, jittered backoff, and an outage is reported once.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watcher.docker.stream import ChunkDecoder, event_key, since_arg

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


@dataclass(frozen=True)
class Connected:
    """The reader subscribed; events after this marker come from that subscription."""

    at_nano: int
    resume_nano: int | None  # None: first run ever, nothing to resume
    resume_keys: frozenset[tuple[str, str]]  # events seen at resume_nano; empty: a watermark


@dataclass(frozen=True)
class RawEvent:
    """One event as dockerd sent it, and when it was read."""

    event: dict[str, Any]
    read_at_nano: int


Item = Connected | RawEvent


EVENT_FILTERS = {"type": ["container", "network"]}


def why(exc: BaseException) -> str:
    """Return the first line of an exception's text, bounded, for a one-line message."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


class StreamReader:
    """Subscribes (resuming from the newest event read) and feeds ``items``."""

    def __init__(
        self,
        items: queue.Queue[Item],
        make_client: Callable[[], Any],
        stopping: threading.Event,
        *,
        resume_nano: int | None,
        resume_keys: Iterable[tuple[str, str]],
        backoff_cap_s: float,
        say: Callable[[str], None],
    ) -> None:
        self._items = items
        self._make_client = make_client
        self._stopping = stopping
        self._resume_nano = resume_nano
        self._resume_keys = set(resume_keys)
        self._backoff_cap = backoff_cap_s
        self._say = say
        self._stream: Any = None
        self._lock = threading.Lock()
        self.connected = False
        self.overflows = 0

    def run(self) -> None:
        """Read until the stop flag is set; never raises."""
        failures = 0
        outage_reported = False
        while not self._stopping.is_set():
            try:
                if self._subscribe_and_read(outage_reported=outage_reported):
                    failures, outage_reported = 0, False
            except Exception as exc:
                if not self._stopping.is_set() and not outage_reported:
                    self._say(
                        f"no Docker engine answers ({why(exc)}); still serving scripts' events,"
                        f" retrying every {self._backoff_cap:.0f} s at most. Start dockerd, or"
                        " point --docker-host / DS01_DOCKER_HOST at it"
                    )
                    outage_reported = True
            finally:
                self.connected = False
                self.close_stream()
            failures += 1
            delay = min(self._backoff_cap, 0.2 * 2 ** min(failures, 10))
            self._stopping.wait(random.uniform(delay / 2, delay))  # noqa: S311 - jitter only

    def _subscribe_and_read(self, *, outage_reported: bool) -> bool:
        client = self._make_client()
        since = since_arg(self._resume_nano) if self._resume_nano else None
        # Network events too: on dockerd 20.10 a failed start shows only as a disconnect.
        stream = client.events(since=since, filters=EVENT_FILTERS, decode=False)
        with self._lock:
            self._stream = stream
        if self._stopping.is_set():
            return False
        connected_at = time.time_ns()
        self._wait_for_room()
        self._items.put(Connected(connected_at, self._resume_nano, frozenset(self._resume_keys)))
        if self._resume_nano is None:
            self._resume_nano = connected_at
        self.connected = True
        if outage_reported:
            self._say("Docker engine answers again; resuming the event stream")
        self._pump(stream)
        if not self._stopping.is_set():
            self._say("Docker event stream ended; reconnecting")
        return True

    def _wait_for_room(self) -> None:
        # After an overflow, reconnect only once the processor has caught up a little.
        while self._items.full() and not self._stopping.wait(0.1):
            pass

    def _pump(self, stream: Iterable[bytes]) -> None:
        decoder = ChunkDecoder()
        for chunk in stream:
            now = time.time_ns()
            for raw in decoder.feed(chunk):
                try:
                    self._items.put_nowait(RawEvent(raw, now))
                except queue.Full:
                    # Resume from the last event enqueued: the replay brings the rest.
                    self.overflows += 1
                    self._say("event queue full; reconnecting to replay from the last event")
                    return
                key = event_key(raw)
                if key is not None:
                    if key.time_nano != self._resume_nano:
                        self._resume_keys = set()
                    self._resume_keys.add((key.actor_id, key.action))
                    self._resume_nano = key.time_nano
            if self._stopping.is_set():
                return

    def close_stream(self) -> None:
        """Close the current stream (unblocks a read in progress); safe from any thread."""
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
