"""Whole container lifecycles against the real dockerd: exact event sequences and facts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.integration.docker_support import (
    Containers,
    Runner,
    docker,
    docker_client,
    for_container,
)
from watcher.docker.facts import config_from_disk
from watcher.docker.known_container import known_from_inspect

pytestmark = pytest.mark.integration


@pytest.fixture
def containers():
    made = Containers(docker_client())
    yield made
    made.cleanup()


@pytest.fixture
def runner(tmp_path):
    run = Runner(tmp_path)
    run.start()
    yield run
    run.stop()


def removed(*ids):
    def done(events):
        gone = {
            e["details"].get("container_id")
            for e in events
            if e["event_type"] == "container.remove"
        }
        return all(cid in gone for cid in ids)

    return done


def sequence(events, cid):
    return [e["event_type"] for e in for_container(events, cid)]


def test_labelled_managed_gpu_container(containers, runner):
    """A labelled managed GPU container: each lifecycle step logged once, with its user."""
    c = containers.create(
        ["sleep", "30"],
        name=f"job-{containers.run_id}",
        labels={"ds01.user": "alice", "ds01.managed": "true", "ds01.interface": "orchestration"},
        environment={"NVIDIA_VISIBLE_DEVICES": "GPU-1111,MIG-2222"},
    )
    c.start()
    # dockerd logs a pause from its API and again from containerd's own event when the
    # unpause takes the container's lock first: back-to-back calls can each be reported
    # twice (docs/docker-source.md). An admin's pause is never that fast; wait for it.
    c.pause()
    runner.wait_for(lambda evs: "container.pause" in sequence(evs, c.id))
    c.unpause()
    runner.wait_for(lambda evs: "container.unpause" in sequence(evs, c.id))
    c.rename(f"job2-{containers.run_id}")
    c.stop(timeout=1)  # sleep as PID 1 ignores SIGTERM: SIGKILL follows
    c.remove()
    events = runner.wait_for(removed(c.id))
    mine = for_container(events, c.id)
    assert sequence(events, c.id) == [
        "container.create",
        "container.start",
        "gpu.allocate",
        "container.pause",
        "container.unpause",
        "container.rename",
        "container.stop",
        "gpu.release",
        "container.remove",
    ]
    assert {e["user"] for e in mine} == {"alice"}
    assert {e["details"]["attributed_by"] for e in mine} == {"ds01.user"}
    create = mine[0]["details"]
    assert (create["managed"], create["interface"]) == (True, "orchestration")
    assert create["gpu_devices"] == ["GPU-1111", "MIG-2222"]
    stop = next(e["details"] for e in mine if e["event_type"] == "container.stop")
    assert (stop["exit_code"], stop["oom"], stop["reason"]) == (137, False, "stopped")
    rename = next(e["details"] for e in mine if e["event_type"] == "container.rename")
    assert rename["old_name"] == f"job-{containers.run_id}"


def test_unlabelled_gpu_container_is_flagged(containers, runner):
    """An unlabelled container holding a GPU is unattributed and flagged as unmanaged."""
    c = containers.create(["sh", "-c", "exit 3"], environment={"NVIDIA_VISIBLE_DEVICES": "0"})
    c.start()
    c.wait(timeout=30)
    c.remove()
    events = runner.wait_for(removed(c.id))
    assert sequence(events, c.id) == [
        "container.create",
        "container.start",
        "gpu.allocate",
        "detection.unmanaged_container",
        "container.stop",
        "gpu.release",
        "container.remove",
    ]
    mine = for_container(events, c.id)
    assert all("user" not in e for e in mine)
    stop = next(e["details"] for e in mine if e["event_type"] == "container.stop")
    assert (stop["exit_code"], stop["reason"]) == (3, "exited")


def test_name_convention_attribution(containers, runner):
    """A container named <name>._.<uid> is attributed by the name convention."""
    c = containers.create(["true"], name=f"proj{containers.run_id}._.0")
    c.remove()
    events = runner.wait_for(removed(c.id))
    mine = for_container(events, c.id)
    assert sequence(events, c.id) == ["container.create", "container.remove"]
    assert {(e["user"], e["details"]["attributed_by"]) for e in mine} == {
        ("root", "name_convention")
    }


def test_colliding_labels_never_override_facts(containers, runner):
    """Labels named exitCode, signal, image and name do not change the logged facts."""
    forged = {"exitCode": "0", "signal": "forged", "image": "evil/image", "name": "evil"}
    exits = containers.create(["sh", "-c", "exit 5"], labels=forged)
    exits.start()
    exits.wait(timeout=30)
    exits.remove()
    killed = containers.create(["sleep", "30"], labels=forged)
    killed.start()
    killed.kill()
    killed.wait(timeout=30)
    killed.remove()
    events = runner.wait_for(removed(exits.id, killed.id))
    stop = next(
        e["details"] for e in for_container(events, exits.id) if e["event_type"] == "container.stop"
    )
    assert (stop["exit_code"], stop["reason"]) == (5, "exited")
    stop = next(
        e["details"]
        for e in for_container(events, killed.id)
        if e["event_type"] == "container.stop"
    )
    assert (stop["exit_code"], stop["signal"], stop["reason"]) == (137, None, "killed")
    for cid, c in ((exits.id, exits), (killed.id, killed)):
        for e in for_container(events, cid):
            assert e["details"]["image"] == "ds01-test/busybox:latest"
            assert e["details"]["container"] == c.name


def test_oom_kill(containers, runner):
    """A container killed by the OOM killer logs resource.oom_kill and a stop with reason oom."""
    # dockerd sometimes records exit 137 without OOMKilled (containerd's OOM event came
    # after the exit): try again rather than skip, since a skip here tests nothing.
    for _attempt in range(4):
        c = containers.create(
            ["sh", "-c", "x=a; while :; do x=$x$x; done"], mem_limit="8m", memswap_limit="8m"
        )
        c.start()
        result = c.wait(timeout=60)
        c.reload()
        if c.attrs["State"]["OOMKilled"]:
            break
        c.remove()
    else:
        pytest.skip(f"the kernel did not OOM-kill the container in 4 tries (exit {result})")
    c.remove()
    events = runner.wait_for(removed(c.id))
    assert sequence(events, c.id) == [
        "container.create",
        "container.start",
        "resource.oom_kill",
        "container.stop",
        "container.remove",
    ]
    stop = next(
        e["details"] for e in for_container(events, c.id) if e["event_type"] == "container.stop"
    )
    assert (stop["oom"], stop["reason"], stop["exit_code"]) == (True, "oom", 137)


def test_exec_and_existing_container_discovery(tmp_path, containers):
    """A container that predates the source is discovered (inferred); exec noise is not logged."""
    c = containers.create(["sleep", "30"], labels={"ds01.user": "bob"})
    c.start()
    run = Runner(tmp_path)
    run.start()
    try:
        c.exec_run(["true"])
        c.kill()
        c.remove()
        events = run.wait_for(removed(c.id))
    finally:
        run.stop()
    mine = for_container(events, c.id)
    first = mine[0]
    assert first["event_type"] == "detection.container_discovered"
    assert (first["details"]["inferred"], first["details"]["running"]) == (True, True)
    assert first["user"] == "bob"
    assert [e["event_type"] for e in mine[1:]] == ["container.stop", "container.remove"]
    assert not any(e["event_type"].startswith("container.exec") for e in events)


def test_config_files_match_inspect(containers):
    """Facts read from dockerd's config files equal those from inspect (the lock-free fast path)."""
    c = containers.create(
        ["true"],
        labels={"ds01.managed": "true"},
        cgroup_parent="ds01-student-alice.slice",
        environment={"CUDA_VISIBLE_DEVICES": "0"},
        device_requests=[
            docker.types.DeviceRequest(device_ids=["GPU-1", "MIG-2"], capabilities=[["gpu"]])
        ],
    )
    root = Path(containers.client.info()["DockerRootDir"])
    from_disk = config_from_disk(root, c.id)
    if from_disk is None:
        pytest.skip(f"{root} is not readable here")
    c.reload()
    assert known_from_inspect(from_disk) == known_from_inspect(c.attrs)
    facts = known_from_inspect(from_disk)
    assert (facts.user, facts.attributed_by) == ("alice", "cgroup_parent")
    assert facts.gpu_devices == ["GPU-1", "MIG-2", "0"]
    assert config_from_disk(root, "../" + c.id) is None


def test_failed_start_leaves_a_trace(containers, runner):
    """A docker start that fails (missing command) logs container.start_failed with the error."""
    import docker as docker_sdk

    c = containers.create(["/no-such-command-here"])
    with pytest.raises(docker_sdk.errors.APIError):
        c.start()
    # Still there when the watcher inspects it: the exit code and error come from inspect.
    runner.wait_for(lambda evs: "container.start_failed" in sequence(evs, c.id))
    c.remove()
    events = runner.wait_for(removed(c.id))
    assert sequence(events, c.id) == [
        "container.create",
        "container.start_failed",
        "container.remove",
    ]
    (failed,) = (
        e for e in for_container(events, c.id) if e["event_type"] == "container.start_failed"
    )
    assert failed["details"]["exit_code"] == 127
    assert "no-such-command-here" in failed["details"]["error"]


def test_stop_carries_run_time_and_signal_number(containers, runner):
    """A stopped container's container.stop has ran_s and the kill signal as a number."""
    c = containers.create(["sh", "-c", "trap 'exit 3' INT; sleep 30 & wait"])
    c.start()
    runner.wait_for(lambda evs: "container.start" in sequence(evs, c.id))
    c.kill(signal="SIGINT")  # PID 1 has no default handler: the trap ends it
    c.wait(timeout=30)
    c.remove()
    events = runner.wait_for(removed(c.id))
    stop = next(
        e["details"] for e in for_container(events, c.id) if e["event_type"] == "container.stop"
    )
    assert (stop["signal"], stop["exit_code"], stop["reason"]) == (2, 3, "killed")
    assert isinstance(stop["ran_s"], float)
    assert 0 < stop["ran_s"] < 30


def test_failed_run_with_rm_leaves_a_trace(containers, runner):
    """A `docker run --rm` of a missing command (removed at once) logs container.start_failed."""
    import docker as docker_sdk

    name = f"failrm-{containers.run_id}"
    # auto_remove: dockerd removes it at once, as docker run --rm does
    made = containers.create(["/no-such-command-here"], name=name, auto_remove=True)
    try:
        with pytest.raises(docker_sdk.errors.APIError):
            made.start()
    finally:
        with contextlib.suppress(docker_sdk.errors.NotFound):
            made.remove(force=True)

    def logged(events):
        return any(
            e["event_type"] == "container.remove" and e["details"].get("container") == name
            for e in events
        )

    events = runner.wait_for(logged)
    mine = [e["event_type"] for e in events if e["details"].get("container") == name]
    assert mine == ["container.create", "container.start_failed", "container.remove"]
