"""WatcherCollector: reads plain counters at scrape time; hooks for the GPU and DCGM sides."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from watcher.config import Settings
from watcher.metrics import WatcherCollector


class GpuPoller:
    """A stand-in for the GPU side's component."""

    name = "gpu"

    def gpu_process_counts(self):
        """Processes by class."""
        return {"managed": 3, "host": 1}


class Watchdog:
    """A stand-in for the DCGM watchdog (a job's owner)."""

    def dcgm_exporter_status(self):
        """The exporter's state."""
        return {"up": 0, "restarts": 4, "given_up": 1}


class Broken:
    """A hook that fails must cost only its own metrics."""

    name = "broken"

    def gpu_process_counts(self):
        """Fails."""
        msg = "boom"
        raise RuntimeError(msg)


def fake_service(tmp_path):
    sink = SimpleNamespace(
        taken_by_type={"container.start": 2},
        written=2,
        dropped=0,
        pending=lambda: 5,
        queue_size=10,
        failing=None,
        syncs=1,
        sync_seconds=0.002,
    )
    return SimpleNamespace(
        sink=sink,
        rejects=SimpleNamespace(total={"rate_limited": 7}),
        ingest=SimpleNamespace(accepted=9),
        settings=Settings(spool_dir=str(tmp_path)),
        components=[sink, GpuPoller(), Broken()],
        job_owners=lambda: [Watchdog()],
    )


def render(tmp_path):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatcherCollector(fake_service(tmp_path), started=1700000000.0))
    return generate_latest(registry).decode()


def test_counters_are_read_at_scrape_time(tmp_path):
    """Events by type, rejections by reason, the queue and the start time come from the service."""
    (tmp_path / "waiting.json").write_text("{}")
    text = render(tmp_path)
    assert 'ds01_events_total{event_type="container.start"} 2.0' in text
    assert 'ds01_ingest_rejected_total{reason="rate_limited"} 7.0' in text
    assert "ds01_sink_queue_depth 5.0" in text
    assert "ds01_spool_backlog_files 1.0" in text
    assert "ds01_watcher_start_time_seconds 1.7e+09" in text


def test_gpu_and_dcgm_hooks(tmp_path):
    """Components and job owners with the hook methods add their metrics; a broken hook is skipped."""
    text = render(tmp_path)
    assert 'ds01_gpu_processes{class="host"} 1.0' in text
    assert 'ds01_gpu_processes{class="managed"} 3.0' in text
    assert "ds01_dcgm_exporter_up 0.0" in text
    assert "ds01_dcgm_exporter_restarts_total 4.0" in text
    assert "ds01_dcgm_exporter_given_up 1.0" in text


def test_metrics_are_off_until_configured():
    """metrics_port defaults to off."""
    assert Settings().metrics_port is None
