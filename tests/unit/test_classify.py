"""Classification of GPU processes and the device rules, on hand-built snapshots."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.classify import ContainerFacts, classify
from detectors.devices import DeviceMap, allows, resolve
from tests.unit.gpu_snapshots import (
    UUID,
    contained,
    host,
    mig_uuid,
    migs,
    on_gpu,
    on_mig,
    snapshot,
)

CID = "c" * 64
NAMES = {1001: "alice", 1002: "bob"}


def _one(snap, procs, containers=None):
    (result,) = classify(snap, procs, containers or {}, user_by_uid=NAMES.get)
    return result


def test_host_process_user_from_uid():
    """A host process is attributed to the account of its real uid."""
    result = _one(snapshot(on_gpu(10, 1)), {10: host(10, uid=1001)})
    assert (result.klass, result.rule, result.user, result.attributed_by) == (
        "host_process",
        "host",
        "alice",
        "uid",
    )
    assert (result.gpu_index, result.gpu_uuid, result.used_memory_mib) == (1, UUID[1], 512)


def test_uid_without_account_is_its_number():
    """A uid with no account stays visible as its number."""
    assert _one(snapshot(on_gpu(10, 0)), {10: host(10, uid=4242)}).user == "4242"


def test_gone_when_proc_has_no_entry():
    """NVML can list a dead PID: /proc decides, and it is gone."""
    result = _one(snapshot(on_gpu(10, 0)), {10: None})
    assert (result.klass, result.rule, result.starttime) == ("gone", "no_proc", None)


@pytest.mark.parametrize(
    "program", ["nvidia-persistenced", "nv-hostengine", "dcgm-exporter", "nvidia-smi", "Xorg"]
)
def test_infrastructure_programs(program):
    """The platform's own GPU holders are infrastructure, never host processes."""
    result = _one(snapshot(on_gpu(10, 0)), {10: host(10, uid=0, program=program)})
    assert (result.klass, result.rule) == ("infrastructure", "infrastructure_program")


def test_managed_container_user_from_its_attribution():
    """A container process runs as root: its user is the container's, with the rule."""
    facts = ContainerFacts(
        id=CID,
        name="alice-job",
        user="alice",
        attributed_by="ds01.user",
        managed=True,
        gpu_devices=(mig_uuid(0, 2),),
    )
    snap = snapshot(on_mig(20, 0, 2), mig=(0,), mig_devices=migs(0, profile="3g.40gb"))
    result = _one(snap, {20: contained(20, CID)}, {CID: facts})
    assert (result.klass, result.rule, result.user, result.attributed_by) == (
        "managed_container",
        "managed_label",
        "alice",
        "ds01.user",
    )
    assert (result.mig_uuid, result.mig_profile, result.mig_index) == (mig_uuid(0, 2), "3g.40gb", 2)
    assert result.outside_config is False
    assert (result.container, result.container_id) == ("alice-job", CID)


@pytest.mark.parametrize(
    ("configured", "device", "outside"),
    [
        (("0",), on_gpu(20, 1), True),  # index 0 given, computing on GPU 1
        (("1",), on_gpu(20, 1), False),
        ((UUID[1],), on_gpu(20, 1), False),
        ((UUID[0],), on_gpu(20, 1), True),
        (("all",), on_gpu(20, 1), False),
        (("/dev/nvidia1",), on_gpu(20, 1), False),
        (("count:1",), on_gpu(20, 1), None),  # which GPU was not said
        ((), on_gpu(20, 1), True),  # a managed container with no GPU at all
    ],
)
def test_managed_container_outside_its_configuration(configured, device, outside):
    """Configured indices, UUIDs, device nodes and 'all' are checked against the device used."""
    facts = ContainerFacts(id=CID, name="j", user="bob", managed=True, gpu_devices=configured)
    result = _one(snapshot(device), {20: contained(20, CID)}, {CID: facts})
    assert result.outside_config is outside


@pytest.mark.parametrize(
    ("configured", "process", "outside"),
    [
        ((mig_uuid(0, 2),), on_mig(20, 0, 2), False),
        ((mig_uuid(0, 2),), on_mig(20, 0, 3), True),  # a sibling MIG device
        ((UUID[0],), on_mig(20, 0, 5), False),  # the whole parent GPU gives its MIG devices
        (("0:2",), on_mig(20, 0, 2), False),
        (("0.3",), on_mig(20, 0, 2), True),
        ((f"MIG-{UUID[0]}/9/0",), on_mig(20, 0, 2), False),  # legacy gi/ci form
    ],
)
def test_mig_configuration(configured, process, outside):
    """A MIG UUID gives that slice only; the parent GPU gives all its slices."""
    facts = ContainerFacts(id=CID, name="j", managed=True, gpu_devices=configured)
    snap = snapshot(process, mig=(0,), mig_devices=migs(0))
    assert _one(snap, {20: contained(20, CID)}, {CID: facts}).outside_config is outside


def test_unlabelled_container_is_unmanaged_without_mismatch():
    """No managed marker: unmanaged; with no GPU configuration it is not also a mismatch."""
    facts = ContainerFacts(id=CID, name="adhoc", user=None)
    result = _one(snapshot(on_gpu(20, 0)), {20: contained(20, CID)}, {CID: facts})
    assert (result.klass, result.rule, result.outside_config) == (
        "unmanaged_container",
        "no_managed_label",
        None,
    )
    assert result.user is None  # root inside is not a user


def test_unmanaged_container_with_configuration_can_mismatch():
    """An unmanaged container given GPU 0 but computing on GPU 1 is outside its configuration."""
    facts = ContainerFacts(id=CID, name="adhoc", gpu_devices=("0",))
    result = _one(snapshot(on_gpu(20, 1)), {20: contained(20, CID)}, {CID: facts})
    assert (result.klass, result.outside_config) == ("unmanaged_container", True)


def test_infrastructure_label_wins():
    """A container labelled infrastructure is never flagged, even outside its configuration."""
    facts = ContainerFacts(id=CID, name="dcgm", infrastructure=True, gpu_devices=("0",))
    result = _one(snapshot(on_gpu(20, 1)), {20: contained(20, CID)}, {CID: facts})
    assert (result.klass, result.rule, result.outside_config) == (
        "infrastructure",
        "infrastructure_label",
        None,
    )


def test_unknown_rootless_container_user_from_its_daemon_owner():
    """A container our dockerd does not know, under a rootless daemon: the owner's account."""
    result = _one(snapshot(on_gpu(20, 0)), {20: contained(20, CID, uid=1002, rootless_uid=1002)})
    assert (result.klass, result.rule, result.user, result.attributed_by) == (
        "unmanaged_container",
        "unknown_container",
        "bob",
        "rootless_uid",
    )


def test_unknown_root_container_has_no_user():
    """Root in an unknown container says nothing about who started it."""
    result = _one(snapshot(on_gpu(20, 0)), {20: contained(20, CID)})
    assert (result.user, result.attributed_by) == (None, None)


def test_resolve_reports_what_nvml_does_not_see():
    """Identifiers that match nothing are kept as unresolved and give no device."""
    devices = DeviceMap(snapshot(count=2).gpus, ())
    resolution = resolve(["7", UUID[1], "GPU-nope"], devices)
    assert [d.gpu_index for d in resolution.devices] == [1]
    assert resolution.unresolved == ("7", "GPU-nope")
    assert allows(resolution, devices.whole(devices.gpus[0])) is False


def test_device_node_names_the_gpu_with_that_minor_number():
    """/dev/nvidiaN is the GPU whose minor number is N, not the one at NVML index N."""
    gpus = [msgspec.structs.replace(g, minor=1 - g.index) for g in snapshot(count=2).gpus]
    devices = DeviceMap(gpus, ())
    resolution = resolve(["/dev/nvidia0", "/dev/nvidia5"], devices)
    assert [d.gpu_index for d in resolution.devices] == [1]
    assert resolution.unresolved == ("/dev/nvidia5",)
    # Where NVML gave no minor number, N is taken as the index.
    unnumbered = DeviceMap(snapshot(count=2).gpus, ())
    assert [d.gpu_index for d in resolve(["/dev/nvidia0"], unnumbered).devices] == [0]


identifiers = st.lists(
    st.one_of(
        st.sampled_from(["0", "1", "all", "count:2", "/dev/nvidia1", "0:3", "1.9", ""]),
        st.sampled_from(UUID[:3]),
        st.builds(mig_uuid, st.integers(0, 2), st.integers(0, 8)),
        st.text(max_size=20),
    ),
    max_size=6,
)


@given(identifiers, st.integers(0, 1), st.one_of(st.none(), st.integers(0, 6)))
def test_classify_never_raises_on_any_configuration(configured, gpu, mig):
    """Any configuration against any device gives a verdict (True, False or None)."""
    process = on_mig(20, 0, mig) if mig is not None else on_gpu(20, gpu)
    facts = ContainerFacts(id=CID, name="x", managed=True, gpu_devices=tuple(configured))
    snap = snapshot(process, mig=(0,), mig_devices=migs(0))
    result = _one(snap, {20: contained(20, CID)}, {CID: facts})
    assert result.outside_config in (True, False, None)
    if "all" in configured:
        assert result.outside_config is False


def test_user_cgroup_named_like_a_system_container_is_not_that_container():
    """A user's own cgroup named docker-<id>.scope of a managed container does not borrow it."""
    facts = ContainerFacts(id=CID, name="alice-job", user="alice", managed=True, gpu_devices=("1",))
    forged = contained(20, CID, uid=1002, rootless_uid=1002)
    result = _one(snapshot(on_gpu(20, 1)), {20: forged}, {CID: facts})
    assert (result.klass, result.rule, result.user) == (
        "unmanaged_container",
        "unknown_container",
        "bob",
    )
    assert result.container is None
