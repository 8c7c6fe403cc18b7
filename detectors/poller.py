"""Runs NVML polls where a hung one can be abandoned, with a deadline and a backoff.

A hung NVML call sits in the kernel and cannot be interrupted, so each poll runs in
its own daemon thread: a daemon thread is never joined at exit (a pool's threads are,
which would block shutdown forever), so the service still stops on SIGTERM.

``NvmlPoller.poll`` answers one ``PollResult``:

- ``ok``: a snapshot (some GPUs may still be ``failed`` or ``lost``);
- ``hung``: this poll passed its deadline; said once (``report``), the thread is left
  alone, and no second poll starts while it lives;
- ``busy``: the hung poll still has not returned; nothing was asked;
- ``unavailable``: NVML as a whole cannot be used (the snapshot's ``error`` says why).
  ``report`` is set on the first such result (per reason) only; after it NVML is asked again only
  once the backoff (doubling from ``backoff_s`` up to ``max_backoff_s``) has passed.

``report`` tells the caller to write its one line (``monitoring.nvml_unresponsive``,
or NVML unavailable); every other result of the same state repeats nothing.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Literal

import msgspec

from detectors.nvml import NvmlReader

if TYPE_CHECKING:
    from collections.abc import Callable

    from detectors.snapshot import NvmlSnapshot

PollState = Literal["ok", "unavailable", "hung", "busy"]


class PollResult(msgspec.Struct, frozen=True, kw_only=True):
    """One ``NvmlPoller.poll``; ``snapshot`` is ``None`` for ``hung`` and ``busy``."""

    state: PollState
    snapshot: NvmlSnapshot | None = None
    report: bool = False
    reason: str | None = None
    #: how long the stuck poll has been running (``hung``/``busy``)
    stuck_for_s: float | None = None


class _Attempt:
    """One poll in its daemon thread; ``snapshot`` is set when (if ever) it returns."""

    def __init__(self, read: Callable[[], NvmlSnapshot], started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.snapshot: NvmlSnapshot | None = None
        self.thread = threading.Thread(
            target=self._run, args=(read,), name="nvml-poll", daemon=True
        )
        self.thread.start()

    def _run(self, read: Callable[[], NvmlSnapshot]) -> None:
        try:
            self.snapshot = read()
        finally:
            self.done.set()


class NvmlPoller:
    """Polls NVML with a deadline; ``poll`` never raises nor blocks past ``timeout_s``.

    One caller at a time (an APScheduler job with ``max_instances=1``).
    """

    def __init__(
        self,
        timeout_s: float = 10.0,
        *,
        backoff_s: float = 30.0,
        max_backoff_s: float = 900.0,
        reader: NvmlReader | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._reader = reader if reader is not None else NvmlReader()
        self._monotonic = monotonic
        self._stuck: _Attempt | None = None
        self._unavailable: NvmlSnapshot | None = None
        self._retry_at = 0.0
        self._next_backoff = backoff_s

    def poll(self) -> PollResult:
        """One poll, or why there is none (see the module docstring)."""
        now = self._monotonic()
        if self._stuck is not None:
            if not self._stuck.done.is_set():
                return PollResult(
                    state="busy",
                    reason="an earlier NVML poll has not returned",
                    stuck_for_s=now - self._stuck.started,
                )
            # It came back at last; what it saw is stale, so ask afresh below.
            self._stuck = None
        if self._unavailable is not None and now < self._retry_at:
            return PollResult(
                state="unavailable", snapshot=self._unavailable, reason=self._unavailable.error
            )
        attempt = _Attempt(self._reader.read, now)
        if not attempt.done.wait(self.timeout_s) or attempt.snapshot is None:
            if attempt.done.is_set():  # the reader raised: it promises not to
                return PollResult(state="unavailable", reason="NVML poll failed", report=True)
            self._stuck = attempt
            return PollResult(
                state="hung",
                report=True,
                reason=f"NVML did not answer within {self.timeout_s:g} s",
                stuck_for_s=self._monotonic() - now,
            )
        return self._settle(attempt.snapshot)

    def _settle(self, snapshot: NvmlSnapshot) -> PollResult:
        if snapshot.error is None:
            self._unavailable = None
            self._next_backoff = self._backoff_s
            return PollResult(state="ok", snapshot=snapshot)
        # Said once per reason: a different reason (driver unloaded, then mismatched) is news.
        first = self._unavailable is None or self._unavailable.error != snapshot.error
        self._unavailable = snapshot
        self._retry_at = self._monotonic() + self._next_backoff
        self._next_backoff = min(self._next_backoff * 2, self._max_backoff_s)
        return PollResult(
            state="unavailable", snapshot=snapshot, report=first, reason=snapshot.error
        )

    @property
    def stuck(self) -> bool:
        """Whether a poll is hung right now."""
        return self._stuck is not None and not self._stuck.done.is_set()
