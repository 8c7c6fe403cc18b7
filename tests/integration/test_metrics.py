"""The Prometheus endpoint of a running watcher, scraped for real; the alert rules under promtool."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.watcher_support import Watcher, wait_for

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"

pytestmark = pytest.mark.integration
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.fixture
def watcher_with_metrics(tmp_path):
    """A real watcher with metrics_port set (through DS01_METRICS_PORT)."""
    port = free_port()
    watcher = Watcher(
        tmp_path, tmp_path / "events.jsonl", tmp_path / "events.sock", tmp_path / "spool"
    )
    watcher.start(env={"DS01_METRICS_PORT": str(port)})
    # The endpoint starts with the last components, just after watcher.start is written.
    assert wait_for(lambda: listening(port)), watcher.stderr()
    yield watcher, port
    watcher.stop()


def test_scrape_a_running_watcher(watcher_with_metrics):
    """Events by type, rejections by reason, queue, fsync and start time, read from the service."""
    watcher, port = watcher_with_metrics
    before = time.time()
    for _ in range(3):
        watcher.send_event("maintenance.metrics_probe", n="1")
    watcher.send(b"this is not an event")
    assert wait_for(
        lambda: (
            scrape(port).get(("ds01_events_total", (("event_type", "maintenance.metrics_probe"),)))
            == 3
        )
    )
    assert wait_for(
        lambda: (
            sum(v for (n, _), v in scrape(port).items() if n == "ds01_ingest_rejected_total") >= 1
        )
    )
    samples = scrape(port)
    assert samples["ds01_events_total", (("event_type", "watcher.start"),)] == 1
    assert samples["ds01_events_written_total", ()] >= 4
    assert samples["ds01_sink_queue_depth", ()] == 0
    assert samples["ds01_sink_fsync_seconds_count", ()] >= 1
    assert samples["ds01_sink_fsync_seconds_sum", ()] > 0
    assert samples["ds01_ingest_accepted_total", ()] >= 3
    assert samples["ds01_spool_backlog_files", ()] == 0
    start = samples["ds01_watcher_start_time_seconds", ()]
    assert before - 60 < start <= time.time()
    assert ("ds01_watcher_info", (("version", "0.1.0"),)) in samples
    # The Docker source's counters are there (the shared dockerd answers in the test setup).
    assert samples.get(("ds01_docker_connections_total", ()), 0) >= 0


def test_spool_backlog_counts_waiting_files(watcher_with_metrics):
    """Files in the spool show up as backlog until the watcher drains them."""
    watcher, port = watcher_with_metrics
    assert wait_for(watcher.spool.is_dir)
    for n in range(4):
        (watcher.spool / f"stuck-{n}.tmp").write_text("half written\n")
    assert wait_for(lambda: scrape(port)["ds01_spool_backlog_files", ()] >= 4)


def test_listens_on_loopback_only(watcher_with_metrics):
    """The endpoint is bound to 127.0.0.1, not to every address."""
    _, port = watcher_with_metrics
    wanted = f"0100007F:{port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
                    listening.append(fields[1])
    assert listening == [wanted]


@needs_promtool
def test_alert_rules_check():
    """The real promtool check rules accepts the shipped rules."""
    out = subprocess.run(
        ["promtool", "check", "rules", str(RULES / "ds01-watcher.rules.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 6 rules found" in out.stdout


@needs_promtool
def test_alert_rules_unit_tests():
    """The real promtool test rules: each alert fires on its trouble and not on a healthy watcher."""
    out = subprocess.run(
        ["promtool", "test", "rules", "ds01-watcher.rules.test.yml"],
        capture_output=True, text=True, timeout=60, check=False, cwd=RULES,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
