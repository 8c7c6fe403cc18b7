"""Mapping Docker container events (and inspect data) to audit events."""

from __future__ import annotations

from watcher.docker.lifecycle import ContainerLifecycle
from watcher.docker.times import timestamp_from_nanos

CID = "c" * 64
T0 = 1_795_317_630_000_000_000


def ev(action, n, **attributes):
    attrs = {"image": "ds01-test/busybox:latest", "name": "job", **attributes}
    return {
        "Type": "container",
        "Action": action,
        "status": action,
        "id": CID,
        "Actor": {"ID": CID, "Attributes": attrs},
        "timeNano": T0 + n,
    }


def insp(labels=None, env=(), *, running=False, exit_code=0, oom=False, name="/job"):
    return {
        "Id": CID,
        "Name": name,
        "Config": {"Image": "ds01-test/busybox:latest", "Labels": labels or {}, "Env": list(env)},
        "HostConfig": {"CgroupParent": ""},
        "State": {"Running": running, "ExitCode": exit_code, "OOMKilled": oom},
    }


def types(events):
    return [e.event_type for e in events]


def test_create_details_and_user():
    """container.create carries attribution, managed, interface and GPU devices."""
    life = ContainerLifecycle()
    labels = {
        "ds01.user": "alice",
        "ds01.managed": "true",
        "ds01.interface": "orchestration",
        "ds01.container_type": "devcontainer",
    }
    gpu = insp(labels, ["NVIDIA_VISIBLE_DEVICES=MIG-1"])
    (event,) = life.handle(ev("create", 1, **labels), gpu)
    assert event.event_type == "container.create"
    assert event.user == "alice"
    assert event.source == "ds01-watcher"
    assert event.timestamp == timestamp_from_nanos(T0 + 1)
    assert event.details == {
        "container": "job",
        "container_id": CID,
        "image": "ds01-test/busybox:latest",
        "attributed_by": "ds01.user",
        "container_type": "devcontainer",
        "managed": True,
        "interface": "orchestration",
        "gpu_devices": ["MIG-1"],
    }


def test_full_lifecycle_with_gpu_unmanaged():
    """A GPU holder without the managed marker: allocate and flag at start, release at die."""
    life = ContainerLifecycle()
    gpu = insp(env=["NVIDIA_VISIBLE_DEVICES=GPU-a"])
    out = life.handle(ev("create", 1), gpu)
    out += life.handle(ev("start", 2))
    out += life.handle(ev("die", 3, exitCode="0"), {**gpu, "State": {"ExitCode": 0}})
    out += life.handle(ev("destroy", 4))
    assert types(out) == [
        "container.create",
        "container.start",
        "gpu.allocate",
        "detection.unmanaged_container",
        "container.stop",
        "gpu.release",
        "container.remove",
    ]
    assert CID not in life.containers


def test_removed_while_thought_running_is_an_inferred_stop_first():
    """A destroy with no die seen (it fell into a gap): an inferred stop and release, then remove."""
    life = ContainerLifecycle()
    gpu = insp(env=["NVIDIA_VISIBLE_DEVICES=GPU-a"], labels={"ds01.managed": "true"})
    life.handle(ev("create", 1), gpu)
    life.handle(ev("start", 2))
    out = life.handle(ev("destroy", 9))
    assert types(out) == ["container.stop", "gpu.release", "container.remove"]
    stop, release, remove = out
    assert stop.details["inferred"] is True
    assert stop.details["reason"] is None  # not seen, so not guessed
    assert release.details["inferred"] is True
    assert "inferred" not in remove.details
    assert {e.timestamp for e in out} == {timestamp_from_nanos(T0 + 9)}


def test_started_again_while_thought_running_is_an_inferred_stop_first():
    """A second start with no die between (dockerd restarted it): stop and release, then start."""
    life = ContainerLifecycle()
    gpu = insp(env=["NVIDIA_VISIBLE_DEVICES=GPU-a"], labels={"ds01.managed": "true"})
    life.handle(ev("create", 1), gpu)
    life.handle(ev("start", 2))
    out = life.handle(ev("start", 9))
    assert types(out) == ["container.stop", "gpu.release", "container.start", "gpu.allocate"]
    assert [e.details.get("inferred") for e in out] == [True, True, None, None]


def test_first_met_at_its_start_is_no_unseen_stop():
    """A container first seen at its start event (inspect already says running) just starts."""
    life = ContainerLifecycle()
    running = insp(
        env=["NVIDIA_VISIBLE_DEVICES=GPU-a"], labels={"ds01.managed": "true"}, running=True
    )
    assert types(life.handle(ev("start", 2), running)) == ["container.start", "gpu.allocate"]


def test_infrastructure_gpu_holder_not_flagged():
    """Infrastructure containers holding GPUs get gpu.allocate but are never flagged."""
    life = ContainerLifecycle()
    labels = {"ds01.monitoring": "true"}
    life.handle(ev("create", 1, **labels), insp(labels, ["NVIDIA_VISIBLE_DEVICES=all"]))
    assert types(life.handle(ev("start", 2))) == ["container.start", "gpu.allocate"]


def test_exit_code_from_inspect_not_forged_label():
    """A label named exitCode overwrites the attribute; the logged exit code comes from inspect."""
    life = ContainerLifecycle()
    labels = {"exitCode": "0", "signal": "forged"}
    life.handle(ev("create", 1, **labels), insp(labels))
    life.handle(ev("start", 2, **labels))
    (stop,) = life.handle(ev("die", 3, **labels), insp(labels, exit_code=3))
    assert stop.details["exit_code"] == 3
    assert stop.details["reason"] == "exited"


def test_forged_exit_code_without_inspect_is_unknown():
    """When the container is gone and a label collides, the exit code is unknown, not forged."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1, exitCode="0"), insp({"exitCode": "0"}))
    (stop,) = life.handle(ev("die", 3, exitCode="0"), None)
    assert stop.details["exit_code"] is None


def test_exit_code_from_attribute_when_no_label_collides():
    """Without a colliding label, the die attribute gives the exit code if inspect fails."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    (stop,) = life.handle(ev("die", 3, exitCode="137"), None)
    assert stop.details["exit_code"] == 137


def test_forged_signal_is_dropped():
    """A label named signal makes the kill signal unknown; it is never reported as the label."""
    life = ContainerLifecycle()
    labels = {"signal": "forged"}
    life.handle(ev("create", 1, **labels), insp(labels))
    life.handle(ev("start", 2, **labels))
    life.handle(ev("kill", 3, **labels))
    (stop,) = life.handle(ev("die", 4, **labels), insp(labels, exit_code=137))
    assert stop.details["signal"] is None
    assert stop.details["reason"] == "killed"


def test_stop_versus_kill_reason():
    """A stop (SIGTERM first) is "stopped"; a kill with SIGKILL is "killed"."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    life.handle(ev("start", 2))
    life.handle(ev("kill", 3, signal="15"))
    life.handle(ev("kill", 4, signal="9"))
    (stop,) = life.handle(ev("die", 5), insp(exit_code=137))
    assert (stop.details["reason"], stop.details["signal"]) == ("stopped", 9)
    assert life.handle(ev("stop", 6)) == []
    life.handle(ev("start", 7))
    life.handle(ev("kill", 8, signal="9"))
    (stop,) = life.handle(ev("die", 9), insp(exit_code=137))
    assert (stop.details["reason"], stop.details["signal"]) == ("killed", 9)


def test_oom():
    """An oom event gives resource.oom_kill, and the stop says oom with reason oom."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    life.handle(ev("start", 2))
    assert types(life.handle(ev("oom", 3))) == ["resource.oom_kill"]
    (stop,) = life.handle(ev("die", 4, exitCode="137"), None)
    assert (stop.details["oom"], stop.details["reason"]) == (True, "oom")


def test_rename_old_name_from_tracking():
    """container.rename reports the name tracked before, not a forgeable attribute."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1, oldName="/forged"), insp({"oldName": "/forged"}))
    (event,) = life.handle(ev("rename", 2, name="new", oldName="/forged"))
    assert (event.details["container"], event.details["old_name"]) == ("new", "job")


def test_noise_dropped():
    """exec_* and health_status events and unknown actions produce nothing."""
    life = ContainerLifecycle()
    assert life.handle(ev("exec_start: sh -c true", 1)) == []
    assert life.handle(ev("health_status: healthy", 2)) == []
    assert life.handle(ev("attach", 3)) == []
    assert life.handle({"Action": "start"}) == []


def test_simple_actions_and_unknown_container_falls_back_to_attributes():
    """pause/unpause/restart map directly; an unseen container is attributed from attributes."""
    life = ContainerLifecycle()
    out = life.handle(ev("pause", 1, **{"ds01.user": "bob"}))
    out += life.handle(ev("unpause", 2))
    out += life.handle(ev("restart", 3))
    assert types(out) == ["container.pause", "container.unpause", "container.restart"]
    assert {e.user for e in out} == {"bob"}


def test_timestamp_exact_microseconds():
    """The event timeNano becomes a fixed-width UTC timestamp truncated to microseconds."""
    assert timestamp_from_nanos(1_795_317_630_000_001_999) == "2026-11-22T03:20:30.000001Z"


def test_allocate_and_release_carry_resolved_devices():
    """Once NVML is known, a configured MIG UUID becomes GPU index, GPU UUID and profile."""
    device = {"gpu_index": 0, "gpu_uuid": "GPU-a", "mig_uuid": "MIG-1", "mig_profile": "3g.40gb"}
    asked = []

    def resolve(ids):
        asked.append(list(ids))
        return [device]

    life = ContainerLifecycle(resolve_devices=resolve)
    gpu = insp(env=["NVIDIA_VISIBLE_DEVICES=MIG-1"])
    life.handle(ev("create", 1), gpu)
    allocate = next(e for e in life.handle(ev("start", 2)) if e.event_type == "gpu.allocate")
    assert allocate.details["devices"] == [device]
    assert (allocate.details["gpu_index"], allocate.details["mig_profile"]) == (0, "3g.40gb")
    assert allocate.details["gpu_devices"] == ["MIG-1"]
    release = life.handle(ev("die", 3, exitCode="0"), {**gpu, "State": {"ExitCode": 0}})[-1]
    assert (release.event_type, release.details["gpu_uuid"]) == ("gpu.release", "GPU-a")
    assert asked == [["MIG-1"], ["MIG-1"]]


def test_devices_not_resolved_while_nvml_is_unknown():
    """Without NVML (resolver answers None): the configuration only, and the flag from it."""
    life = ContainerLifecycle(resolve_devices=lambda _ids: None)
    life.handle(ev("create", 1), insp(env=["NVIDIA_VISIBLE_DEVICES=0"]))
    allocate, flag = life.handle(ev("start", 2))[-2:]
    assert "devices" not in allocate.details
    assert allocate.details["gpu_devices"] == ["0"]
    assert (flag.event_type, flag.details["seen"]) == ("detection.unmanaged_container", False)
    assert life.containers[CID].unmanaged_flagged is True
    life.handle(
        ev("die", 3, exitCode="0"),
        {**insp(env=["NVIDIA_VISIBLE_DEVICES=0"]), "State": {"ExitCode": 0}},
    )
    assert life.containers[CID].unmanaged_flagged is True  # kept across a fresh inspect


def test_no_flag_from_configuration_once_nvml_is_known():
    """With NVML known, an unmanaged holder is left to GPU polling: flagged when seen."""
    device = {"gpu_index": 0, "gpu_uuid": "GPU-a", "mig_uuid": None, "mig_profile": None}
    life = ContainerLifecycle(resolve_devices=lambda _ids: [device])
    life.handle(ev("create", 1), insp(env=["NVIDIA_VISIBLE_DEVICES=0"]))
    assert types(life.handle(ev("start", 2))) == ["container.start", "gpu.allocate"]
    assert life.containers[CID].unmanaged_flagged is False


def test_stop_carries_how_long_it_ran():
    """container.stop has ran_s: inspect's StartedAt..FinishedAt, else start to die."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    life.handle(ev("start", 2))
    (stop,) = life.handle(ev("die", 2 + 90 * 10**9))
    assert stop.details["ran_s"] == 90.0
    life.handle(ev("start", 10**12))
    state = insp(exit_code=1)
    state["State"] |= {
        "StartedAt": "2026-11-22T10:00:00.250000000Z",
        "FinishedAt": "2026-11-22T11:02:03.750000000Z",
    }
    (stop,) = life.handle(ev("die", 10**13), state)
    assert stop.details["ran_s"] == 3723.5


def test_signal_is_a_number():
    """Kill events carry the signal as text; container.stop carries it as a number."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    life.handle(ev("start", 2))
    life.handle(ev("kill", 3, signal="2"))
    (stop,) = life.handle(ev("die", 4))
    assert stop.details["signal"] == 2


def test_die_without_start_is_a_failed_start():
    """A die with no start before it (newer dockerd) is container.start_failed with the error."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    die = ev("die", 2, exitCode="127")
    assert life.needs_inspect(die)
    state = insp(exit_code=127)
    state["State"]["Error"] = 'exec: "/nope": stat /nope: no such file or directory'
    (failed,) = life.handle(die, state)
    assert failed.event_type == "container.start_failed"
    assert failed.details["exit_code"] == 127
    assert "no such file" in failed.details["error"]


def _disconnect(n):
    return {
        "Type": "network",
        "Action": "disconnect",
        "Actor": {"ID": "n" * 64, "Attributes": {"container": CID, "name": "none", "type": "null"}},
        "timeNano": T0 + n,
    }


def test_failed_start_seen_only_as_a_network_disconnect():
    """The 20.10 dockerd sends only a network disconnect for a failed start: inspect tells."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    assert life.needs_inspect(_disconnect(2))
    state = insp(exit_code=127)
    state["State"]["Error"] = "OCI runtime create failed"
    (failed,) = life.handle(_disconnect(2), state)
    assert failed.event_type == "container.start_failed"
    assert failed.details["container"] == "job"
    assert failed.details["error"] == "OCI runtime create failed"
    assert failed.timestamp == timestamp_from_nanos(T0 + 2)


def test_disconnect_after_a_normal_stop_is_no_news():
    """The disconnect that follows every die costs no inspect and logs nothing."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    life.handle(ev("start", 2))
    life.handle(ev("die", 3))
    assert not life.needs_inspect(_disconnect(4))
    assert life.handle(_disconnect(4), None) == []
    assert life.handle({**_disconnect(5), "Action": "destroy"}, None) == []
    assert CID in life.containers


def test_inspect_of_a_stopped_container_gives_run_time_and_start_error():
    """known_from_inspect reads ran_s from StartedAt..FinishedAt and a failed start's error."""
    from watcher.docker.known_container import known_from_inspect

    state = insp(exit_code=127)
    state["State"] |= {
        "Error": "exec failed",
        "StartedAt": "2026-11-22T10:00:00Z",
        "FinishedAt": "2026-11-22T10:00:01.5Z",
    }
    known = known_from_inspect(state)
    assert (known.ran_s, known.start_error) == (1.5, "exec failed")
    never = insp()
    never["State"] |= {"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}
    assert known_from_inspect(never).ran_s is None


def test_failed_start_of_a_container_already_removed():
    """A `docker run --rm` of a missing command: connect, disconnect, no start, no inspect."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    connect = {**_disconnect(2), "Action": "connect"}
    assert life.handle(connect, None) == []
    (failed,) = life.handle(_disconnect(3), None)
    assert failed.event_type == "container.start_failed"
    assert failed.details["error"] is None


def test_gone_container_that_started_is_no_failed_start():
    """A container gone by its disconnect that did start (connect, start, die) logs no failure."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    life.handle({**_disconnect(2), "Action": "connect"}, None)
    life.handle(ev("start", 3))
    life.handle(ev("die", 4))
    assert life.handle(_disconnect(5), None) == []


def test_die_without_start_and_without_inspect_is_a_stop():
    """A die whose start the stream lost, the container gone: a stop, never a guessed failure."""
    life = ContainerLifecycle()
    life.handle(ev("create", 1), insp())
    (stop,) = life.handle(ev("die", 2, exitCode="0"), None)
    assert stop.event_type == "container.stop"
