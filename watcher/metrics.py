"""The Prometheus endpoint: the service's own counters, read at scrape time.

``metrics_port`` (off until set) serves /metrics on 127.0.0.1 from prometheus_client's
own daemon thread. Nothing on the hot paths calls into this module: the collector
reads counters the sink, the ingest socket and the Docker source already keep, as
plain ints and dict copies, without taking any lock those paths hold, so a slow
scrape can never stall an event.

Hook points for the GPU and DCGM sides: any component (or job function's owner)
with ``gpu_process_counts() -> Mapping[str, int]`` (processes by class) or
``dcgm_exporter_status() -> Mapping[str, float]`` (keys ``up``, ``restarts``,
``given_up``) is asked at scrape time; a failing hook costs its metrics only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from watcher import __version__

if TYPE_CHECKING:
    from watcher.config import Settings
    from watcher.intake.ingest import IngestServer, RejectCounter
    from watcher.sink import Sink
    from watcher.typing import Component


class ObservedService(Protocol):
    """What the collector reads of the running service (the Service, without importing it)."""

    settings: Settings
    sink: Sink
    rejects: RejectCounter
    ingest: IngestServer | None
    components: list[Component]

    def job_owners(self) -> list[object]:
        """The objects behind the scheduled jobs, for the GPU and DCGM hooks."""


BIND = "127.0.0.1"


class WatcherCollector:
    """Reads the running service's counters on each scrape."""

    def __init__(self, service: ObservedService, started: float | None = None) -> None:
        self._service = service
        self._started = time.time() if started is None else started

    def describe(self) -> list[Metric]:
        """No fixed description: the families depend on what is running."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every family, built from the counters as they are now."""
        yield from self._watcher()
        yield from self._sink()
        yield from self._ingest()
        yield from self._docker()
        yield from self._hooks()

    def _watcher(self) -> Iterator[Metric]:
        start = GaugeMetricFamily(
            "ds01_watcher_start_time_seconds", "When this watcher process started (Unix time)."
        )
        start.add_metric([], self._started)
        yield start
        info = InfoMetricFamily("ds01_watcher", "The running watcher's version.")
        info.add_metric([], {"version": __version__})
        yield info

    def _sink(self) -> Iterator[Metric]:
        sink = self._service.sink
        by_type = CounterMetricFamily(
            "ds01_events",
            "Events handed to the log writer, by type.",
            labels=["event_type"],
        )
        for event_type, count in sorted(dict(sink.taken_by_type).items()):
            by_type.add_metric([event_type], count)
        yield by_type
        yield _counter("ds01_events_written", "Events written to the log.", sink.written)
        yield _counter(
            "ds01_events_refused", "Events refused because the queue was full.", sink.dropped
        )
        yield _gauge("ds01_sink_queue_depth", "Events accepted, not yet written.", sink.pending())
        yield _gauge("ds01_sink_queue_capacity", "The writer's queue size.", sink.queue_size)
        yield _gauge(
            "ds01_sink_failing", "1 while the log cannot be written.", int(bool(sink.failing))
        )
        fsync = SummaryMetricFamily(
            "ds01_sink_fsync_seconds", "Time spent in fdatasync, one per batch written."
        )
        fsync.add_metric([], count_value=sink.syncs, sum_value=sink.sync_seconds)
        yield fsync

    def _ingest(self) -> Iterator[Metric]:
        service = self._service
        rejected = CounterMetricFamily(
            "ds01_ingest_rejected",
            "Datagrams and spool entries refused, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(dict(service.rejects.total).items()):
            rejected.add_metric([reason], count)
        yield rejected
        if service.ingest is not None:
            yield _counter(
                "ds01_ingest_accepted", "Datagrams taken from the socket.", service.ingest.accepted
            )
        yield _gauge(
            "ds01_spool_backlog_files",
            "Files waiting in the spool directory.",
            spool_backlog(service.settings.spool_dir),
        )

    def _docker(self) -> Iterator[Metric]:
        for component in self._service.components:
            if getattr(component, "name", "") != "docker":
                continue
            connects = int(getattr(component, "connects", 0))
            yield _counter(
                "ds01_docker_connections", "Subscriptions to the Docker event stream.", connects
            )
            yield _counter(
                "ds01_docker_reconnects",
                "Subscriptions after the first (the stream was lost).",
                max(0, connects - 1),
            )
            yield _counter(
                "ds01_docker_gaps",
                "Windows the replay could not cover (watcher.gap written).",
                int(getattr(component, "gaps", 0)),
            )
            yield _counter(
                "ds01_docker_events",
                "Docker events turned into log events.",
                int(getattr(component, "submitted", 0)),
            )

    def _hooks(self) -> Iterator[Metric]:
        gpu = GaugeMetricFamily(
            "ds01_gpu_processes", "Processes on GPUs now, by class.", labels=["class"]
        )
        dcgm: dict[str, float] = {}
        for owner in [*self._service.components, *self._service.job_owners()]:
            counts = _ask(owner, "gpu_process_counts")
            for kind, count in sorted(counts.items()):
                gpu.add_metric([str(kind)], float(count))
            dcgm.update(_ask(owner, "dcgm_exporter_status"))
        yield gpu
        if dcgm:
            yield _gauge(
                "ds01_dcgm_exporter_up", "1 while the exporter answers.", dcgm.get("up", 0)
            )
            yield _counter(
                "ds01_dcgm_exporter_restarts",
                "Restarts of the exporter by the watchdog.",
                dcgm.get("restarts", 0),
            )
            yield _gauge(
                "ds01_dcgm_exporter_given_up",
                "1 when the watchdog stopped restarting it (cap reached).",
                dcgm.get("given_up", 0),
            )


def _ask(owner: object, method: str) -> Mapping[str, Any]:
    hook = getattr(owner, method, None)
    if hook is None:
        return {}
    try:
        answer = hook()
    except Exception:  # a broken hook costs its own metrics, not the scrape
        return {}
    return answer if isinstance(answer, Mapping) else {}


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text)
    family.add_metric([], value)
    return family


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text)
    family.add_metric([], value)
    return family


def spool_backlog(spool_dir: str) -> int:
    """Regular files in the spool (its quarantine folder is not counted)."""
    try:
        with os.scandir(spool_dir) as entries:
            return sum(1 for e in entries if e.is_file(follow_symlinks=False))
    except OSError:
        return 0


class MetricsServer:
    """The /metrics endpoint on 127.0.0.1; `stop` shuts it down."""

    def __init__(self, service: ObservedService, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(WatcherCollector(service))
        self._server, self._thread = start_http_server(port, addr=BIND, registry=self.registry)
        self.port = int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving (the thread is a daemon; this only closes the socket in time)."""
        self._server.shutdown()
        self._server.server_close()
