"""The watchdog as a scheduler job: probe, decide, log, restart off the scheduler's thread.

`DcgmProbe.tick` is the job's function and returns at once: it starts `probe` (one fetch
bounded by ``timeout``, one decision, the events handed to the sink) on the watchdog's own
thread. A restart runs on its own daemon thread too, so the scheduler's other jobs never
wait for a hung exporter or a ``docker stop``. A tick while a probe or a restart is still
running is skipped (never two restarts at once, never two probes, no warning per tick).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ds01_events.envelope import make_event
from watcher.dcgm.metrics import UnreadableAnswer, read_exporter_answer
from watcher.dcgm.probe import MetricsUrl, ProbeAnswer, fetch_metrics, parse_metrics_url
from watcher.dcgm.restart import ExporterRestarter
from watcher.dcgm.watchdog import (
    ExporterWatchdog,
    Observation,
    RestartOutcome,
    RestartRequest,
    Step,
    WatchdogPolicy,
)
from watcher.sink import SOURCE

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import Settings
    from watcher.typing import Submit

# How the container's status reads when it is there but not serving.
_NOT_RUNNING = frozenset({"exited", "dead", "created", "removing"})


class DcgmProbe:
    """One exporter's watchdog. Thread-safe: `probe` may run beside a restart's thread."""

    name = "dcgm-probe"

    def __init__(
        self,
        url: str,
        submit: Submit,
        *,
        policy: WatchdogPolicy | None = None,
        timeout: float = 10.0,
        restarter: ExporterRestarter | None = None,
        expected_gpus: Callable[[], int | None] | None = None,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[MetricsUrl, float], ProbeAnswer] | None = None,
    ) -> None:
        self.url: MetricsUrl = parse_metrics_url(url)
        self.timeout = timeout
        self.watchdog = ExporterWatchdog(url, policy)
        self._submit = submit
        self._restarter = restarter
        self._expected_gpus = expected_gpus
        self._say = say or (lambda _line: None)
        self._clock = clock
        self._fetch = fetch or (lambda u, t: fetch_metrics(u, t, clock=clock))
        self._lock = threading.Lock()
        self._restart_thread: threading.Thread | None = None
        self._probe_thread: threading.Thread | None = None
        self.probes = 0
        self.skipped = 0  # ticks that found a probe or a restart still running
        self.restarts = 0  # restarts started since the watcher started

    # -- the job --------------------------------------------------------------------

    def tick(self) -> None:
        """Start one probe on its own thread, unless a probe or a restart is still running."""
        with self._lock:
            running = self._probe_thread is not None and self._probe_thread.is_alive()
            if running or self.watchdog.restarting is not None:
                self.skipped += 1
                return
            thread = threading.Thread(target=self._probe_guarded, name="dcgm-probe", daemon=True)
            self._probe_thread = thread
            thread.start()  # alive before the lock is let go: the next tick sees it

    def _probe_guarded(self) -> None:
        try:
            self.probe()
        except Exception as exc:  # a bug here must not end the watchdog for good
            self._say(f"dcgm: probe failed: {exc!r}")

    def probe(self) -> None:
        """Probe once and act on it; returns within about ``timeout`` seconds."""
        with self._lock:
            if self.watchdog.restarting is not None:
                return
        answer = self._fetch(self.url, self.timeout)
        self.probes += 1
        observation = self._observe(answer)
        with self._lock:
            step = self.watchdog.observe(self._clock(), observation)
        self._act(step)

    def wait_restart(self, timeout: float) -> bool:
        """Wait for a running restart to finish (tests, shutdown); True when none runs."""
        thread = self._restart_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # -- the parts ------------------------------------------------------------------

    def _observe(self, answer: ProbeAnswer) -> Observation:
        expected = self._expected()
        if answer.body is not None:
            try:
                reading = read_exporter_answer(answer.body)
            except UnreadableAnswer as exc:
                return Observation(took_s=answer.took_s, error=str(exc))
            return Observation(took_s=answer.took_s, reading=reading, expected_gpus=expected)
        down = answer.kind == "refused"
        error = answer.error
        if self._restarter is not None:
            status = self._restarter.container_state()
            if status in _NOT_RUNNING:
                down = True
                error = f"{error}; container {self._restarter.container} is {status}"
        return Observation(took_s=answer.took_s, error=error, down=down, expected_gpus=expected)

    def _expected(self) -> int | None:
        if self._expected_gpus is None:
            return None
        try:
            return self._expected_gpus()
        except Exception:  # the GPU side failing must not stop the probe
            return None

    def _act(self, step: Step) -> None:
        for event_type, details in step.events:
            self._emit(event_type, details)
        for line in step.say:
            self._say(line)
        if step.restart is not None:
            self._start_restart(step.restart)

    def _emit(self, event_type: str, details: dict[str, Any]) -> None:
        try:
            self._submit(make_event(event_type, source=SOURCE, details=details))
        except Exception as exc:  # a bad detail must not end the job
            self._say(f"dcgm: cannot log {event_type}: {exc}")

    def _start_restart(self, request: RestartRequest) -> None:
        restarter = self._restarter
        method = restarter.method() if restarter is not None else None
        if restarter is None or method is None:
            why = restarter.nothing_installed() if restarter else "no restart is configured"
            with self._lock:
                step = self.watchdog.restart_impossible(why)
            self._act(step)
            return

        def run() -> None:
            try:
                outcome = restarter.restart(method)
            except Exception as exc:  # restart() never raises; this is the last net
                outcome = RestartOutcome(method=method, took_s=0.0, ok=False, error=repr(exc))
            with self._lock:
                step = self.watchdog.restart_done(self._clock(), outcome)
            self._act(step)

        self._say(
            f"dcgm: restarting the exporter ({request.state}: {request.reason});"
            f" attempt {request.attempt} by {method}"
        )
        thread = threading.Thread(target=run, name="dcgm-restart", daemon=True)
        self._restart_thread = thread
        self.restarts += 1
        thread.start()

    def dcgm_exporter_status(self) -> dict[str, float]:
        """For the metrics endpoint: up (healthy or slow), restarts, given_up. Lock-free reads."""
        watchdog = self.watchdog
        return {
            "up": float(watchdog.state in ("healthy", "slow")),
            "restarts": float(self.restarts),
            "given_up": float(watchdog.gave_up),
        }


def dcgm_probe_from_settings(
    settings: Settings,
    submit: Submit,
    *,
    say: Callable[[str], None] | None = None,
    expected_gpus: Callable[[], int | None] | None = None,
) -> DcgmProbe | None:
    """Build the watchdog the settings ask for; None when ``dcgm_url`` is off."""
    if settings.dcgm_url is None:
        return None
    policy = WatchdogPolicy(
        hung_after=settings.dcgm_hung_after,
        slow_s=settings.dcgm_slow,
        collect_interval_s=settings.dcgm_collect_interval,
        grace_s=settings.dcgm_grace,
        backoff_max_s=settings.dcgm_backoff_max,
        restarts_per_hour=settings.dcgm_restarts_per_hour,
        stable_s=settings.dcgm_stable,
    )
    restarter = ExporterRestarter(
        unit=settings.dcgm_unit,
        container=settings.dcgm_container,
        stop_timeout=settings.dcgm_stop_timeout,
        docker_host=settings.docker_host,
    )
    return DcgmProbe(
        settings.dcgm_url,
        submit,
        policy=policy,
        timeout=settings.dcgm_timeout,
        restarter=restarter,
        expected_gpus=expected_gpus,
        say=say,
    )
