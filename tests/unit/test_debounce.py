"""Debounce: identity (pid, starttime), two-poll confirmation, no exits from void polls, restarts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.classify import ContainerFacts, classify
from detectors.debounce import DebounceState, load_state, save_state, step, subjects_of
from tests.unit.gpu_snapshots import contained, host, on_gpu, snapshot

CID = "c" * 64
FACTS = {CID: ContainerFacts(id=CID, name="adhoc")}


def _poll(state, snap, procs, now, running=None):
    classified = classify(snap, procs, FACTS) if snap is not None and snap.error is None else []
    return step(state, snap, subjects_of(classified), now, running_containers=running)


def _run(polls):
    """Run (snapshot, procs) polls from a fresh state; return (appeared keys, exited keys)."""
    state = DebounceState()
    appeared, exited = [], []
    for now, (snap, procs) in enumerate(polls):
        outcome = _poll(state, snap, procs, float(now))
        state = outcome.state
        appeared += [(t.kind, t.process.pid, t.process.starttime) for t in outcome.appeared]
        exited += [(t.kind, t.process.pid, t.process.starttime) for t in outcome.exited]
    return appeared, exited


def present(pid=10, starttime=5000, gpu=0):
    """A poll showing one host process."""
    return snapshot(on_gpu(pid, gpu)), {pid: host(pid, starttime=starttime)}


def absent():
    """A successful poll showing nothing."""
    return snapshot(), {}


def test_reported_after_two_polls_and_exits_once():
    """Seen twice: one report; then gone: one exit, with how long it ran."""
    state = DebounceState()
    first = _poll(state, *present(), 100.0)
    assert first.appeared == []
    second = _poll(first.state, *present(), 130.0)
    assert [t.kind for t in second.appeared] == ["host"]
    third = _poll(second.state, *present(), 160.0)
    assert third.appeared == []
    gone = _poll(third.state, *absent(), 190.0)
    assert [t.process.pid for t in gone.exited] == [10]
    assert gone.exited[0].ran_s == 60.0
    assert _poll(gone.state, *absent(), 220.0).exited == []


def test_pid_reuse_with_new_starttime_is_a_new_process():
    """Same PID, new starttime: the old one exits and the new one is reported on its own."""
    appeared, exited = _run(
        [present(starttime=1), present(starttime=1), present(starttime=2), present(starttime=2)]
    )
    assert appeared == [("host", 10, 1), ("host", 10, 2)]
    assert exited == [("host", 10, 1)]


def test_one_poll_blip_is_never_reported():
    """Present in one poll only, however often: never reported, never exited."""
    appeared, exited = _run([present(), absent(), present(), absent(), present()])
    assert (appeared, exited) == ([], [])


def test_gone_pid_is_not_a_sighting():
    """NVML listing a dead PID (no /proc entry) does not keep a process alive."""
    snap = snapshot(on_gpu(10, 0))
    appeared, exited = _run([present(), present(), (snap, {}), (snap, {})])
    assert appeared == [("host", 10, 5000)]
    assert exited == [("host", 10, 5000)]


def void_polls():
    """Polls that may never produce exits: timed out, NVML failed, GPU 0 failed or lost."""
    return st.sampled_from(
        [
            (None, {}),
            (snapshot(error="NVML_ERROR_UNKNOWN"), {}),
            (snapshot(failed={0: "NO_PERMISSION"}), {}),
            (snapshot(lost=(0,)), {}),
        ]
    )


@settings(max_examples=200)
@given(st.lists(st.booleans(), max_size=12), st.data())
def test_void_polls_change_nothing(pattern, data):
    """Inserting failed, partial or timed-out polls anywhere gives exactly the same events."""
    plain = [present() if seen else absent() for seen in pattern]
    mixed = []
    for poll in plain:
        mixed += data.draw(st.lists(void_polls(), max_size=2))
        mixed.append(poll)
    mixed += data.draw(st.lists(void_polls(), max_size=3))
    assert _run(mixed) == _run(plain)


@settings(max_examples=200)
@given(st.lists(st.booleans(), max_size=16))
def test_reports_match_runs_of_two_or_more(pattern):
    """Reports = runs of two or more consecutive sightings; exits = such runs that ended."""
    appeared, exited = _run([present() if seen else absent() for seen in pattern])
    runs, length = [], 0
    for seen in pattern:
        if seen:
            length += 1
        else:
            runs.append((length, True))  # ended by an empty poll
            length = 0
    runs.append((length, False))  # still running at the end
    assert len(appeared) == sum(1 for n, _ in runs if n >= 2)
    assert len(exited) == sum(1 for n, ended in runs if n >= 2 and ended)


def test_failed_gpu_keeps_other_gpus_counting():
    """One GPU failing voids only its own part: a process on the other GPU still exits."""
    state = DebounceState()
    both = snapshot(on_gpu(10, 0), on_gpu(11, 1))
    procs = {10: host(10), 11: host(11, starttime=7)}
    state = _poll(state, both, procs, 1.0).state
    state = _poll(state, both, procs, 2.0).state
    outcome = _poll(state, snapshot(failed={0: "GPU_IS_LOST"}), {}, 3.0)
    assert [t.process.pid for t in outcome.exited] == [11]
    assert [t.process.pid for t in _poll(outcome.state, *absent(), 4.0).exited] == [10]


def test_gpu_lost_reported_once_per_boot(tmp_path):
    """A lost GPU is reported once, also across a restart; after a reboot it may be again."""
    lost = snapshot(lost=(1,))
    first = step(DebounceState(boot_id="boot-1"), lost, [], 1.0)
    assert [g.index for g in first.lost] == [1]
    assert step(first.state, lost, [], 2.0).lost == []
    save_state(tmp_path / "s.json", first.state)
    again, problem = load_state(tmp_path / "s.json", "boot-1")
    assert problem is None
    assert step(again, lost, [], 3.0).lost == []
    rebooted, _ = load_state(tmp_path / "s.json", "boot-2")
    assert len(step(rebooted, lost, [], 4.0).lost) == 1


def test_restart_does_not_report_again(tmp_path):
    """A watcher restart reloads what was reported: no second report, and the exit still comes."""
    path = tmp_path / "state.json"
    state = _poll(DebounceState(), *present(), 1.0).state
    outcome = _poll(state, *present(), 2.0)
    assert len(outcome.appeared) == 1
    save_state(path, outcome.state)
    loaded, _ = load_state(path, None)
    assert _poll(loaded, *present(), 3.0).appeared == []
    assert len(_poll(loaded, *absent(), 3.0).exited) == 1


def test_restart_forgets_unconfirmed_sightings(tmp_path):
    """A sighting seen once before a restart needs two polls after it."""
    path = tmp_path / "state.json"
    save_state(path, _poll(DebounceState(), *present(), 1.0).state)
    loaded, _ = load_state(path, None)
    assert _poll(loaded, *present(), 2.0).appeared == []


def test_unreadable_state_starts_over(tmp_path):
    """A corrupt state file is one line saying so, and a fresh state."""
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state, problem = load_state(path, None)
    assert state.tracked == {}
    assert problem is not None
    assert "starting over" in problem


def test_unmanaged_container_flagged_once_while_it_runs():
    """An unmanaged container is flagged once, not again when its job pauses and resumes."""
    seen = snapshot(on_gpu(20, 0)), {20: contained(20, CID)}
    idle = absent()
    state = DebounceState()
    kinds = []
    for now, poll in enumerate([seen, seen, idle, seen, seen, idle]):
        outcome = _poll(state, *poll, float(now), running={CID})
        state = outcome.state
        kinds += [t.kind for t in outcome.appeared]
    assert kinds == ["unmanaged"]
    stopped = _poll(state, *idle, 9.0, running=set())
    assert stopped.state.tracked == {}
