"""Bursts of container lifecycles: nothing missed, nothing duplicated, even across kill -9."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.integration.docker_support import (
    Containers,
    Runner,
    burst,
    docker_client,
    duplicates,
    settled_ids,
    unexplained,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def containers():
    made = Containers(docker_client())
    yield made
    made.cleanup()


def all_removed(ids):
    return lambda events: ids <= settled_ids(events)


def test_burst_of_200_with_slow_submit(tmp_path, containers):
    """200 lifecycles as fast as dockerd allows, submit slowed: each event exactly once."""
    runner = Runner(tmp_path, slow_submit=0.01)
    runner.start()
    try:
        actions: dict[str, dict] = {}
        burst(containers, 200, actions)
        events = runner.wait_for(all_removed(set(actions)), timeout=120)
    finally:
        runner.stop()
    mine = [e for e in events if e.get("details", {}).get("container_id") in actions]
    counts = Counter((e["details"]["container_id"], e["event_type"]) for e in mine)
    expected = {
        (cid, t)
        for cid in actions
        for t in ("container.create", "container.start", "container.stop", "container.remove")
    }
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert not any(e["details"].get("inferred") for e in mine)
    assert not any(e["event_type"] == "watcher.gap" for e in events)
    print("runner:", runner.stderr().strip().splitlines()[-1])


def test_kill9_mid_burst_then_resume(tmp_path, containers):
    """A kill -9 of the source mid-burst, then restart: no duplicates, nothing silently missing."""
    runner = Runner(tmp_path)
    runner.start()
    killed = threading.Event()
    restarted = threading.Event()

    def progress(n):
        if n == 30 and not killed.is_set():
            runner.kill9()
            killed.set()
            runner.start(wait_ready=False)
            restarted.set()

    actions: dict[str, dict] = {}
    try:
        burst(containers, 80, actions, on_progress=progress)
        assert killed.is_set()
        assert restarted.is_set()
        events = runner.wait_for(all_removed(set(actions)), timeout=120)
    finally:
        runner.stop()
    assert duplicates(events) == {}
    assert unexplained(events, actions) == []
    creates = Counter(
        e["details"]["container_id"] for e in events if e["event_type"] == "container.create"
    )
    assert set(creates.values()) == {1}
