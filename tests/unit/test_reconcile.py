"""Reconciliation of known state against a full listing, and gap events."""

from __future__ import annotations

from watcher.docker.known_container import KnownContainer
from watcher.docker.reconcile import gap_event, reconcile, replay_gap
from watcher.docker.stream import EventKey


def k(*, running, gpus=(), managed=False, **kw):
    return KnownContainer(
        name="job",
        running=running,
        gpu_devices=list(gpus),
        managed=managed,
        user="alice",
        attributed_by="ds01.user",
        **kw,
    )


def summary(events):
    return [(e.event_type, e.details["container_id"], e.details["inferred"]) for e in events]


def test_no_change_no_events():
    """Identical state yields nothing."""
    assert reconcile({"a": k(running=True)}, {"a": k(running=True)}) == []


def test_discovered_running_gpu_holder():
    """A new running unmanaged GPU holder is discovered, allocated and flagged, all inferred."""
    got = reconcile({}, {"a": k(running=True, gpus=["GPU-1"])})
    assert summary(got) == [
        ("detection.container_discovered", "a", True),
        ("gpu.allocate", "a", True),
        ("detection.unmanaged_container", "a", True),
    ]
    assert got[0].user == "alice"


def test_discovered_after_a_failed_start():
    """A new container whose start failed (State.Error) is discovered, then its failure logged."""
    error = 'exec: "nosuch": executable file not found in $PATH'
    got = reconcile({}, {"a": k(running=False, exit_code=127, start_error=error)})
    assert summary(got) == [
        ("detection.container_discovered", "a", True),
        ("container.start_failed", "a", True),
    ]
    assert (got[1].details["exit_code"], got[1].details["error"]) == (127, error)
    # A container that merely stopped, with no error, is discovered and nothing more.
    assert summary(reconcile({}, {"a": k(running=False, exit_code=0)})) == [
        ("detection.container_discovered", "a", True)
    ]


def test_stopped_unseen():
    """A known running container found exited gives an inferred stop with inspect facts."""
    before = {"a": k(running=True, gpus=["GPU-1"])}
    got = reconcile(before, {"a": k(running=False, exit_code=137, oom_killed=True)})
    assert summary(got) == [("container.stop", "a", True), ("gpu.release", "a", True)]
    assert (got[0].details["exit_code"], got[0].details["reason"]) == (137, "oom")


def test_started_unseen():
    """A known stopped container found running gives an inferred start."""
    got = reconcile({"a": k(running=False)}, {"a": k(running=True, managed=True)})
    assert summary(got) == [("container.start", "a", True)]


def test_gone_unseen():
    """A known container missing from the listing gives detection.container_exited."""
    got = reconcile({"a": k(running=True, gpus=["MIG-1"])}, {})
    assert summary(got) == [("detection.container_exited", "a", True), ("gpu.release", "a", True)]
    assert got[0].details["was_running"] is True


def test_gap_bounds():
    """watcher.gap carries since/until timestamps and a reason."""
    gap = gap_event(1_795_317_630_000_000_000, 1_795_317_631_500_000_000, "dockerd restarted")
    assert gap.event_type == "watcher.gap"
    assert gap.details["since"] == "2026-11-22T03:20:30.000000Z"
    assert gap.details["until"] == "2026-11-22T03:20:31.500000Z"
    assert gap.details["reason"] == "dockerd restarted"


def test_replay_starting_with_the_last_event_seen_has_no_gap():
    """A replay whose first event is the last one seen (since is inclusive) covers everything."""
    first = EventKey(5_000, "abc", "die")
    assert replay_gap(5_000, {("abc", "die")}, 9_000, first) is None
    assert replay_gap(None, set(), 9_000, None) is None


def test_replay_not_holding_the_last_event_is_a_gap_to_its_first_event():
    """A replay starting later than the last event seen: a gap up to its first event."""
    gap = replay_gap(
        5_000_000_000, {("abc", "die")}, 9_000_000_000, EventKey(7_000_000_000, "d", "create")
    )
    assert gap is not None
    assert gap.event_type == "watcher.gap"
    assert gap.details["until"] == gap_event(0, 7_000_000_000, "").details["until"]
    empty = replay_gap(5_000_000_000, {("abc", "die")}, 9_000_000_000, None)
    assert empty is not None
    assert empty.details["until"] == gap_event(0, 9_000_000_000, "").details["until"]


def test_inferred_stop_carries_run_time():
    """A stop found by reconciliation carries ran_s from inspect's StartedAt..FinishedAt."""
    (stop,) = reconcile({"a": k(running=True)}, {"a": k(running=False, exit_code=0, ran_s=12.5)})
    assert stop.event_type == "container.stop"
    assert stop.details["ran_s"] == 12.5
