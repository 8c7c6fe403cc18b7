"""A dockerd restart mid-burst (private daemon): no duplicates; gaps cover the rest."""

from __future__ import annotations

import signal
import time

import pytest

from tests.integration.docker_support import (
    IMAGE,
    PrivateDockerd,
    Runner,
    burst_across_restart,
    client_for,
    duplicates,
    for_container,
    private_dockerd,
    settled_ids,
    unexplained,
)

pytestmark = pytest.mark.integration
LABELS = {"ds01.test": "1", "ds01.user": "carol"}


@pytest.fixture
def dockerd():
    with private_dockerd() as daemon:
        yield daemon


def test_dockerd_restart_mid_burst(tmp_path, dockerd):
    """Restarting dockerd mid-burst logs one gap; what replay misses is covered; no duplicates."""
    client = client_for(dockerd.host)
    sleepers = [
        client.containers.create(IMAGE, ["sleep", "300"], network_mode="none", labels=LABELS)
        for _ in range(2)
    ]
    runner = Runner(tmp_path, docker_host=dockerd.host)
    runner.start()
    for c in sleepers:
        c.start()
    actions: dict[str, dict] = {}
    try:
        settled = burst_across_restart(dockerd, actions, LABELS, count=60, restart_after=20)
        events = runner.wait_for(lambda ev: settled <= settled_ids(ev), timeout=120)
    finally:
        runner.stop()
    gaps = [e for e in events if e["event_type"] == "watcher.gap"]
    assert len(gaps) == 1, runner.stderr()
    assert gaps[0]["details"]["since"] <= gaps[0]["details"]["until"]
    assert duplicates(events) == {}
    assert len(actions) == 60
    assert unexplained(events, actions) == []
    for c in sleepers:
        stops = [e for e in for_container(events, c.id) if e["event_type"] == "container.stop"]
        assert len(stops) == 1, for_container(events, c.id)
    print(runner.stderr().strip().splitlines()[-1])


def test_no_engine_said_once_then_connects(tmp_path):
    """Without an engine the source says so once, keeps retrying, and connects when one appears."""
    daemon = PrivateDockerd()
    runner = Runner(tmp_path, docker_host=daemon.host)
    try:
        runner.start(wait_ready=False)
        deadline = time.monotonic() + 30
        while "no Docker engine" not in runner.stderr():
            assert time.monotonic() < deadline, runner.stderr()
            time.sleep(0.1)
        time.sleep(3)  # several retries happen meanwhile
        assert runner.proc is not None
        assert runner.proc.poll() is None
        daemon.start()
        deadline = time.monotonic() + 60
        while not (runner.state_dir / "docker-cursor.json").exists():
            assert time.monotonic() < deadline, runner.stderr()
            time.sleep(0.1)
    finally:
        runner.stop()
        daemon.destroy()
    said = runner.stderr()
    assert said.count("no Docker engine") == 1, said
    assert "answers again" in said


def test_hung_daemon_found_by_ping(tmp_path, dockerd):
    """A frozen dockerd (silent stream) is found by the ping; it reconnects once dockerd thaws."""
    runner = Runner(tmp_path, docker_host=dockerd.host, ping_interval=1)
    runner.start()
    client = client_for(dockerd.host)
    try:
        before = client.containers.create(IMAGE, ["true"], network_mode="none", labels=LABELS)
        runner.wait_for(lambda ev: any(e["details"].get("container_id") == before.id for e in ev))
        dockerd.proc.send_signal(signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 30
            while "does not answer a ping" not in runner.stderr():
                assert time.monotonic() < deadline, runner.stderr()
                time.sleep(0.1)
        finally:
            dockerd.proc.send_signal(signal.SIGCONT)
        after = client.containers.create(IMAGE, ["true"], network_mode="none", labels=LABELS)
        events = runner.wait_for(
            lambda ev: any(e["details"].get("container_id") == after.id for e in ev)
        )
    finally:
        runner.stop()
    assert duplicates(events) == {}
    assert [e["event_type"] for e in for_container(events, after.id)] == ["container.create"]
