"""Noticing a stall: a loop that should turn every second or so and did not.

The process stopped (SIGSTOP, a frozen VM), a write stuck on a hung disk, a reader
starved: while it lasts nothing can be logged, so it is logged when it ends, as one
``watcher.stall`` with its duration. Each loop beats on the monotonic clock, which
keeps running while the process is stopped; a beat later than the loop's own
longest wait plus the threshold is a stall. Several loops see the same stop of the
whole process: overlapping stalls are reported once.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ds01_events.envelope import make_event, utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.typing import Submit

SOURCE = "ds01-watcher"


class StallWatch:
    """Collects stalls from every loop; submits one ``watcher.stall`` per stretch."""

    def __init__(
        self,
        submit: Submit,
        threshold_seconds: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._submit = submit
        self.threshold_seconds = threshold_seconds
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._reported_until = float("-inf")
        self.reported = 0

    def loop(self, component: str, longest_wait: float) -> StallBeat:
        """Return the beat for one loop that waits at most ``longest_wait`` s between turns."""
        return StallBeat(self, component, longest_wait)

    def _report(self, component: str, began: float, ended: float) -> None:
        with self._lock:
            if began < self._reported_until:
                self._reported_until = max(self._reported_until, ended)
                return  # part of a stall another loop has reported
            self._reported_until = ended
            self.reported += 1
        seconds = ended - began
        until = self._wall() - (self._clock() - ended)
        self._submit(
            make_event(
                "watcher.stall",
                source=SOURCE,
                details={
                    "component": component,
                    "seconds": round(seconds, 3),
                    "since": utc_timestamp(until - seconds),
                    "until": utc_timestamp(until),
                    "reason": "the process or one of its loops did not run (stopped,"
                    " frozen, or waiting on a hung disk); events may have waited or been"
                    " refused meanwhile",
                },
            )
        )


class StallBeat:
    """One loop's heartbeat. Call `beat` once per turn, from that loop only."""

    def __init__(self, watch: StallWatch, component: str, longest_wait: float) -> None:
        self._watch = watch
        self.component = component
        self._allowed = longest_wait + watch.threshold_seconds
        self._last = watch._clock()  # noqa: SLF001 - the same clock, one owner

    def beat(self) -> None:
        """Note one turn; report the stall if the last turn was too long ago."""
        now = self._watch._clock()  # noqa: SLF001 - see __init__
        if now - self._last > self._allowed:
            self._watch._report(self.component, self._last, now)  # noqa: SLF001
        self._last = now
