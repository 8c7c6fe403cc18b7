"""The fake libnvidia-ml itself, through the real pynvml, gpustat and nvitop."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.fakes.nvml import HERE, FakeNvml

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the fake NVML")

BASIC = """\
driver 550.54.15
gpu 0 name="NVIDIA H100 80GB HBM3" mig=on memory=81559
mig 0 0 gi=1 ci=0 profile=3g.40gb memory=40192
mig 0 1 gi=2 ci=0 profile=1g.10gb
gpu 1 mig=none
gpu 2 mig=off
proc 0/0 pid=101 memory=100
proc 0/1 pid=102 memory=na
proc 1 pid=103 memory=200
proc 1 pid=104 kind=graphics
"""


@pytest.fixture
def fake(tmp_path: Path):
    fake = FakeNvml(tmp_path / "nvml")
    fake.write(BASIC)
    yield fake
    fake.close()


def run(fake: FakeNvml, code: str) -> object:
    """Run pynvml code in a child on the fake; its last line as JSON (fake checked loaded)."""
    result = fake.run_python("import json, pynvml\n" + textwrap.dedent(code))
    assert result.returncode == 0, result.stderr
    return result.json()


def nvml_header() -> Path | None:
    """The nvml.h of the nvidia-nvml-dev package, if installed."""
    try:
        import nvidia  # type: ignore[import-untyped]
    except ImportError:
        return None
    for base in map(Path, nvidia.__path__):
        for found in base.glob("*/include/nvml.h"):
            return found
    return None


def test_struct_sizes_match_nvidias_header(tmp_path: Path) -> None:
    """Every struct size, field offset and code the fake uses equals NVIDIA's nvml.h."""
    header = nvml_header()
    if header is None:
        pytest.fail("nvml.h missing: install the test extra (nvidia-nvml-dev)")
    outputs = []
    for name, flags in (("fake", []), ("nvidia", ["-DUSE_NVML_H", f"-I{header.parent}"])):
        binary = tmp_path / f"sizes-{name}"
        subprocess.run(
            ["gcc", *flags, "-o", str(binary), str(HERE / "sizes.c")],
            check=True,
            capture_output=True,
        )
        outputs.append(
            subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
        )
    assert "sizeof nvmlProcessInfo_t 24" in outputs[0]
    assert outputs[0] == outputs[1]


def test_pynvml_reads_gpus_mig_devices_and_processes(fake: FakeNvml) -> None:
    """Through pynvml: names, MIG profiles in names, ids, c_uint MIG check, _v3 lists."""
    got = run(
        fake,
        """
        pynvml.nvmlInit()
        gpu0 = pynvml.nvmlDeviceGetHandleByIndex(0)
        mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, 0)
        try:
            pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, 2)
            empty = "answered"
        except pynvml.NVMLError_NotFound:
            empty = "NOT_FOUND"
        try:
            pynvml.nvmlDeviceGetComputeRunningProcesses(gpu0)
            parent = "answered"
        except pynvml.NVMLError_NoPermission:
            parent = "NO_PERMISSION"
        try:
            pynvml.nvmlDeviceGetMigMode(pynvml.nvmlDeviceGetHandleByIndex(1))
            no_mig = "answered"
        except pynvml.NVMLError_NotSupported:
            no_mig = "NOT_SUPPORTED"
        is_mig = pynvml.nvmlDeviceIsMigDeviceHandle(mig)
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(mig)
        procs1 = pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(1))
        back = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
        print(json.dumps({
            "count": pynvml.nvmlDeviceGetCount(),
            "driver": pynvml.nvmlSystemGetDriverVersion(),
            "name0": pynvml.nvmlDeviceGetName(gpu0),
            "mig_name": pynvml.nvmlDeviceGetName(mig),
            "mig_mode": pynvml.nvmlDeviceGetMigMode(gpu0),
            "max_mig": pynvml.nvmlDeviceGetMaxMigDeviceCount(gpu0),
            "gi": pynvml.nvmlDeviceGetGpuInstanceId(mig),
            "ci": pynvml.nvmlDeviceGetComputeInstanceId(mig),
            "mig_mem": pynvml.nvmlDeviceGetMemoryInfo(mig).total,
            "is_mig": [type(is_mig).__name__, is_mig.value],
            "same_parent": pynvml.nvmlDeviceGetUUID(back) == pynvml.nvmlDeviceGetUUID(gpu0),
            "empty": empty, "parent": parent, "no_mig": no_mig,
            "procs": [[p.pid, p.usedGpuMemory, p.gpuInstanceId, p.computeInstanceId] for p in procs],
            "procs1": [[p.pid, p.usedGpuMemory, p.gpuInstanceId] for p in procs1],
        }))
        """,
    )
    assert got == {
        "count": 3,
        "driver": "550.54.15",
        "name0": "NVIDIA H100 80GB HBM3",
        "mig_name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
        "mig_mode": [1, 1],
        "max_mig": 7,
        "gi": 1,
        "ci": 0,
        "mig_mem": 40192 * 1024 * 1024,
        "is_mig": ["c_uint", 1],
        "same_parent": True,
        "empty": "NOT_FOUND",
        "parent": "NO_PERMISSION",
        "no_mig": "NOT_SUPPORTED",
        "procs": [[101, 100 * 1024 * 1024, 1, 0]],
        "procs1": [[103, 200 * 1024 * 1024, 0xFFFFFFFF]],
    }


def test_na_memory_and_privileged_parent_aggregate(fake: FakeNvml) -> None:
    """ULLONG_MAX memory is None in pynvml; parent=aggregate lists every MIG device's processes."""
    fake.write(BASIC.replace("mig=on memory=81559", "mig=on memory=81559 parent=aggregate"))
    got = run(
        fake,
        """
        pynvml.nvmlInit()
        gpu0 = pynvml.nvmlDeviceGetHandleByIndex(0)
        mig1 = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, 1)
        print(json.dumps({
            "mig1": [[p.pid, p.usedGpuMemory] for p in pynvml.nvmlDeviceGetComputeRunningProcesses(mig1)],
            "parent": sorted(p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(gpu0)),
        }))
        """,
    )
    assert got == {"mig1": [[102, None]], "parent": [101, 102]}


def test_count_growing_between_the_two_sizing_calls(fake: FakeNvml) -> None:
    """The sizing call undercounts by `grow`; pynvml's margin absorbs a little, not a lot."""
    pids = "\n".join(f"proc 1 pid={200 + i} memory=1" for i in range(20))
    fake.write(BASIC + pids + "\ngrow 1 by=4\n")
    got = run(
        fake,
        """
        pynvml.nvmlInit()
        print(json.dumps(len(pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(1)))))
        """,
    )
    assert got == 21
    fake.write(BASIC + pids + "\ngrow 1 by=19 times=1\n")
    got = run(
        fake,
        """
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(1)
        try:
            pynvml.nvmlDeviceGetComputeRunningProcesses(h)
            first = "answered"
        except pynvml.NVMLError_InsufficientSize:
            first = "INSUFFICIENT_SIZE"
        print(json.dumps([first, len(pynvml.nvmlDeviceGetComputeRunningProcesses(h))]))
        """,
    )
    assert got == ["INSUFFICIENT_SIZE", 21]


def test_injected_errors_name_the_exact_symbol_and_gpu(fake: FakeNvml) -> None:
    """`error SYMBOL gpu=N CODE` fails that C symbol on that GPU only; lost GPUs answer GPU_IS_LOST."""
    fake.write(
        BASIC
        + "error nvmlDeviceGetComputeRunningProcesses_v3 gpu=1 NVML_ERROR_NO_PERMISSION\n"
        + "gpu 3 lost\n"
    )
    got = run(
        fake,
        """
        pynvml.nvmlInit()
        def ask(fn, *args):
            try:
                fn(*args)
                return "ok"
            except pynvml.NVMLError as exc:
                return exc.value
        h1, h2, h3 = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in (1, 2, 3))
        print(json.dumps({
            "v3_gpu1": ask(pynvml.nvmlDeviceGetComputeRunningProcesses_v3, h1),
            "v2_gpu1": ask(pynvml.nvmlDeviceGetComputeRunningProcesses_v2, h1),
            "v3_gpu2": ask(pynvml.nvmlDeviceGetComputeRunningProcesses_v3, h2),
            "lost_uuid": ask(pynvml.nvmlDeviceGetUUID, h3),
            "lost_list": ask(pynvml.nvmlDeviceGetComputeRunningProcesses_v3, h3),
        }))
        """,
    )
    assert got == {
        "v3_gpu1": 4,
        "v2_gpu1": "ok",
        "v3_gpu2": "ok",
        "lost_uuid": 15,
        "lost_list": 15,
    }


def test_fixture_is_reread_when_it_changes(fake: FakeNvml) -> None:
    """One long-running process sees processes come and go as the fixture changes."""
    session = fake.session()
    before = session.ask("read")
    fake.write(BASIC.replace("proc 1 pid=103 memory=200\n", "proc 1 pid=999 memory=5\n"))
    after = session.ask("read")
    session.check_fake_loaded()
    assert 103 in {p["pid"] for p in before["processes"]}
    pids = {p["pid"] for p in after["processes"]}
    assert 999 in pids
    assert 103 not in pids


def test_hang_blocks_the_named_call_until_lifted(fake: FakeNvml) -> None:
    """`hang SYMBOL` never returns while the line is in the fixture; removing it lets go."""
    fake.write(BASIC + "hang nvmlDeviceGetCount_v2\n")
    proc = fake.start_python("import pynvml; pynvml.nvmlInit(); print(pynvml.nvmlDeviceGetCount())")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)
        fake.write(BASIC)
        result = fake.finish(proc, timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert result.stdout.strip() == "3"


def test_bad_fixture_line_is_one_clear_line(fake: FakeNvml) -> None:
    """A fixture the fake cannot read says which line and fails nvmlInit (UNKNOWN)."""
    fake.write("gpu 0\nproc 7 pid=1\n")
    result = fake.run_python(
        "import pynvml\ntry:\n    pynvml.nvmlInit()\nexcept pynvml.NVMLError as e:\n    print(e.value)\n"
    )
    assert result.stdout.strip() == "999"
    assert "fixture line 2: proc GPU or GPU/SLOT names a gpu line above it" in result.stderr


PROBE = """
import contextlib, ctypes, io, json, sys
missing = set()
original = ctypes.CDLL.__getitem__
def lookup(self, name):
    try:
        return original(self, name)
    except AttributeError:
        missing.add(name)
        raise
ctypes.CDLL.__getitem__ = lookup
out = io.StringIO()
sys.argv = TOOL_ARGV
with contextlib.redirect_stdout(out):
    try:
        TOOL_MAIN()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
print(json.dumps({"missing": sorted(missing), "code": code, "out": out.getvalue()}))
"""


@pytest.mark.parametrize(
    ("argv", "main"),
    [
        (["gpustat", "--json"], "__import__('gpustat.cli').cli.main"),
        (["nvitop", "--once"], "__import__('nvitop.cli').cli.main"),
    ],
)
def test_gpustat_and_nvitop_find_every_symbol(fake: FakeNvml, argv: list[str], main: str) -> None:
    """The tools admins run start on the fake: no symbol they look up is missing."""
    code = PROBE.replace("TOOL_ARGV", repr(argv)).replace("TOOL_MAIN", f"({main})")
    result = fake.run_python(code)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.splitlines()[-1])
    assert got["missing"] == []
    assert got["code"] in (0, None), result.stderr
    if argv[0] == "gpustat":
        shown = json.loads(got["out"])
        # gpustat drops PIDs that do not exist here, so the memory shows the fake answered.
        assert [(g["index"], g["memory.used"]) for g in shown["gpus"]] == [
            (0, 100),
            (1, 200),
            (2, 0),
        ]
    else:
        assert "3g.40gb" in got["out"]
