"""The exporter watchdog's decisions: pure, fed with observations and the time.

States: ``healthy``; ``slow`` (a whole answer, over the soft threshold); ``stale`` (a GPU's
energy counter unchanged over ``stale_intervals`` collect intervals, or fewer GPUs than
NVML reports); ``hung`` (``hung_after`` probes in a row without a whole answer); ``down``
(refused, or the container is not running). Hung, stale and down ask for a restart, within
a grace period after each restart, a capped exponential backoff, and a cap per hour after
which it gives up until the exporter is healthy again. A healthy stretch of ``stable_s``
forgets the backoff and the hour's count.

Nothing here does IO or reads a clock: `observe` and `restart_done` take ``now`` (monotonic
seconds) and return a `Step` saying which events to log and whether to restart.
"""

from __future__ import annotations

import collections
from typing import Any, Literal

import msgspec

from watcher.dcgm.metrics import ExporterReading  # noqa: TC001 - msgspec needs it at run time

State = Literal["healthy", "slow", "stale", "hung", "down"]
RESTART_STATES: frozenset[str] = frozenset({"stale", "hung", "down"})
HOUR_S = 3600.0


class WatchdogPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The thresholds; defaults are the watcher's."""

    hung_after: int = 3
    slow_s: float = 5.0
    collect_interval_s: float = 30.0
    stale_intervals: int = 3
    grace_s: float = 60.0
    backoff_max_s: float = 1800.0
    restarts_per_hour: int = 4
    stable_s: float = 600.0

    def backoff_s(self, attempt: int) -> float:
        """Seconds after restart number ``attempt`` (1, 2, ...) before the next may start."""
        return float(min(self.grace_s * 2 ** max(attempt - 1, 0), self.backoff_max_s))


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """One probe, as the watchdog needs it."""

    took_s: float
    reading: ExporterReading | None = None  # set when the answer came whole and parsed
    error: str | None = None
    down: bool = False  # refused, or the container is not running
    expected_gpus: int | None = None  # what NVML reports, when known


class RestartRequest(msgspec.Struct, frozen=True):
    """Restart the exporter now (the caller runs it off the scheduler's thread)."""

    reason: str
    state: str
    attempt: int


class RestartOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a restart did."""

    method: str
    took_s: float
    ok: bool
    killed: bool | None = False  # None: could not tell
    error: str | None = None


LoggedEvent = tuple[str, dict[str, Any]]


class Step(msgspec.Struct):
    """The result of one decision: events to log, lines to say, a restart to run."""

    events: list[LoggedEvent] = msgspec.field(default_factory=list)
    say: list[str] = msgspec.field(default_factory=list)
    restart: RestartRequest | None = None


class ExporterWatchdog:
    """The state machine. Not thread-safe: the caller holds one lock around each call."""

    def __init__(self, url: str, policy: WatchdogPolicy | None = None) -> None:
        self.url = url
        self.policy = policy or WatchdogPolicy()
        self.state: State | None = None  # None until the first probe
        self.error: str | None = None
        self.consecutive = 0  # probes in a row without a whole answer
        self.attempt = 0  # restarts since the last stable healthy stretch
        self.restarting: RestartRequest | None = None
        self.gave_up = False
        self.cannot_restart = False  # nothing installed to restart
        self._energy: dict[str, tuple[float, float]] = {}  # uuid -> (value, changed at)
        self._restarts: collections.deque[float] = collections.deque()
        self._bad_since: float | None = None
        self._first_failure: float | None = None
        self._healthy_since: float | None = None
        self._grace_until = float("-inf")
        self._next_restart = float("-inf")

    def restarts_last_hour(self, now: float) -> int:
        """Restarts started in the hour before ``now``."""
        while self._restarts and now - self._restarts[0] >= HOUR_S:
            self._restarts.popleft()
        return len(self._restarts)

    def in_grace(self, now: float) -> bool:
        """True while a restarted exporter is still given time to come up."""
        return now < self._grace_until

    # -- decisions ------------------------------------------------------------------

    def observe(self, now: float, obs: Observation) -> Step:
        """Take one probe; return what to log and whether to restart."""
        step = Step()
        new_state, error = self._judge(now, obs)
        if new_state in RESTART_STATES and self.in_grace(now):
            # A restarted exporter is still starting: neither a new state nor a restart yet.
            return step
        self._transition(now, new_state, error, step)
        if new_state in ("healthy", "slow"):
            self._maybe_forget(now)
        elif self.restarting is None and not self.cannot_restart and not self.gave_up:
            self._maybe_restart(now, step)
        return step

    def restart_done(self, now: float, outcome: RestartOutcome) -> Step:
        """Record a finished restart; start its grace period and backoff."""
        step = Step()
        request = self.restarting
        if request is None:
            return step
        self.restarting = None
        self._grace_until = now + self.policy.grace_s
        self._next_restart = now + self.policy.backoff_s(request.attempt)
        self.consecutive = 0
        self._first_failure = None
        self._energy.clear()  # a new exporter: its counters are judged afresh
        details: dict[str, Any] = {
            "url": self.url,
            "reason": request.reason,
            "state": request.state,
            "attempt": request.attempt,
            "method": outcome.method,
            "took_s": round(outcome.took_s, 3),
            "ok": outcome.ok,
            "killed": outcome.killed,
            "gave_up": False,
        }
        if outcome.error:
            details["error"] = outcome.error
        step.events.append(("monitoring.dcgm_restart", details))
        if outcome.killed:
            step.say.append(
                f"dcgm: the exporter ignored the graceful stop and had to be killed"
                f" ({outcome.method}); on MIG GPUs check for Xid 119/120"
            )
        if not outcome.ok:
            step.say.append(f"dcgm: restart {request.attempt} failed: {outcome.error}")
        return step

    def restart_impossible(self, reason: str) -> Step:
        """Nothing is installed to restart: say so once; ask again only after it was healthy."""
        self.restarting = None
        self.attempt = max(self.attempt - 1, 0)
        if self._restarts:
            self._restarts.pop()
        step = Step()
        if not self.cannot_restart:
            step.say.append(f"dcgm: {self.url} is {self.state} and {reason}")
        self.cannot_restart = True
        return step

    # -- the parts ------------------------------------------------------------------

    def _judge(self, now: float, obs: Observation) -> tuple[State, str | None]:
        reading = obs.reading
        if reading is None:
            self.consecutive += 1
            if self._first_failure is None:
                self._first_failure = now
            if obs.down:
                return "down", obs.error
            if self.consecutive >= self.policy.hung_after:
                return "hung", obs.error
            # Not hung yet: the state stays what it was (a first probe counts as healthy).
            return (self.state or "healthy"), (self.error if self.state else None)
        self.consecutive = 0
        self._first_failure = None
        stale = self._stale(now, reading, obs.expected_gpus)
        if stale is not None:
            return "stale", stale
        if obs.took_s > self.policy.slow_s:
            return "slow", f"whole answer took {obs.took_s:.1f} s (over {self.policy.slow_s:g} s)"
        return "healthy", None

    def _stale(self, now: float, reading: ExporterReading, expected: int | None) -> str | None:
        energy = reading.energy_mj
        for uuid, value in energy.items():
            seen = self._energy.get(uuid)
            if seen is None or seen[0] != value:
                self._energy[uuid] = (value, now)
        for uuid in set(self._energy) - set(energy):
            del self._energy[uuid]
        if not energy:
            return "no GPU series (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION) in the answer"
        if expected is not None and len(energy) < expected:
            return f"{len(energy)} GPUs in the answer, NVML reports {expected}"
        limit = self.policy.stale_intervals * self.policy.collect_interval_s
        frozen = sorted(
            (now - since, uuid)
            for uuid, (_value, since) in self._energy.items()
            if now - since >= limit
        )
        if frozen:
            age, uuid = frozen[-1]
            more = f" (and {len(frozen) - 1} more)" if len(frozen) > 1 else ""
            return f"energy counter of {uuid}{more} unchanged for {age:.0f} s"
        return None

    def _transition(self, now: float, new: State, error: str | None, step: Step) -> None:
        old = self.state
        self.state = new
        self.error = error
        if new == old:
            return
        if new in ("healthy", "slow"):
            self.gave_up = False
            self.cannot_restart = False  # installed since, perhaps: ask again next time
            if old in RESTART_STATES or (old == "slow" and new == "healthy"):
                since = self._bad_since if self._bad_since is not None else now
                step.events.append(
                    (
                        "monitoring.dcgm_recovered",
                        {
                            "url": self.url,
                            "state": old,
                            "down_s": round(now - since, 3),
                            "restarts": self.attempt,
                        },
                    )
                )
            if old in RESTART_STATES or old is None:
                self._healthy_since = now
            if new == "slow":
                self._bad_since = now
        if new in RESTART_STATES:
            if old not in RESTART_STATES:
                self._bad_since = self._first_failure if self._first_failure is not None else now
            self._healthy_since = None
        if new != "healthy":
            step.events.append(
                (
                    "monitoring.scrape_failure",
                    {
                        "url": self.url,
                        "state": new,
                        "error": error,
                        "consecutive": self.consecutive,
                    },
                )
            )

    def _maybe_forget(self, now: float) -> None:
        since = self._healthy_since
        if since is not None and now - since >= self.policy.stable_s:
            self.attempt = 0
            self._restarts.clear()
            self._next_restart = float("-inf")

    def _maybe_restart(self, now: float, step: Step) -> None:
        if now < self._next_restart:
            return  # backing off
        state = self.state or "down"
        reason = self.error or state
        if self.restarts_last_hour(now) >= self.policy.restarts_per_hour:
            self.gave_up = True
            step.events.append(
                (
                    "monitoring.dcgm_restart",
                    {
                        "url": self.url,
                        "reason": reason,
                        "state": state,
                        "attempt": self.attempt + 1,
                        "method": "none",
                        "took_s": 0.0,
                        "ok": False,
                        "killed": False,
                        "gave_up": True,
                    },
                )
            )
            step.say.append(
                f"dcgm: {self.policy.restarts_per_hour} restarts in the last hour and the"
                f" exporter is still {state}: giving up until it answers fully again"
                " (or the watcher restarts)"
            )
            return
        self.attempt += 1
        self._restarts.append(now)
        self.restarting = RestartRequest(reason=reason, state=state, attempt=self.attempt)
        step.restart = self.restarting
