"""While the source is down and dockerd's replay buffer overflows: a gap plus inferred events."""

from __future__ import annotations

import pytest

from tests.integration.docker_support import Containers, Runner, docker_client, for_container

pytestmark = pytest.mark.integration


@pytest.fixture
def containers():
    made = Containers(docker_client())
    yield made
    made.cleanup()


def test_overflowed_replay_gives_gap_and_inferred_events(tmp_path, containers):
    """Changes hidden by more than 256 events while down are inferred, bounded by a watcher.gap."""
    runner = Runner(tmp_path)
    running = containers.create(["sleep", "300"], labels={"ds01.user": "dan"})
    running.start()
    created = containers.create(["true"], labels={"ds01.user": "dan"})
    noisy = containers.create(["sleep", "300"])
    noisy.start()
    runner.start()
    noisy.rename(f"seen-{containers.run_id}")
    runner.wait_for(lambda ev: any(e["event_type"] == "container.rename" for e in ev))
    runner.stop()
    running.kill()
    created.remove()
    fresh = containers.create(["sleep", "300"], labels={"ds01.user": "eve"})
    fresh.start()
    for n in range(280):  # the last event seen falls out of dockerd's 256-event buffer
        noisy.rename(f"noisy{n % 2}-{containers.run_id}")
    runner.start()
    events = runner.wait_for(
        lambda ev: any(
            e["event_type"] == "detection.container_discovered"
            and e["details"]["container_id"] == fresh.id
            for e in ev
        )
    )
    runner.stop()
    after_restart = events[[e["event_type"] for e in events].index("watcher.gap") :]
    assert [e["event_type"] for e in events].count("watcher.gap") == 1

    def inferred(cid):
        return [
            (e["event_type"], e.get("user"))
            for e in for_container(after_restart, cid)
            if e["details"].get("inferred")
        ]

    assert inferred(running.id) == [("container.stop", "dan")]
    assert inferred(created.id) == [("detection.container_exited", "dan")]
    assert inferred(fresh.id) == [("detection.container_discovered", "eve")]
    assert inferred(noisy.id) == []
    stop = next(
        e for e in for_container(after_restart, running.id) if e["event_type"] == "container.stop"
    )
    assert stop["details"]["exit_code"] == 137


def test_quiet_source_restart_reports_gap(tmp_path, containers):
    """A source that never saw an event replays from its watermark and logs the window as a gap."""
    runner = Runner(tmp_path)
    runner.start()
    runner.stop()
    fresh = containers.create(["true"], labels={"ds01.user": "fay"})
    runner.start()
    events = runner.wait_for(
        lambda ev: any(e["details"].get("container_id") == fresh.id for e in ev)
    )
    runner.stop()
    kinds = [e["event_type"] for e in events]
    assert kinds.count("watcher.gap") == 1
    mine = for_container(events, fresh.id)
    # The replay still held the create: it is logged as observed, exactly once.
    assert [(e["event_type"], e["details"].get("inferred")) for e in mine] == [
        ("container.create", None)
    ]


def test_failed_start_while_unwatched_is_inferred(tmp_path, containers):
    """A `docker run` that failed before the watcher first ran is discovered with its error."""
    import docker as docker_sdk

    failed = containers.create(["/no-such-command-here"], labels={"ds01.user": "gil"})
    with pytest.raises(docker_sdk.errors.APIError):
        failed.start()
    runner = Runner(tmp_path)  # a first run: no replay, only the listing tells
    runner.start()
    events = runner.wait_for(
        lambda ev: any(
            e["event_type"] == "container.start_failed" for e in for_container(ev, failed.id)
        )
    )
    runner.stop()
    mine = for_container(events, failed.id)
    assert [e["event_type"] for e in mine] == [
        "detection.container_discovered",
        "container.start_failed",
    ]
    details = mine[1]["details"]
    assert (details["inferred"], details["exit_code"]) == (True, 127)
    assert "no-such-command-here" in details["error"]
    assert mine[1]["user"] == "gil"
