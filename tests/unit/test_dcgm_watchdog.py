"""The exporter watchdog's state machine, driven with plain observations and a fake clock."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.dcgm.metrics import ExporterReading
from watcher.dcgm.watchdog import (
    ExporterWatchdog,
    Observation,
    RestartOutcome,
    RestartRequest,
    WatchdogPolicy,
)

URL = "http://127.0.0.1:9400/metrics"
POLICY = WatchdogPolicy(
    hung_after=3,
    slow_s=5.0,
    collect_interval_s=30.0,
    grace_s=60.0,
    backoff_max_s=600.0,
    restarts_per_hour=4,
    stable_s=600.0,
)


def reading(*values: float) -> ExporterReading:
    """An answer with one energy counter per value (GPU-0, GPU-1, ...)."""
    return ExporterReading(energy_mj={f"GPU-{i}": v for i, v in enumerate(values)})


def whole(*values: float, took: float = 0.1, expected: int | None = None) -> Observation:
    """A whole answer."""
    return Observation(took_s=took, reading=reading(*values), expected_gpus=expected)


TIMEOUT = Observation(took_s=10.0, error="no whole answer within 10 s (no answer)")
REFUSED = Observation(took_s=0.0, error="connection refused", down=True)
DONE = RestartOutcome(method="docker", took_s=1.5, ok=True, killed=False)


class Run:
    """Drives one watchdog on a fake clock; restarts finish at once unless told otherwise."""

    def __init__(self, policy: WatchdogPolicy = POLICY, *, finish: bool = True) -> None:
        self.dog = ExporterWatchdog(URL, policy)
        self.now = 1000.0
        self.finish = finish
        self.events: list[tuple[float, str, dict[str, object]]] = []
        self.restarts: list[tuple[float, RestartRequest]] = []
        self.said: list[str] = []
        self.energy = 1e6

    def probe(self, obs: Observation, *, every: float = 30.0) -> None:
        """Observe ``obs`` at the current time, then move the clock by ``every``."""
        step = self.dog.observe(self.now, obs)
        self._record(step)
        if step.restart is not None:
            self.restarts.append((self.now, step.restart))
            if self.finish:
                self._record(self.dog.restart_done(self.now, DONE))
        self.now += every

    def moving(self, count: int = 1, *, took: float = 0.1, every: float = 30.0) -> None:
        """``count`` healthy answers with a moving counter."""
        for _ in range(count):
            self.energy += 1.8e6
            self.probe(whole(self.energy, took=took), every=every)

    def types(self) -> list[str]:
        """Event types so far, in order."""
        return [t for _n, t, _d in self.events]

    def _record(self, step: object) -> None:
        for event_type, details in step.events:  # type: ignore[attr-defined]
            self.events.append((self.now, event_type, details))
        self.said.extend(step.say)  # type: ignore[attr-defined]


def test_healthy_exporter_is_left_alone() -> None:
    """A hundred whole, fast answers with a moving counter log nothing and restart nothing."""
    run = Run()
    run.moving(100)
    assert run.events == []
    assert run.restarts == []
    assert run.dog.state == "healthy"


def test_hung_after_k_failures_one_event_then_restart() -> None:
    """K-1 timeouts say nothing; the K-th logs one scrape_failure (hung) and asks a restart."""
    run = Run(finish=False)
    run.moving()
    run.probe(TIMEOUT)
    run.probe(TIMEOUT)
    assert run.events == []
    run.probe(TIMEOUT)
    assert run.types() == ["monitoring.scrape_failure"]
    details = run.events[0][2]
    assert details["state"] == "hung"
    assert details["consecutive"] == 3
    assert details["url"] == URL
    assert "10 s" in str(details["error"])
    assert [r.attempt for _t, r in run.restarts] == [1]
    # While the restart runs, more failures ask for nothing and log nothing.
    for _ in range(5):
        run.probe(TIMEOUT)
    assert len(run.restarts) == 1
    assert run.types() == ["monitoring.scrape_failure"]


def test_restart_recovery_events_in_order_with_down_time() -> None:
    """Hung -> restart (ok) -> recovered, with down_s from the first failed probe."""
    run = Run()
    run.moving()
    first_failure = run.now
    for _ in range(3):
        run.probe(TIMEOUT)
    run.moving()
    assert run.types() == [
        "monitoring.scrape_failure",
        "monitoring.dcgm_restart",
        "monitoring.dcgm_recovered",
    ]
    restart = run.events[1][2]
    assert restart == {
        "url": URL,
        "reason": TIMEOUT.error,
        "state": "hung",
        "attempt": 1,
        "method": "docker",
        "took_s": 1.5,
        "ok": True,
        "killed": False,
        "gave_up": False,
    }
    recovered_at = run.events[2][0]
    assert run.events[2][2]["down_s"] == recovered_at - first_failure
    assert run.events[2][2]["state"] == "hung"


def test_refused_is_down_at_once() -> None:
    """A refused connection is down on the first probe and asks for a restart."""
    run = Run(finish=False)
    run.moving()
    run.probe(REFUSED)
    assert run.events[0][2]["state"] == "down"
    assert run.events[0][2]["consecutive"] == 1
    assert len(run.restarts) == 1


def test_frozen_counter_is_stale_after_three_collect_intervals() -> None:
    """An unchanged counter is fine for < 3 collect intervals and stale from 3 on."""
    run = Run(finish=False)
    for _ in range(3):  # seen at t, t+30, t+60: unchanged for 60 s
        run.probe(whole(5e6))
    assert run.events == []
    run.probe(whole(5e6))  # unchanged for 90 s = 3 x 30 s
    assert run.dog.state == "stale"
    assert run.events[0][2]["state"] == "stale"
    assert "GPU-0" in str(run.events[0][2]["error"])
    assert len(run.restarts) == 1


def test_one_frozen_gpu_among_moving_ones_is_stale() -> None:
    """One GPU's frozen counter makes the exporter stale even if the others move."""
    run = Run(finish=False)
    for i in range(5):
        run.probe(whole(1e6 + i * 1e6, 7e6))
    assert run.dog.state == "stale"
    assert "GPU-1" in str(run.dog.error)


def test_fewer_gpus_than_nvml_is_stale() -> None:
    """An answer with fewer GPUs than NVML reports is stale at once."""
    run = Run(finish=False)
    run.probe(whole(1e6, expected=2))
    assert run.dog.state == "stale"
    assert "1 GPUs in the answer, NVML reports 2" in str(run.dog.error)
    assert len(run.restarts) == 1


def test_slow_is_logged_not_restarted() -> None:
    """A whole answer over the soft threshold is slow: logged once, never restarted."""
    run = Run()
    run.moving()
    run.moving(5, took=7.0)
    assert run.types() == ["monitoring.scrape_failure"]
    assert run.events[0][2]["state"] == "slow"
    assert run.restarts == []
    run.moving()
    assert run.types()[-1] == "monitoring.dcgm_recovered"
    assert run.events[-1][2]["state"] == "slow"


def test_grace_period_hides_a_starting_exporter() -> None:
    """Refusals inside the grace period after a restart neither log nor restart."""
    run = Run()
    run.moving()
    for _ in range(3):
        run.probe(TIMEOUT)
    assert len(run.restarts) == 1
    run.now = run.restarts[0][0] + 1
    run.probe(REFUSED, every=20)  # +1 s
    run.probe(REFUSED, every=20)  # +21 s
    run.probe(REFUSED, every=20)  # +41 s
    assert run.types() == ["monitoring.scrape_failure", "monitoring.dcgm_restart"]
    assert len(run.restarts) == 1
    run.probe(REFUSED)  # +61 s: grace is over, down is news and restart 2 may start
    assert run.types()[-2:] == ["monitoring.scrape_failure", "monitoring.dcgm_restart"]
    assert run.events[-2][2]["state"] == "down"
    assert len(run.restarts) == 2


def test_backoff_doubles_up_to_its_cap() -> None:
    """Restarts of an exporter that stays hung come grace, 2x, 4x ... apart, capped."""
    policy = WatchdogPolicy(
        hung_after=1, grace_s=10.0, backoff_max_s=80.0, restarts_per_hour=100, stable_s=600.0
    )
    run = Run(policy)
    for _ in range(400):
        run.probe(TIMEOUT, every=1.0)
    times = [t for t, _r in run.restarts]
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [10, 20, 40, 80, 80]
    assert [r.attempt for _t, r in run.restarts] == list(range(1, len(times) + 1))


def test_hourly_cap_gives_up_once_then_healthy_resets() -> None:
    """After the cap: one gave_up event, nothing more; healthy clears it, stable resets counts."""
    policy = WatchdogPolicy(
        hung_after=1, grace_s=10.0, backoff_max_s=20.0, restarts_per_hour=3, stable_s=300.0
    )
    run = Run(policy)
    for _ in range(120):  # ten minutes of a hung exporter, a probe every 5 s
        run.probe(TIMEOUT, every=5.0)
    assert len(run.restarts) == 3
    gave_up = [d for _t, e, d in run.events if e == "monitoring.dcgm_restart" and d["gave_up"]]
    assert len(gave_up) == 1
    assert gave_up[0]["attempt"] == 4
    assert gave_up[0]["ok"] is False
    assert any("giving up" in line for line in run.said)
    assert run.dog.gave_up
    # Healthy again: the give-up ends; the hour's count holds until a stable stretch.
    run.moving(every=5.0)
    assert not run.dog.gave_up
    assert run.types()[-1] == "monitoring.dcgm_recovered"
    assert run.events[-1][2]["restarts"] == 3
    run.probe(TIMEOUT, every=5.0)
    assert len(run.restarts) == 3  # still three in the last hour: gave up again
    assert sum(1 for _t, e, d in run.events if e == "monitoring.dcgm_restart" and d["gave_up"]) == 2
    run.moving(70, every=5.0)  # 350 s healthy > stable_s
    run.probe(TIMEOUT, every=5.0)
    assert len(run.restarts) == 4
    assert run.restarts[-1][1].attempt == 1


def test_nothing_to_restart_is_said_once() -> None:
    """With nothing installed, the watchdog says so once and stops asking until an answer."""
    run = Run(finish=False)
    run.probe(REFUSED)
    assert len(run.restarts) == 1
    step = run.dog.restart_impossible("no unit and no container")
    assert len(step.say) == 1
    assert "no unit and no container" in step.say[0]
    for _ in range(50):
        run.probe(REFUSED)
    assert len(run.restarts) == 1
    assert run.types() == ["monitoring.scrape_failure"]
    assert run.dog.restart_impossible("again").say == []


def test_stale_with_nothing_to_restart_is_said_once() -> None:
    """Whole but frozen answers and nothing to restart: one line, however many probes."""
    run = Run(finish=False)
    said: list[str] = []
    for _ in range(40):
        before = len(run.restarts)
        run.probe(whole(5e6))
        if len(run.restarts) > before:
            said += run.dog.restart_impossible("nothing installed").say
    assert run.dog.state == "stale"
    assert len(said) == 1
    assert len(run.restarts) == 1


def test_failed_restart_is_logged_with_its_error() -> None:
    """A restart that failed says ok false and why; the next waits for the backoff."""
    dog = ExporterWatchdog(URL, POLICY)
    step = dog.observe(0.0, REFUSED)
    assert step.restart is not None
    failed = RestartOutcome(method="systemd", took_s=2.0, ok=False, error="unit failed")
    done = dog.restart_done(2.0, failed)
    assert done.events[0][1]["ok"] is False
    assert done.events[0][1]["error"] == "unit failed"
    assert any("failed" in line for line in done.say)


def test_kill_is_said_on_stderr_too() -> None:
    """killed: true in the event and a line about Xid 119/120 on stderr."""
    dog = ExporterWatchdog(URL, POLICY)
    dog.observe(0.0, REFUSED)
    done = dog.restart_done(1.0, RestartOutcome(method="docker", took_s=21, ok=True, killed=True))
    assert done.events[0][1]["killed"] is True
    assert any("killed" in line for line in done.say)


OBSERVATIONS = st.sampled_from(["ok", "frozen", "timeout", "refused", "slow", "few"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(OBSERVATIONS, st.floats(min_value=0.5, max_value=400.0)), max_size=150),
    st.booleans(),
)
def test_invariants_over_any_sequence(
    sequence: list[tuple[str, float]], restarts_fail: bool
) -> None:
    """Any probes at any times: cap per hour, no overlap, spacing, one event per change."""
    policy = WatchdogPolicy(
        # stable_s out of reach: no healthy stretch resets the hour's count here.
        hung_after=2,
        grace_s=30.0,
        backoff_max_s=240.0,
        restarts_per_hour=3,
        stable_s=1e9,
    )
    dog = ExporterWatchdog(URL, policy)
    now, energy = 0.0, 1.0
    starts: list[float] = []
    states: list[object] = []
    outcome = RestartOutcome(method="docker", took_s=1.0, ok=not restarts_fail)
    for kind, gap in sequence:
        energy += 1.0 if kind != "frozen" else 0.0
        obs = {
            "ok": whole(energy),
            "frozen": whole(energy),
            "slow": whole(energy, took=6.0),
            "few": whole(energy, expected=2),
            "timeout": TIMEOUT,
            "refused": REFUSED,
        }[kind]
        before = dog.state
        step = dog.observe(now, obs)
        failures = [d["state"] for e, d in step.events if e == "monitoring.scrape_failure"]
        # One event per change of state, never one per probe.
        assert failures in ([], [dog.state])
        assert not failures or before != dog.state
        states.extend(failures)
        if step.restart is not None:
            assert dog.restarting is not None
            starts.append(now)
            dog.restart_done(now + 1.0, outcome)
        now += gap
    for i, start in enumerate(starts):
        in_hour = [s for s in starts[: i + 1] if start - s < 3600]
        assert len(in_hour) <= policy.restarts_per_hour
    for a, b in itertools.pairwise(starts):
        assert b - a >= policy.grace_s


def test_every_detail_key_is_in_the_catalogue() -> None:
    """The events the watchdog logs use only the keys `ds01-events types` documents."""
    from ds01_events.catalogue import EVENT_TYPES

    policy = WatchdogPolicy(hung_after=1, grace_s=1.0, restarts_per_hour=1, stable_s=1e9)
    dog = ExporterWatchdog(URL, policy)
    seen: dict[str, set[str]] = {}
    failed = RestartOutcome(method="docker", took_s=1.0, ok=False, killed=None, error="x")
    now = 0.0
    for obs in [whole(1.0), whole(2.0, took=9.0), TIMEOUT, TIMEOUT, TIMEOUT, whole(3.0)]:
        step = dog.observe(now, obs)
        if step.restart is not None:
            step.events += dog.restart_done(now, failed).events
        for event_type, details in step.events:
            seen.setdefault(event_type, set()).update(details)
        now += 5.0
    assert set(seen) == {
        "monitoring.scrape_failure",
        "monitoring.dcgm_restart",
        "monitoring.dcgm_recovered",
    }
    for event_type, keys in seen.items():
        assert keys <= set(EVENT_TYPES[event_type].details), (event_type, keys)
