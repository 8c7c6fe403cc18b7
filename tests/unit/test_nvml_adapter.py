"""detectors.nvml against the fake NVML library, through the real pynvml, in a child."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.snapshot import NvmlSnapshot
from tests.fakes.nvml import FakeNvml, Session, mig_layout, real_driver_installed

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the fake NVML")

READ = """
import msgspec
from detectors.nvml import NvmlReader
print(msgspec.json.encode(NvmlReader().read()).decode())
"""

PLAIN = """\
gpu 0 uuid=GPU-aaaa name="NVIDIA A100-PCIE-40GB" memory=40960 mig=off
gpu 1 uuid=GPU-bbbb name="NVIDIA RTX A6000" memory=49140
gpu 2 uuid=GPU-cccc mig=on
mig 2 0 gi=3 ci=0 uuid=MIG-cccc-0 profile=3g.40gb memory=40192
proc 0 pid=10 memory=1024
proc 1 pid=11 memory=na
proc 1 pid=12 memory=5 kind=graphics
proc 2/0 pid=13 memory=300
"""


@pytest.fixture
def fake(tmp_path: Path):
    fake = FakeNvml(tmp_path / "nvml")
    yield fake
    fake.close()


def read(fake: FakeNvml, fixture: str) -> NvmlSnapshot:
    """One snapshot from a fresh child on ``fixture`` (the fake checked loaded)."""
    fake.write(fixture)
    result = fake.run_python(READ)
    assert result.returncode == 0, result.stderr
    return msgspec.json.decode(result.stdout.splitlines()[-1], type=NvmlSnapshot)


def test_plain_gpus_processes_and_na_memory(fake: FakeNvml) -> None:
    """GPUs with and without MIG support; N/A memory is None; graphics processes kept."""
    snap = read(fake, PLAIN)
    assert snap.error is None
    assert snap.driver_version == "550.54.15"
    assert [(g.index, g.uuid, g.name, g.memory_total_mib, g.mig_mode) for g in snap.gpus] == [
        (0, "GPU-aaaa", "NVIDIA A100-PCIE-40GB", 40960, False),
        (1, "GPU-bbbb", "NVIDIA RTX A6000", 49140, None),
        (2, "GPU-cccc", "NVIDIA A100-SXM4-80GB", 81920, True),
    ]
    assert [(g.lost, g.failed) for g in snap.gpus] == [(False, None)] * 3
    procs = {p.pid: p for p in snap.processes}
    assert procs[10].used_memory_mib == 1024
    assert procs[10].mig_uuid is None
    assert procs[10].mig_index is None
    assert procs[11].used_memory_mib is None
    assert procs[12].kind == "graphics"
    assert (procs[13].gpu_index, procs[13].mig_uuid, procs[13].mig_index) == (2, "MIG-cccc-0", 0)
    assert snap.mig_devices[0].gpu_instance_id == 3
    assert snap.mig_devices[0].compute_instance_id == 0
    assert snap.mig_devices[0].profile == "3g.40gb"


def test_minor_numbers_are_what_the_driver_reports(fake: FakeNvml) -> None:
    """Each GPU's minor number (its /dev/nvidiaN) is read, not assumed to be its index."""
    snap = read(
        fake, "gpu 0 uuid=GPU-aaaa minor=2\ngpu 1 uuid=GPU-bbbb\ngpu 2 uuid=GPU-cccc minor=0\n"
    )
    assert [(g.index, g.minor) for g in snap.gpus] == [(0, 2), (1, 1), (2, 0)]
    unanswered = read(
        fake, "gpu 0 uuid=GPU-aaaa\nerror nvmlDeviceGetMinorNumber NVML_ERROR_NOT_SUPPORTED\n"
    )
    assert [(g.index, g.minor, g.failed) for g in unanswered.gpus] == [(0, None, None)]


def test_eight_gpus_with_seven_mig_devices_each(fake: FakeNvml) -> None:
    """8 GPUs x 7 MIG devices: 56 devices with profiles and ids, each process once on its device."""
    pids = list(range(1000, 1112))
    snap = read(fake, mig_layout(8, 7, pids))
    assert snap.error is None
    assert len(snap.gpus) == 8
    assert all(g.mig_mode and g.failed is None for g in snap.gpus)
    assert len(snap.mig_devices) == 56
    assert {(m.parent_index, m.mig_index) for m in snap.mig_devices} == {
        (g, s) for g in range(8) for s in range(7)
    }
    assert all(m.profile == "1g.10gb" and m.memory_total_mib == 9856 for m in snap.mig_devices)
    assert [m.gpu_instance_id for m in snap.mig_devices[:7]] == [7, 8, 9, 10, 11, 12, 13]
    assert sorted(p.pid for p in snap.processes) == pids
    first = next(p for p in snap.processes if p.pid == 1000)
    assert (first.gpu_index, first.mig_index) == (0, 0)
    assert first.mig_uuid == "MIG-00000000-2222-4000-8000-000000000000"
    eighth = next(p for p in snap.processes if p.pid == 1007)
    assert (eighth.gpu_index, eighth.mig_index, eighth.used_memory_mib) == (1, 0, 8)


def test_privileged_parent_never_counts_a_process_twice(fake: FakeNvml) -> None:
    """Where the parent's list answers (root), MIG processes are still listed once each."""
    snap = read(fake, mig_layout(2, 7, list(range(50, 70)), parent="aggregate"))
    assert sorted(p.pid for p in snap.processes) == list(range(50, 70))
    assert all(p.mig_uuid is not None for p in snap.processes)


def test_mig_on_gpu_without_instances(fake: FakeNvml) -> None:
    """A GPU in MIG mode with no MIG devices: MIG on, no devices, no processes, not failed."""
    snap = read(fake, "gpu 0 mig=on\ngpu 1\nproc 1 pid=5\n")
    assert snap.gpus[0].mig_mode is True
    assert snap.gpus[0].failed is None
    assert snap.mig_devices == ()
    assert [(p.pid, p.gpu_index) for p in snap.processes] == [(5, 1)]


def test_sparse_mig_slots_answer_not_found_and_are_skipped(fake: FakeNvml) -> None:
    """Empty MIG slots (NOT_FOUND) are skipped, later ones still read."""
    snap = read(fake, "gpu 0 mig=on\nmig 0 1 profile=2g.20gb\nmig 0 6\nproc 0/6 pid=9\n")
    assert [(m.mig_index, m.profile) for m in snap.mig_devices] == [(1, "2g.20gb"), (6, "1g.10gb")]
    assert [(p.pid, p.mig_index) for p in snap.processes] == [(9, 6)]


def test_count_growing_past_pynvmls_margin_is_asked_again(fake: FakeNvml) -> None:
    """A list that outgrew the second sizing call once is asked again and read whole."""
    procs = "".join(f"proc 0 pid={100 + i}\n" for i in range(30))
    snap = read(fake, "gpu 0\ngpu 1\n" + procs + "grow 0 by=29 times=1\n")
    assert snap.gpus[0].failed is None
    assert len(snap.processes) == 30
    always = read(fake, "gpu 0\ngpu 1\nproc 1 pid=7\n" + procs + "grow 0 by=29\n")
    assert always.gpus[0].failed is not None
    assert "Insufficient Size" in always.gpus[0].failed
    assert [p.pid for p in always.processes] == [7]


@pytest.mark.parametrize(
    ("rule", "failed_gpu"),
    [
        ("error nvmlDeviceGetComputeRunningProcesses_v3 gpu=1 NVML_ERROR_NO_PERMISSION", 1),
        ("error nvmlDeviceGetComputeRunningProcesses_v3 gpu=1 NVML_ERROR_NOT_SUPPORTED", 1),
        ("error nvmlDeviceGetGraphicsRunningProcesses_v3 gpu=1 NVML_ERROR_NO_PERMISSION", 1),
        ("error nvmlDeviceGetComputeRunningProcesses_v3 gpu=2/0 NVML_ERROR_NO_PERMISSION", 2),
        ("error nvmlDeviceGetComputeRunningProcesses_v3 gpu=1 NVML_ERROR_UNKNOWN", 1),
        ("error nvmlDeviceGetMaxMigDeviceCount gpu=2 NVML_ERROR_UNKNOWN", 2),
        ("error nvmlDeviceGetMigDeviceHandleByIndex gpu=2 NVML_ERROR_NO_PERMISSION", 2),
        ("error nvmlDeviceGetUUID gpu=2/0 NVML_ERROR_NOT_SUPPORTED", 2),
    ],
)
def test_one_gpu_failing_voids_only_its_part(fake: FakeNvml, rule: str, failed_gpu: int) -> None:
    """A GPU (or one of its MIG devices) whose lists fail is `failed`; others still report."""
    snap = read(fake, PLAIN + rule + "\n")
    assert snap.error is None
    failed = {g.index: g.failed for g in snap.gpus if g.failed}
    assert list(failed) == [failed_gpu]
    assert "nvmlDeviceGet" in failed[failed_gpu]
    assert all(p.gpu_index != failed_gpu for p in snap.processes)
    assert {p.gpu_index for p in snap.processes} == {0, 1, 2} - {failed_gpu}


def test_graphics_list_not_supported_is_no_failure(fake: FakeNvml) -> None:
    """Compute-only boards answer NOT_SUPPORTED for graphics: the GPU still counts."""
    snap = read(
        fake, PLAIN + "error nvmlDeviceGetGraphicsRunningProcesses_v3 NVML_ERROR_NOT_SUPPORTED\n"
    )
    assert all(g.failed is None for g in snap.gpus)
    assert sorted(p.pid for p in snap.processes) == [10, 11, 13]


def test_single_questions_without_answer_are_none(fake: FakeNvml) -> None:
    """NO_PERMISSION / NOT_SUPPORTED on a name or memory is None, not 'N/A', not a failure."""
    snap = read(
        fake,
        PLAIN
        + "error nvmlDeviceGetName gpu=0 NVML_ERROR_NO_PERMISSION\n"
        + "error nvmlDeviceGetMemoryInfo NVML_ERROR_NOT_SUPPORTED\n"
        + "error nvmlDeviceGetGpuInstanceId NVML_ERROR_NOT_SUPPORTED\n",
    )
    assert snap.gpus[0].name is None
    assert snap.gpus[0].failed is None
    assert all(g.memory_total_mib is None for g in snap.gpus)
    assert snap.mig_devices[0].gpu_instance_id is None
    assert snap.mig_devices[0].profile == "3g.40gb"
    assert len(snap.processes) == 4


def test_lost_gpu_is_marked_and_keeps_its_uuid(fake: FakeNvml) -> None:
    """GPU_IS_LOST marks that GPU lost (UUID remembered from before); the others report."""
    fake.write(PLAIN)
    session = fake.session()
    session.ask("read")
    fake.write(PLAIN.replace("gpu 1 uuid=GPU-bbbb", "gpu 1 lost uuid=GPU-bbbb"))
    snap = msgspec.convert(session.ask("read"), NvmlSnapshot)
    session.check_fake_loaded()
    assert snap.error is None
    assert [(g.index, g.lost, g.uuid) for g in snap.gpus] == [
        (0, False, "GPU-aaaa"),
        (1, True, "GPU-bbbb"),
        (2, False, "GPU-cccc"),
    ]
    assert snap.gpus[1].failed == "GPU is lost"
    assert sorted(p.pid for p in snap.processes) == [10, 13]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("error nvmlInitWithFlags NVML_ERROR_DRIVER_NOT_LOADED", "NVIDIA driver not loaded"),
        ("error nvmlInitWithFlags NVML_ERROR_LIB_RM_VERSION_MISMATCH", "versions differ"),
        ("error nvmlDeviceGetCount_v2 NVML_ERROR_LIB_RM_VERSION_MISMATCH", "versions differ"),
        (
            "error nvmlDeviceGetComputeRunningProcesses_v3 gpu=0 NVML_ERROR_FUNCTION_NOT_FOUND",
            "NVML driver older than pynvml",
        ),
    ],
)
def test_nvml_unavailable_is_one_reason_and_no_gpus(fake: FakeNvml, rule: str, reason: str) -> None:
    """Driver not loaded, library/kernel mismatch, pynvml's mismatch error: error set, no GPUs."""
    snap = read(fake, PLAIN + rule + "\n")
    assert snap.error is not None
    assert reason in snap.error
    assert "\n" not in snap.error
    assert snap.gpus == ()
    assert snap.processes == ()


def test_no_fixture_is_a_machine_without_the_driver(fake: FakeNvml) -> None:
    """The fake without a fixture file answers DRIVER_NOT_LOADED: one clear reason."""
    result = fake.run_python(READ)
    snap = msgspec.json.decode(result.stdout.splitlines()[-1], type=NvmlSnapshot)
    assert snap.error is not None
    assert snap.error.startswith("NVIDIA driver not loaded")


def test_library_missing_is_unavailable_with_one_clear_reason(fake: FakeNvml) -> None:
    """Without libnvidia-ml.so.1 on the library path: unavailable, and nothing was loaded."""
    if real_driver_installed():
        pytest.skip("this machine has a real libnvidia-ml; it would be found")
    fake.write(PLAIN)
    result = fake.run_python(READ, with_library=False, check_fake=False)
    assert result.returncode == 0, result.stderr
    snap = msgspec.json.decode(result.stdout.splitlines()[-1], type=NvmlSnapshot)
    assert snap.error == (
        "NVML library libnvidia-ml.so.1 not found: is the NVIDIA driver installed?"
    )
    assert snap.gpus == ()
    assert result.loaded == {"maps": [], "fake": None}


def test_recovers_when_the_driver_comes_back(fake: FakeNvml) -> None:
    """After an unavailable poll, the same process reads GPUs again once NVML answers."""
    fake.write(PLAIN + "error nvmlInitWithFlags NVML_ERROR_DRIVER_NOT_LOADED\n")
    session = fake.session()
    first = session.ask("read")
    fake.write(PLAIN)
    second = session.ask("read")
    session.check_fake_loaded()
    assert first["error"].startswith("NVIDIA driver not loaded")
    assert second["error"] is None
    assert len(second["gpus"]) == 3


def test_only_the_adapter_imports_pynvml() -> None:
    """No module of the project but detectors/nvml.py imports pynvml."""
    import ast

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("lib", "watcher", "detectors"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(name.split(".")[0] == "pynvml" for name in names):
                    offenders.append(str(path.relative_to(root)))
    assert offenders == ["detectors/nvml.py"]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[str, dict[int, tuple[int, int | None, int | None]]]:
    """A random fixture and, per pid, where and with what memory it must be reported."""
    lines, expected = [], {}
    pid = 100
    for gpu in range(draw(st.integers(1, 4))):
        mode = draw(st.sampled_from(["on", "off", "none"]))
        parent = draw(st.sampled_from(["denied", "aggregate"]))
        lines.append(f"gpu {gpu} mig={mode} parent={parent}")
        slots = sorted(draw(st.sets(st.integers(0, 6), max_size=7))) if mode != "none" else []
        lines.extend(f"mig {gpu} {slot}" for slot in slots)
        places = [str(gpu)] if mode != "on" else [f"{gpu}/{slot}" for slot in slots]
        for _ in range(draw(st.integers(0, 6)) if places else 0):
            place = draw(st.sampled_from(places))
            memory = draw(st.one_of(st.none(), st.integers(0, 80000)))
            kind = draw(st.sampled_from(["compute", "graphics"]))
            lines.append(
                f"proc {place} pid={pid} memory={'na' if memory is None else memory} kind={kind}"
            )
            slot = int(place.split("/")[1]) if "/" in place else None
            expected[pid] = (gpu, slot, memory)
            pid += 1
    return "\n".join(lines) + "\n", expected


@pytest.fixture
def session(fake: FakeNvml):
    """One long-running child for many examples (checked to run on the fake at the end)."""
    fake.write("gpu 0\n")
    session = fake.session()
    yield session
    session.check_fake_loaded()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=layouts())
def test_any_layout_reports_each_process_once_where_it_runs(
    fake: FakeNvml, session: Session, layout
) -> None:
    """Random GPUs, MIG modes, slots and processes: each pid once, on its device, memory kept."""
    fixture, expected = layout
    fake.write(fixture)
    snap = msgspec.convert(session.ask("read"), NvmlSnapshot)
    assert snap.error is None
    assert all(g.failed is None and not g.lost for g in snap.gpus)
    got = {p.pid: (p.gpu_index, p.mig_index, p.used_memory_mib) for p in snap.processes}
    assert len(got) == len(snap.processes)
    assert got == expected
    migs = {(m.parent_index, m.mig_index): m.uuid for m in snap.mig_devices}
    assert all(p.mig_uuid == migs.get((p.gpu_index, p.mig_index)) for p in snap.processes)
