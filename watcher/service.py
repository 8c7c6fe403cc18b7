"""The composition root: builds the service from one Settings object and runs it.

Parts, in start order: the sink (the only writer), ``watcher.start`` (and a
``watcher.gap`` when the previous run did not end with ``watcher.stop``), the ingest
socket, a first spool drain, the APScheduler scheduler (spool drain, rejection
reports, the jobs `default_job_factories` builds such as the DCGM exporter watchdog, and
any job added with `Service.add_job`), the extra components (the Docker event source),
then READY=1. Stop runs in reverse and ends with ``watcher.stop`` and a flushed, synced
log, within ``stop_timeout_seconds`` whatever a part does.

Signals only leave a note (`watcher.signals`); the main loop acts on them, and
notices its own stalls (SIGSTOP, a frozen machine) by the monotonic clock.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from apscheduler.schedulers.background import BackgroundScheduler

from ds01_events.envelope import make_event, utc_timestamp
from watcher import __version__
from watcher.docker.source import DockerSource
from watcher.gpu.directory import DeviceDirectory
from watcher.gpu.wiring import SourceSlot, gpu_monitor
from watcher.intake.ingest import IngestServer, RejectCounter, open_ingest_socket
from watcher.intake.ratelimit import RateLimiter
from watcher.intake.spool import SpoolDrain, ensure_spool_dir
from watcher.last_run import Marker, find_last_run, gap_event, mark_running, mark_stopped
from watcher.log_tail import read_recent_events
from watcher.sdnotify import Notifier
from watcher.signals import SignalInbox, take_early
from watcher.sink import SOURCE, Sink
from watcher.stall import StallWatch
from watcher.typing import Component, EventLog, Submit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.config import Settings
    from watcher.gpu.monitor import GpuMonitor
    from watcher.metrics import MetricsServer

# Builds one extra part (the Docker event source) around the sink's submit.
ComponentFactory = Callable[[EventLog], Component]
# Builds one periodic job around the sink and the service's stderr line; None: not wanted.
JobFactory = Callable[[EventLog, Callable[[str], None]], "Job | None"]


def default_components(
    settings: Settings,
    *,
    devices: DeviceDirectory | None = None,
    slot: SourceSlot | None = None,
) -> list[ComponentFactory]:
    """Return the extra parts `ds01-watcher run` starts after the sink and ingest.

    ``devices`` lets gpu.allocate/gpu.release name NVML's devices; ``slot`` receives
    the Docker source, for the GPU job's container facts.
    """

    def docker_source(log: EventLog) -> Component:
        source = DockerSource(
            log.submit,
            state_dir=Path(settings.state_dir),
            docker_host=settings.docker_host,
            # After a crash the replay re-delivers what the log may already hold.
            already_logged=read_recent_events(Path(settings.events_file)),
            # The cursor moves only past events on disk: kill -9 loses nothing queued.
            wait_durable=log.wait_durable,
            resolve_devices=devices.resolve if devices is not None else None,
        )
        if slot is not None:
            slot.source = source
        return source

    return [docker_source]


def default_job_factories(
    settings: Settings, devices: DeviceDirectory | None = None
) -> list[JobFactory]:
    """Return the periodic jobs `ds01-watcher run` adds (the DCGM exporter watchdog).

    With ``devices`` (what NVML last saw), an exporter serving fewer GPUs is stale.
    """

    def dcgm_watchdog(log: EventLog, say: Callable[[str], None]) -> Job | None:
        from watcher.dcgm.job import dcgm_probe_from_settings  # noqa: PLC0415 - only when on

        expected = devices.gpu_count if devices is not None else None
        probe = dcgm_probe_from_settings(settings, log.submit, say=say, expected_gpus=expected)
        if probe is None:
            return None
        return Job(probe.name, probe.tick, settings.dcgm_interval, run_at_start=True)

    return [dcgm_watchdog]


@dataclass(frozen=True)
class Job:
    """A periodic job for the scheduler; runs in a pool thread, never concurrently with itself."""

    name: str
    func: Callable[[], object]
    interval_seconds: float
    run_at_start: bool = False


class Service:
    """The running watcher. Build, then `run()` (blocks until SIGTERM/SIGINT)."""

    def __init__(
        self,
        settings: Settings,
        *,
        extra_components: Sequence[ComponentFactory] = (),
        jobs: Sequence[Job] = (),
        job_factories: Sequence[JobFactory] = (),
        notifier: Notifier | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self._stderr = stderr or sys.stderr
        self.notifier = notifier or Notifier()
        self.sink = Sink(
            settings.events_file,
            queue_size=settings.queue_size,
            batch_max=settings.batch_max,
            group=settings.log_group,
            stderr=self._stderr,
        )
        self.submit: Submit = self.sink.submit
        self.stalls = StallWatch(self.submit, settings.stall_report_seconds)
        self.sink.watch_stalls(self.stalls)
        self.rejects = RejectCounter(self.submit, settings.reject_window_seconds)
        self.spool = SpoolDrain(
            settings.spool_dir,
            self.submit,
            self.rejects.add,
            max_bytes=settings.spool_max_bytes,
            # A file that could never fit the queue would wait for room forever.
            max_lines=min(settings.spool_max_lines, settings.queue_size),
            has_room=lambda n: self.sink.pending() + n <= settings.queue_size,
        )
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        self._factories = list(extra_components)
        self._jobs = [
            Job("spool-drain", self.spool.drain, settings.spool_interval_seconds),
            Job("ingest-rejects", self.rejects.tick, min(5.0, settings.reject_window_seconds)),
            *jobs,
        ]
        for make_job in job_factories:
            job = make_job(self.sink, self.say)
            if job is not None:
                self._jobs.append(job)
        self.ingest: IngestServer | None = None
        self.components: list[Component] = []
        self.metrics: MetricsServer | None = None
        self.activated = False
        self._signals: SignalInbox | None = None
        self._stopping = False
        self._stop_reason = "stopped"
        # More STATUS= text from jobs (GPU polling: what the last poll saw).
        self.status_parts: list[Callable[[], str | None]] = []

    def add_job(self, job: Job) -> None:
        """Plug a periodic job in before `run` (GPU poll, DCGM probe, reconciliation)."""
        self._jobs.append(job)

    def say(self, message: str) -> None:
        """One line on stderr (the journal under systemd)."""
        try:
            self._stderr.write(f"ds01-watcher: {message}\n")
            self._stderr.flush()
        except (OSError, ValueError):
            return

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start every part; raise OSError if the socket cannot be had."""
        settings = self.settings
        state_dir = Path(settings.state_dir)
        last_run = find_last_run(Path(settings.events_file), state_dir)
        self.sink.seen_ids(list(last_run.ids))
        self.sink.start()
        sock, self.activated = open_ingest_socket(settings.socket)
        started = utc_timestamp()
        self.submit(
            make_event(
                "watcher.start",
                source=SOURCE,
                timestamp=started,
                details={
                    "version": __version__,
                    "pid": os.getpid(),
                    "socket_activated": self.activated,
                    "settings": settings.summary(),
                },
            )
        )
        gap = gap_event(last_run, started)
        if gap is not None:
            self.submit(gap)
            self.say(
                "the previous run did not end with watcher.stop: logged a watcher.gap"
                f" since {gap.details['since']}"
            )
        problem = mark_running(state_dir, Marker(pid=os.getpid(), started=started))
        if problem:
            self.say(f"cannot leave the run marker ({problem}); an unclean stop may go unnoticed")
        limiter = RateLimiter(
            settings.rate_per_second,
            settings.rate_burst,
            exempt=frozenset(settings.rate_exempt_uids),
        )
        self.ingest = IngestServer(
            sock,
            self.submit,
            limiter,
            self.rejects,
            stall=self.stalls.loop("ingest", 0.25),
            # Room for a whole stretch of 64 datagrams and the watcher's own events.
            has_room=lambda: self.sink.pending() + 256 <= settings.queue_size,
        )
        self.ingest.start()
        try:
            ensure_spool_dir(settings.spool_dir)
        except OSError as exc:
            self.say(f"cannot create the spool directory {settings.spool_dir}: {exc.strerror}")
        for job in self._jobs:
            # APScheduler 3 reads next_run_time=None as "paused": pass it only to run
            # at once, and let the trigger pick the first run otherwise.
            first_run = {"next_run_time": _now()} if job.run_at_start else {}
            self.scheduler.add_job(
                _guarded(job, self.say),
                "interval",
                seconds=job.interval_seconds,
                id=job.name,
                name=job.name,
                **first_run,
            )
        _guarded(Job("spool-drain", self.spool.drain, 0), self.say)()
        self.scheduler.start()
        self.components = [self.sink, self.ingest]
        for factory in self._factories:
            component = factory(self.sink)
            component.start()
            self.components.append(component)
        self._serve_metrics()
        self.notifier.ready(self.status_line())

    def _serve_metrics(self) -> None:
        port = self.settings.metrics_port
        if port is None:
            return
        from watcher.metrics import MetricsServer  # noqa: PLC0415 - only when configured

        try:
            self.metrics = MetricsServer(self, port)
        except OSError as exc:  # the audit trail matters more than its metrics
            self.say(
                f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror}; set a free metrics_port"
            )

    def job_owners(self) -> list[object]:
        """The objects behind the scheduled jobs (bound methods), for metric hooks."""
        return [owner for job in self._jobs if (owner := getattr(job.func, "__self__", None))]

    def healthy(self) -> bool:
        """Every component is making progress and the scheduler runs."""
        return bool(self.scheduler.running) and all(c.healthy() for c in self.components)

    def status_line(self) -> str:
        """Return a short STATUS= text."""
        line = (
            f"{self.sink.written} events written, {self.sink.pending()} pending,"
            f" {self.sink.dropped} refused, {sum(self.rejects.total.values())} rejected"
        )
        if self.sink.failing:
            line += f"; log not writable: {self.sink.failing}"
        for part in self.status_parts:
            try:
                text = part()
            except Exception:  # a status helper must not cost the watchdog ping
                text = None
            if text:
                line += f"; {text}"
        return line

    def request_stop(self, reason: str = "stopped") -> None:
        """Ask `run` to stop (from any thread)."""
        self._stop_reason = reason
        self._stopping = True
        if self._signals is not None:
            self._signals.wake()

    def stop(self) -> None:
        """Stop every part in reverse order; the log ends with ``watcher.stop``.

        Bounded: each step gets its share of ``stop_timeout_seconds`` and none may
        take more than what is left, so a hung part cannot hold the stop.
        """
        timeout = self.settings.stop_timeout_seconds
        deadline = time.monotonic() + timeout

        def left(share: float) -> float:
            return max(0.05, min(share, deadline - time.monotonic()))

        self.notifier.stopping()
        if self.metrics is not None:
            self.metrics.stop()
        for component in reversed(self.components[2:]):
            self._stop_component(component, left(timeout / 2))
        if self.scheduler.running:
            _bounded(lambda: self.scheduler.shutdown(wait=True), left(timeout / 8))
        if self.ingest is not None:
            self.ingest.stop(left(timeout / 4))
        self.submit(
            make_event(
                "watcher.stop",
                source=SOURCE,
                details={"version": __version__, "reason": self._stop_reason},
            )
        )
        self.sink.stop(left(timeout))
        if self.sink.pending() == 0 and not self.sink.failing:
            mark_stopped(Path(self.settings.state_dir))

    def _stop_component(self, component: Component, timeout: float) -> None:
        def stop() -> None:
            try:
                component.stop(timeout)
            except Exception as exc:  # one part failing to stop must not keep the log open
                self.say(f"{component.name} did not stop cleanly: {exc!r}")

        if not _bounded(stop, timeout + 0.5):
            self.say(f"{component.name} did not stop within {timeout:.1f} s; going on")

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop. Returns the exit status."""
        early = take_early()
        inbox = early or SignalInbox()
        inbox.install()
        self._signals = inbox
        try:
            return self._serve(inbox)
        finally:
            self._signals = None
            if early is None:  # in a test or an embedding program: put things back
                inbox.restore()
                inbox.close()
            # else the process ends next (watcher.entry): a SIGHUP still arriving
            # must stay a note, not end it with its default action first.

    def _serve(self, inbox: SignalInbox) -> int:
        try:
            self.start()
        except OSError as exc:
            self.say(f"cannot start: {exc.strerror or exc}")
            self.sink.stop(self.settings.stop_timeout_seconds)
            return 1
        self.say(
            f"serving {self.settings.socket}"
            f"{' (socket activation)' if self.activated else ''}, writing"
            f" {self.settings.events_file}"
        )
        tick = min(self.notifier.watchdog / 2 if self.notifier.watchdog else 5.0, 1.0)
        beat = self.stalls.loop("main", tick)
        try:
            while not self._stopping:
                arrived = inbox.wait(tick)
                beat.beat()
                if signal.SIGHUP in arrived:
                    self.sink.reopen()
                    self.say("SIGHUP: reopening the log")
                for signum in (signal.SIGTERM, signal.SIGINT):
                    if signum in arrived:
                        self._stop_reason = signal.Signals(signum).name
                        self._stopping = True
                if self._stopping:
                    break
                if self.healthy():
                    self.notifier.alive()
                self.notifier.status(self.status_line())
        finally:
            self.stop()
        return 0


def _now() -> Any:
    from datetime import datetime, timezone  # noqa: PLC0415 - only at scheduling time

    return datetime.now(tz=timezone.utc)


def _guarded(job: Job, say: Callable[[str], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            job.func()
        except Exception as exc:  # a failing job must not kill the scheduler thread
            say(f"job {job.name} failed: {exc!r}")

    return run


def _bounded(func: Callable[[], object], seconds: float) -> bool:
    """Run ``func`` on a daemon thread; True if it returned within ``seconds``."""
    worker = threading.Thread(target=func, name="ds01-stop-step", daemon=True)
    worker.start()
    worker.join(seconds)
    return not worker.is_alive()


def run_service(
    settings: Settings,
    extra_components: Sequence[ComponentFactory] | None = None,
    jobs: Sequence[Job] = (),
    job_factories: Sequence[JobFactory] | None = None,
) -> int:
    """Build the service and run it until it is told to stop.

    ``extra_components`` defaults to `default_components(settings)`, ``job_factories``
    to `default_job_factories(settings)`. GPU polling (a job) is added unless
    ``settings.gpu`` is off or NVML's binding is missing.
    """
    devices = DeviceDirectory()
    slot = SourceSlot()
    if extra_components is None:
        extra_components = default_components(settings, devices=devices, slot=slot)
    if job_factories is None:
        job_factories = default_job_factories(settings, devices)
    service = Service(
        settings, extra_components=extra_components, jobs=jobs, job_factories=job_factories
    )
    monitor = gpu_monitor(settings, service.submit, say=service.say, devices=devices, slot=slot)
    if monitor is not None:
        service.add_job(gpu_job(settings, monitor))
        service.status_parts.append(monitor.status)
    return service.run()


def gpu_job(settings: Settings, monitor: GpuMonitor) -> Job:
    """The GPU poll as a job: at start (so a missing NVML is said at once), then each interval."""
    return Job("gpu-poll", monitor.poll_once, settings.gpu_interval_seconds, run_at_start=True)
