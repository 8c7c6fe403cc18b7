"""The DCGM watchdog against a stand-in exporter on the real dockerd."""

from __future__ import annotations

import shlex
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from dcgm_support import Collected, ProbeLoop, StandIn, free_port, make_probe
from docker_support import IMAGE, docker_client
from test_units import UNITS, _unit
from watcher_support import read_events, wait_for

from watcher.dcgm.restart import ExporterRestarter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from watcher_support import Watcher

pytestmark = pytest.mark.integration


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    """The shared dockerd (skips without one)."""
    return docker_client()


@pytest.fixture
def standin(client, tmp_path: Path) -> Iterator[Callable[..., StandIn]]:  # type: ignore[no-untyped-def]
    """Start stand-in exporters; every one is removed afterwards."""
    made: list[StandIn] = []
    run_id = tmp_path.name[-12:].replace("_", "-").lower()

    def start(**kwargs: object) -> StandIn:
        one = StandIn(client, tmp_path / f"ctl{len(made)}", run_id, **kwargs)  # type: ignore[arg-type]
        made.append(one)
        assert wait_for(lambda: _answers(one.url), 20), one.container.logs()
        return one

    yield start
    for one in made:
        one.remove()


def _answers(url: str) -> bool:
    from watcher.dcgm.probe import fetch_metrics, parse_metrics_url

    return fetch_metrics(parse_metrics_url(url), 1.0).body is not None


# A stand-in's counter moves every second: three collect intervals of 0.7 s (2.1 s) pass
# between two moves only when it is frozen.
FAST = {"collect_interval_s": 0.7, "slow_s": 0.8, "hung_after": 2, "timeout": 0.5}


def test_healthy_exporter_is_left_untouched(standin: Callable[..., StandIn]) -> None:
    """Many probes of a healthy stand-in log nothing, restart nothing, change nothing."""
    exporter = standin()
    started = exporter.started_at()
    collected = Collected()
    probe = make_probe(exporter.url, exporter.name, collected, grace_s=1.0, **FAST)
    with ProbeLoop(probe, 0.1):
        assert wait_for(lambda: probe.probes >= 40, 30)
    assert collected.events == [], collected.events
    assert probe.watchdog.state == "healthy"
    assert exporter.started_at() == started


def test_frozen_counter_is_stale_and_restarted(standin: Callable[..., StandIn]) -> None:
    """A counter that stops moving makes the exporter stale; it is restarted for it."""
    exporter = standin()
    collected = Collected()
    probe = make_probe(exporter.url, exporter.name, collected, grace_s=5.0, **FAST)
    with ProbeLoop(probe, 0.2):
        assert wait_for(lambda: probe.probes >= 3, 10)
        exporter.freeze()
        assert wait_for(lambda: collected.of("monitoring.dcgm_restart"), 20), collected.types()
        exporter.thaw()
    failure = collected.of("monitoring.scrape_failure")[0]
    assert failure["state"] == "stale"
    assert "unchanged" in failure["error"]
    restart = collected.of("monitoring.dcgm_restart")[0]
    assert restart["state"] == "stale"
    assert restart["method"] == "docker"
    assert restart["ok"] is True, restart
    assert restart["killed"] is False


def test_stopped_exporter_is_down_and_started_again(standin: Callable[..., StandIn]) -> None:
    """A stopped container is down (its status in the error) and is started again."""
    exporter = standin()
    collected = Collected()
    probe = make_probe(exporter.url, exporter.name, collected, grace_s=0.5, **FAST)
    with ProbeLoop(probe, 0.2):
        assert wait_for(lambda: probe.probes >= 2, 10)
        exporter.container.stop(timeout=5)
        assert wait_for(lambda: collected.of("monitoring.dcgm_recovered"), 30), collected.types()
    failure = collected.of("monitoring.scrape_failure")[0]
    assert failure["state"] == "down"
    assert f"container {exporter.name} is exited" in failure["error"]
    assert collected.of("monitoring.dcgm_restart")[0]["ok"] is True
    exporter.container.reload()
    assert exporter.container.status == "running"


def test_flapping_exporter_backs_off_caps_and_recovers(
    standin: Callable[..., StandIn],
) -> None:
    """Stale after every restart: growing waits, the cap, one gave_up, then reset by health."""
    exporter = standin()
    collected = Collected()
    nvml = {"gpus": 3}  # NVML sees a GPU the exporter never serves: stale after each restart
    probe = make_probe(
        exporter.url,
        exporter.name,
        collected,
        expected_gpus=lambda: nvml["gpus"],
        grace_s=1.0,
        backoff_max_s=4.0,
        restarts_per_hour=3,
        stable_s=2.0,
        **FAST,
    )

    def restarts() -> list[dict[str, object]]:
        return collected.of("monitoring.dcgm_restart")

    with ProbeLoop(probe, 0.1):
        assert wait_for(lambda: any(r["gave_up"] for r in restarts()), 60), collected.types()
        done = [r for r in restarts() if not r["gave_up"]]
        assert [r["attempt"] for r in done] == [1, 2, 3]
        assert all(r["ok"] and r["state"] == "stale" for r in done), done
        # Nothing more while it stays stale: no restart, no second gave_up.
        count = len(collected.events)
        time.sleep(3.0)
        assert len(restarts()) == 4
        assert collected.types()[count:] == []
        nvml["gpus"] = 2
        assert wait_for(lambda: collected.types()[-1] == "monitoring.dcgm_recovered", 20)
        assert not probe.watchdog.gave_up
        time.sleep(2.5)  # healthy longer than stable_s: backoff and the hour's count reset
        nvml["gpus"] = 3
        assert wait_for(lambda: len(restarts()) == 5, 30), collected.types()
    assert restarts()[-1]["attempt"] == 1
    assert restarts()[-1]["gave_up"] is False
    # The backoff held: from the end of restart n to the start of the next, grace x 2^(n-1).
    waits = _waits(collected)
    assert waits[0] >= 1.0, waits
    assert waits[1] >= 2.0, waits
    assert waits[2] >= 4.0, waits  # to the gave_up decision
    assert waits[1] < 4.0, waits


def _waits(collected: Collected) -> list[float]:
    """Seconds from each restart's end to the next restart's start (or its gave_up)."""
    from datetime import datetime

    ends, starts = [], []
    for e in collected.events:
        if e.event_type != "monitoring.dcgm_restart":
            continue
        at = datetime.fromisoformat(e.timestamp.replace("Z", "+00:00")).timestamp()
        took = float(e.details["took_s"])
        starts.append(at - took)
        ends.append(at)
    return [start - end for end, start in zip(ends, starts[1:], strict=False)]


DEAF_TO_TERM = "trap '' TERM; while :; do sleep 1; done"


def _exporter_container(client, tmp_path: Path, kind: str, script: str):  # type: ignore[no-untyped-def]
    """A busybox stand-in named for this test, running ``script`` under sh; returns its name too."""
    name = f"ds01-test-dcgm-{kind}-{tmp_path.name[-8:].lower().replace('_', '-')}"
    container = client.containers.run(
        IMAGE,
        ["sh", "-c", script],
        name=name,
        detach=True,
        network_mode="none",
        labels={"ds01.test": "1"},
    )
    return name, container


def test_term_ignoring_exporter_is_killed_and_that_is_logged(
    client,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """Docker-API path: a container deaf to SIGTERM is killed after the stop timeout; killed: true."""
    name, container = _exporter_container(client, tmp_path, "deaf", DEAF_TO_TERM)
    try:
        collected = Collected()
        refused = f"http://127.0.0.1:{free_port()}/metrics"
        probe = make_probe(refused, name, collected, stop_timeout=1.0, grace_s=60.0)
        probe.probe()  # refused: down, restart on its own thread
        assert probe.wait_restart(60)
        restart = collected.of("monitoring.dcgm_restart")[0]
        assert restart["killed"] is True, restart
        assert restart["ok"] is True, restart
        assert restart["took_s"] >= 1.0
        assert any("killed" in line for line in collected.said)
        container.reload()
        assert container.status == "running"  # started again after the kill
    finally:
        container.remove(force=True)


def test_graceful_stop_is_not_a_kill(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A container that ends on SIGTERM is restarted with killed: false."""
    script = "trap 'exit 0' TERM; while :; do sleep 0.2; done"
    name, container = _exporter_container(client, tmp_path, "kind", script)
    try:
        restarter = ExporterRestarter(
            unit="", container=name, stop_timeout=5.0, systemd_running=lambda: False
        )
        assert restarter.method() == "docker"
        outcome = restarter.restart("docker")
        assert outcome.ok, outcome
        assert outcome.killed is False
        assert outcome.took_s < 5.0
    finally:
        container.remove(force=True)


def test_unit_stop_lines_end_a_term_ignoring_exporter_in_time(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The unit's ExecStop and ExecStopPost, run on the real engine, end it within TimeoutStopSec."""
    service = _unit("ds01-dcgm-exporter.service")["Service"]
    unit_name = "ds01-dcgm-exporter"
    name, _ = _exporter_container(client, tmp_path, "unit", DEAF_TO_TERM)
    try:
        limit = float(service["TimeoutStopSec"])
        start = time.monotonic()
        for key in ("ExecStop", "ExecStopPost"):
            line = service[key]
            ignore_failure = line.startswith("-")
            argv = [a.replace(unit_name, name) for a in shlex.split(line.lstrip("-"))]
            argv[0] = "docker"  # wherever docker lives on this machine
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=limit, check=False
            )
            assert ignore_failure or result.returncode == 0, (key, result.stderr)
        took = time.monotonic() - start
        assert took < limit, took
        assert not client.containers.list(all=True, filters={"name": f"^{name}$"})
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    assert (UNITS / "ds01-dcgm-exporter.service").exists()


# -- the whole watcher ---------------------------------------------------------------------


def _watchdog_flags(exporter_url: str, container: str, **extra: object) -> list[str]:
    flags = {
        "dcgm-url": exporter_url,
        "dcgm-container": container,
        "dcgm-unit": "ds01-test-no-such.service",
        "dcgm-interval": 0.3,
        "dcgm-timeout": 0.8,
        "dcgm-collect-interval": 0.7,
        "dcgm-hung-after": 2,
        "dcgm-grace": 1.0,
        "dcgm-stop-timeout": 3,
        **extra,
    }
    return [part for key, value in flags.items() for part in (f"--{key}", str(value))]


def _types(watcher: Watcher, prefix: str = "monitoring.") -> list[str]:
    return [
        e["event_type"]
        for e in read_events(watcher.events_file)
        if e["event_type"].startswith(prefix)
    ]


def test_paused_exporter_is_restarted_and_recovers_in_order(
    standin: Callable[..., StandIn],
    make_watcher: Callable[..., Watcher],
    client,  # type: ignore[no-untyped-def]
) -> None:
    """A paused (docker pause) exporter is hung, restarted by the watcher, recovered; the events come in that order."""
    exporter = standin()
    watcher = make_watcher(extra=_watchdog_flags(exporter.url, exporter.name)).start()
    try:
        time.sleep(1.5)  # several healthy probes
        assert _types(watcher) == []
        exporter.container.pause()
        assert wait_for(lambda: "monitoring.dcgm_recovered" in _types(watcher), 40), (
            _types(watcher),
            watcher.stderr(),
        )
    finally:
        exporter.remove()
        watcher.stop()
    events = [
        e for e in read_events(watcher.events_file) if e["event_type"].startswith("monitoring.")
    ]
    assert [e["event_type"] for e in events[:3]] == [
        "monitoring.scrape_failure",
        "monitoring.dcgm_restart",
        "monitoring.dcgm_recovered",
    ]
    failure, restart, recovered = (e["details"] for e in events[:3])
    assert failure["state"] == "hung"
    assert failure["consecutive"] == 2
    assert failure["url"] == exporter.url
    assert restart["method"] == "docker"
    assert restart["ok"] is True
    assert restart["killed"] is False
    assert restart["attempt"] == 1
    assert recovered["down_s"] > 0
    assert "dcgm: restarting the exporter" in watcher.stderr()


def test_watcher_keeps_logging_while_a_probe_hangs(
    standin: Callable[..., StandIn],
    make_watcher: Callable[..., Watcher],
    client,  # type: ignore[no-untyped-def]
) -> None:
    """With every probe hanging for its timeout, datagrams and Docker events are logged at once."""
    exporter = standin()
    flags = _watchdog_flags(
        exporter.url,
        exporter.name,
        # Ticks every 0.3 s while one probe waits 8 s: they are skipped, without a warning each.
        **{"dcgm-interval": 0.3, "dcgm-timeout": 8, "dcgm-hung-after": 1000},
    )
    watcher = make_watcher(extra=flags).start()
    other = None
    try:
        exporter.container.pause()
        # The next probe connects (the kernel accepts for the frozen httpd) and waits.
        assert wait_for(lambda: _probe_waiting(exporter.port), 15)
        sent = time.monotonic()
        event_id = watcher.send_event("maintenance.cleanup", action="probe-test")
        assert wait_for(lambda: watcher.logged(event_id), 3.0)
        assert time.monotonic() - sent < 3.0
        other = client.containers.create(
            IMAGE, ["true"], network_mode="none", labels={"ds01.test": "1"}
        )
        assert wait_for(
            lambda: any(
                e["event_type"] == "container.create"
                and e.get("details", {}).get("container_id", "").startswith(other.id[:12])
                for e in read_events(watcher.events_file)
            ),
            4.0,
        )
        assert _probe_waiting(exporter.port)  # all of it happened while the probe hung
        assert _types(watcher, "monitoring.dcgm_restart") == []
    finally:
        if other is not None:
            other.remove(force=True)
        stopping = time.monotonic()
        watcher.stop()  # a probe still waits on the frozen exporter: the stop does not
        exporter.remove()
    assert time.monotonic() - stopping < 5.0
    assert "skipped" not in watcher.stderr()
    assert "dcgm" not in watcher.stderr().replace(str(watcher.root), "")


def _probe_waiting(port: int) -> bool:
    """Whether a client connection to 127.0.0.1:port is established (a probe in flight)."""
    remote = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(row[2] == remote and row[3] == "01" for row in rows)


def test_no_exporter_installed_is_one_line(make_watcher: Callable[..., Watcher]) -> None:
    """Nothing listens and nothing is installed: one stderr line, one event, no restarts."""
    url = f"http://127.0.0.1:{free_port()}/metrics"
    flags = _watchdog_flags(
        url, "ds01-test-no-such-container", **{"dcgm-interval": 0.1, "dcgm-timeout": 0.1}
    )
    watcher = make_watcher(extra=flags).start()
    try:
        assert wait_for(lambda: "monitoring.scrape_failure" in _types(watcher), 10)
        time.sleep(2.0)  # some twenty more refused probes
    finally:
        watcher.stop()
    lines = [line for line in watcher.stderr().splitlines() if "dcgm" in line.lower()[:60]]
    assert len(lines) == 1, lines
    assert "neither the systemd unit" in lines[0]
    assert "--dcgm-url off" in lines[0]
    assert _types(watcher) == ["monitoring.scrape_failure"]
    failure = read_events(watcher.events_file)
    assert [
        e["details"]["state"] for e in failure if e["event_type"] == "monitoring.scrape_failure"
    ] == ["down"]


def test_dcgm_url_off_probes_nothing(make_watcher: Callable[..., Watcher]) -> None:
    """--dcgm-url off: no DCGM job, no monitoring event, nothing said."""
    watcher = make_watcher(extra=["--dcgm-url", "off"]).start()
    time.sleep(1.0)
    watcher.stop()
    assert _types(watcher) == []
    assert "dcgm:" not in watcher.stderr()
    assert "dcgm-probe" not in watcher.stderr()
