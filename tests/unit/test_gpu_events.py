"""The GPU events carry exactly the detail keys the catalogue documents."""

from __future__ import annotations

from detectors.classify import ContainerFacts, classify
from detectors.debounce import DebounceState, step, subjects_of
from detectors.gpu_events import nvml_unresponsive_event, outcome_events
from ds01_events.catalogue import EVENT_TYPES
from tests.unit.gpu_snapshots import contained, host, migs, on_gpu, on_mig, snapshot

CID = "c" * 64
FACTS = {CID: ContainerFacts(id=CID, name="adhoc", user="x" * 300, gpu_devices=("1",))}


def _all_events():
    snap = snapshot(on_gpu(10, 1), on_mig(20, 0, 3), mig=(0,), mig_devices=migs(0))
    procs = {10: host(10), 20: contained(20, CID)}
    state, events = DebounceState(), []
    for snap_now, now in ((snap, 1.0), (snap, 2.0), (snapshot(lost=(1,)), 3.0), (snapshot(), 4.0)):
        classified = classify(snap_now, procs, FACTS)
        outcome = step(state, snap_now, subjects_of(classified), now)
        state = outcome.state
        events += outcome_events(outcome)
    return [*events, nvml_unresponsive_event(10.0)]


def test_every_gpu_event_is_in_the_catalogue_with_its_keys():
    """Each type the GPU side writes is documented, and uses only documented keys."""
    events = _all_events()
    assert {e.event_type for e in events} == {
        "detection.host_gpu_process",
        "detection.host_gpu_process_exited",
        "detection.unmanaged_container",
        "detection.gpu_mismatch",
        "detection.gpu_lost",
        "monitoring.nvml_unresponsive",
    }
    for event in events:
        documented = set(EVENT_TYPES[event.event_type].details)
        assert set(event.details) <= documented, event.event_type


def test_a_user_name_the_envelope_refuses_is_left_out():
    """A label-supplied user too long for the envelope does not cost the event."""
    unmanaged = [e for e in _all_events() if e.event_type == "detection.unmanaged_container"]
    assert len(unmanaged) == 1
    assert unmanaged[0].user is None
    assert unmanaged[0].details["mig_profile"] == "1g.10gb"
