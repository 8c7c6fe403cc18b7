"""The whole service (`python -m watcher run`) against a real dockerd: lifecycles, crashes, restarts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from watcher_support import read_events, wait_for

from tests.integration.docker_support import (
    IMAGE,
    Containers,
    burst,
    burst_across_restart,
    client_for,
    docker_client,
    for_container,
    private_dockerd,
    settled_ids,
    unexplained,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from watcher_support import Watcher

pytestmark = pytest.mark.integration
LIFECYCLE = ["container.create", "container.start", "container.stop", "container.remove"]


@pytest.fixture
def containers():
    made = Containers(docker_client())
    yield made
    made.cleanup()


def service(make_watcher: Callable[..., Watcher], docker_host: str | None = None) -> Watcher:
    """A watcher (not started yet) with GPU and DCGM jobs off, on the given engine."""
    extra = ["--gpu", "off", "--dcgm-url", "off"]
    if docker_host is not None:
        extra += ["--docker-host", docker_host]
    return make_watcher(extra=extra)


def cursor(watcher: Watcher) -> Path:
    return watcher.root / "state" / "docker-cursor.json"


def start_connected(watcher: Watcher) -> None:
    """Start (or restart) the service and wait until its Docker source has reconciled."""
    path = cursor(watcher)
    before = path.stat().st_mtime_ns if path.exists() else None
    starts = sum(e["event_type"] == "watcher.start" for e in read_events(watcher.events_file))
    watcher.start()
    assert wait_for(
        lambda: (
            sum(e["event_type"] == "watcher.start" for e in read_events(watcher.events_file))
            > starts
        )
    ), watcher.stderr()
    # The cursor is saved right after the first reconciliation: connected.
    assert wait_for(lambda: path.exists() and path.stat().st_mtime_ns != before, 30), (
        watcher.stderr()
    )


def wait_log(
    watcher: Watcher, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 90
) -> list[dict[str, Any]]:
    """Poll the service's log until ``predicate(events)`` holds; return the events."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(watcher.events_file)
        if predicate(events):
            return events
        assert time.monotonic() < deadline, watcher.stderr()[-3000:]
        assert watcher.proc is not None
        assert watcher.proc.poll() is None, watcher.stderr()[-3000:]
        time.sleep(0.1)


def once_each(events: list[dict[str, Any]], ids: set[str]) -> dict[tuple[str, str], int]:
    """(container id, event type) pairs of these containers logged more than once."""
    counts = Counter(
        (e["details"]["container_id"], e["event_type"])
        for e in events
        if e.get("details", {}).get("container_id") in ids
    )
    return {key: n for key, n in counts.items() if n > 1}


def crash_summary(events: list[dict[str, Any]], ids: set[str]) -> str:
    """One line for the test output: how the log covered the interruption."""
    mine = [e for e in events if e.get("details", {}).get("container_id") in ids]
    inferred = Counter(e["event_type"] for e in mine if e["details"].get("inferred"))
    gaps = sum(e["event_type"] == "watcher.gap" for e in events)
    return f"{len(mine)} events for {len(ids)} containers; inferred {dict(inferred)}; gaps {gaps}"


def test_labelled_and_unlabelled_lifecycles(
    make_watcher: Callable[..., Watcher], containers: Containers
) -> None:
    """The service logs each container's create, start, stop and remove once, attributed."""
    watcher = service(make_watcher)
    start_connected(watcher)
    labelled = containers.create(
        ["sleep", "30"], labels={"ds01.user": "alice", "ds01.managed": "true"}
    )
    plain = containers.create(["sleep", "30"])
    for c in (labelled, plain):
        c.start()
        c.stop(timeout=1)  # sleep as PID 1 ignores SIGTERM: SIGKILL follows
        c.remove()
    wait_log(watcher, lambda ev: {labelled.id, plain.id} <= settled_ids(ev))
    assert watcher.stop() == 0
    events = read_events(watcher.events_file)
    assert events[0]["event_type"] == "watcher.start"
    assert events[-1]["event_type"] == "watcher.stop"

    mine = for_container(events, labelled.id)
    assert [e["event_type"] for e in mine] == LIFECYCLE
    assert {e["source"] for e in mine} == {"ds01-watcher"}
    assert {(e["user"], e["details"]["attributed_by"]) for e in mine} == {("alice", "ds01.user")}
    assert mine[0]["details"]["managed"] is True
    assert mine[0]["details"]["gpu_devices"] == []
    stop = mine[2]["details"]
    assert (stop["exit_code"], stop["oom"], stop["reason"]) == (137, False, "stopped")

    theirs = for_container(events, plain.id)
    assert [e["event_type"] for e in theirs] == LIFECYCLE
    assert all("user" not in e for e in theirs)
    assert {e["details"].get("attributed_by") for e in theirs} == {None}
    assert theirs[0]["details"]["managed"] is False
    assert not any(e["event_type"] == "detection.unmanaged_container" for e in events)
    assert not any(e["details"].get("inferred") for e in mine + theirs)


def test_kill9_mid_burst_then_restart(
    make_watcher: Callable[..., Watcher], containers: Containers
) -> None:
    """Kill -9 of the service mid-burst, restart on the same files: every event once, none lost."""
    watcher = service(make_watcher)
    start_connected(watcher)
    restarted = threading.Event()

    def progress(n: int) -> None:
        if n == 25 and not restarted.is_set():
            assert watcher.proc is not None
            watcher.proc.kill()
            watcher.proc.wait(10)
            time.sleep(0.5)  # lifecycles go on while no watcher runs
            start_connected(watcher)
            restarted.set()

    actions: dict[str, dict[str, Any]] = {}
    burst(containers, 70, actions, workers=4, on_progress=progress)
    assert restarted.is_set()
    ids = set(actions)
    events = wait_log(watcher, lambda ev: ids <= settled_ids(ev))
    assert watcher.stop() == 0
    events = read_events(watcher.events_file)
    assert once_each(events, ids) == {}
    assert unexplained(events, actions) == []
    observed = Counter(
        e["event_type"]
        for e in events
        if e.get("details", {}).get("container_id") in ids and not e["details"].get("inferred")
    )
    # Nothing was lost across the crash without a gap or an inferred event to show for it.
    if not any(e["event_type"] == "watcher.gap" for e in events):
        assert observed == dict.fromkeys(LIFECYCLE, 70), observed
    assert [e["event_type"] for e in events].count("watcher.start") == 2
    print(crash_summary(events, ids))


def test_dockerd_restart_mid_burst(make_watcher: Callable[..., Watcher]) -> None:
    """A private dockerd restarted mid-burst: no duplicates, one gap, and the service goes on."""
    labels = {"ds01.test": "1", "ds01.user": "carol"}
    with private_dockerd() as dockerd:
        client = client_for(dockerd.host)
        sleeper = client.containers.create(
            IMAGE, ["sleep", "300"], network_mode="none", labels=labels
        )
        watcher = service(make_watcher, dockerd.host)
        start_connected(watcher)
        sleeper.start()
        actions: dict[str, dict[str, Any]] = {}
        settled = burst_across_restart(dockerd, actions, labels, count=40, restart_after=12)
        client = client_for(dockerd.host)
        wait_log(watcher, lambda ev: settled <= settled_ids(ev), timeout=120)
        after = client.containers.create(IMAGE, ["true"], network_mode="none", labels=labels)
        after.remove()
        events = wait_log(watcher, lambda ev: after.id in settled_ids(ev))
        assert watcher.proc is not None
        assert watcher.proc.poll() is None
        assert watcher.stop() == 0
    events = read_events(watcher.events_file)
    gaps = [e for e in events if e["event_type"] == "watcher.gap"]
    assert len(gaps) == 1, watcher.stderr()
    assert gaps[0]["details"]["since"] <= gaps[0]["details"]["until"]
    assert len(actions) == 40
    assert once_each(events, settled | {sleeper.id}) == {}
    assert unexplained(events, actions) == []
    print(crash_summary(events, settled))
    stops = [e for e in for_container(events, sleeper.id) if e["event_type"] == "container.stop"]
    assert len(stops) == 1, for_container(events, sleeper.id)
    assert [e["event_type"] for e in for_container(events, after.id)] == [
        "container.create",
        "container.remove",
    ]


def test_no_engine_keeps_serving_then_connects(make_watcher: Callable[..., Watcher]) -> None:
    """Without an engine the service serves its socket, says so once, and connects later."""
    with private_dockerd(start=False) as dockerd:
        watcher = service(make_watcher, dockerd.host)
        watcher.start()
        event_id = watcher.send_event("test.no_engine")
        assert wait_for(lambda: watcher.logged(event_id)), watcher.stderr()
        assert wait_for(lambda: "no Docker engine" in watcher.stderr()), watcher.stderr()
        assert not cursor(watcher).exists()
        dockerd.start()
        dockerd.load_image()
        assert wait_for(cursor(watcher).exists, 60), watcher.stderr()
        c = client_for(dockerd.host).containers.create(
            IMAGE,
            ["true"],
            network_mode="none",
            labels={"ds01.test": "1", "ds01.user": "dave"},
        )
        c.remove()
        events = wait_log(watcher, lambda ev: c.id in settled_ids(ev))
        assert watcher.stop() == 0
    assert [e["event_type"] for e in for_container(events, c.id)] == [
        "container.create",
        "container.remove",
    ]
    said = watcher.stderr()
    assert said.count("no Docker engine") == 1, said
    assert "answers again" in said


def test_restart_policy_across_dockerd_restart_keeps_gpus_balanced(
    make_watcher: Callable[..., Watcher],
) -> None:
    """A --restart=always GPU holder brought back by dockerd: a stop and a release between starts."""
    labels = {"ds01.test": "1", "ds01.user": "dora", "ds01.managed": "true"}
    with private_dockerd() as dockerd:
        client = client_for(dockerd.host)
        holder = client.containers.create(
            IMAGE,
            ["sleep", "300"],
            network_mode="none",
            labels=labels,
            environment={"NVIDIA_VISIBLE_DEVICES": "GPU-1111"},
            restart_policy={"Name": "always"},
        )
        watcher = service(make_watcher, dockerd.host)
        start_connected(watcher)
        holder.start()
        wait_log(watcher, lambda ev: "gpu.allocate" in kinds(ev, holder.id))
        dockerd.stop()  # by pid; the container dies with it and comes back with the daemon
        dockerd.start()
        events = wait_log(watcher, lambda ev: kinds(ev, holder.id).count("gpu.allocate") == 2)
        client_for(dockerd.host).containers.get(holder.id).remove(force=True)
        assert watcher.stop() == 0
    mine = kinds(events, holder.id)
    first, second = (i for i, kind in enumerate(mine) if kind == "container.start")
    between = mine[first:second]
    # Whether the old daemon's die reached us or fell into the gap, the run is closed.
    assert between.count("container.stop") == 1, mine
    assert between.count("gpu.release") == 1, mine
    assert mine.count("gpu.allocate") == 2, mine


def kinds(events: list[dict[str, Any]], cid: str) -> list[str]:
    """The event types logged for one container, in order."""
    return [e["event_type"] for e in for_container(events, cid)]
