"""`ds01-watcher gpus` in a child on the fake NVML: the attributed table and its JSON."""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING

import pytest

from detectors.classify import classify
from tests.fakes.nvml import FakeNvml, mig_layout
from tests.unit.gpu_snapshots import migs, on_gpu, on_mig, snapshot
from watcher.gpu.table import gpu_view, render_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the fake NVML")

RUN = """
import sys
from watcher.cli import main
code = main(["gpus", *{args!r}, "--config", "/dev/null", "--docker-host",
             "unix:///nonexistent/docker.sock"])
sys.stdout.flush()
print("EXIT", code)
"""


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNvml]:
    fake = FakeNvml(tmp_path / "nvml")
    yield fake
    fake.close()


def _gpus(fake: FakeNvml, *args: str) -> tuple[int, str, str]:
    result = fake.run_python(RUN.format(args=list(args)))
    *out, last = result.stdout.splitlines()
    return int(last.split()[1]), "\n".join(out), result.stderr


def test_json_names_every_device_its_holder_and_the_free_ones(fake: FakeNvml) -> None:
    """One host process (this test) on a MIG slice; a MIG-on GPU without instances; free ones."""
    me = os.getpid()
    fake.write(
        "gpu 0 mig=on\nmig 0 0 profile=3g.40gb\nmig 0 1 profile=3g.40gb\n"
        f"gpu 1\ngpu 2 mig=on\nproc 0/1 pid={me} memory=1000\n"
    )
    code, out, err = _gpus(fake, "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["nvml"] == "ok"
    assert view["docker"].startswith("Docker not reachable")
    gpu0, gpu1, gpu2 = view["gpus"]
    (process,) = gpu0["mig_devices"][1]["processes"]
    assert (process["pid"], process["class"], process["attributed_by"]) == (
        me,
        "host_process",
        "uid",
    )
    assert gpu0["mig_devices"][1]["profile"] == "3g.40gb"
    assert (gpu2["mig_mode"], gpu2["mig_devices"]) == (True, [])
    assert view["free_devices"] == ["0:0", "1"]
    assert gpu1["processes"] == []


def test_table_for_eight_gpus_of_seven_mig_devices(fake: FakeNvml) -> None:
    """8 x 7 MIG devices: one row each, the dead PIDs NVML lists shown as gone."""
    fake.write(mig_layout(8, 7, [4_000_000 + i for i in range(10)]))
    code, out, err = _gpus(fake)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["DEVICE", "PROFILE", "CLASS"]
    assert sum(1 for line in lines if "MIG mode, 7 devices" in line) == 8
    assert sum(1 for line in lines if line.strip().startswith(("7:6", "0:0"))) == 2
    assert sum(1 for line in lines if " gone " in line) == 10
    assert lines[-2].startswith("free: ")
    assert len(lines[-2].split(", ")) == 56 - 10
    assert lines[-1].startswith("Docker not reachable")


def test_no_library_is_one_line_and_status_1(fake: FakeNvml) -> None:
    """Without libnvidia-ml: exit 1, one line on stderr, no traceback."""
    fake.write("gpu 0\n")
    result = fake.run_python(RUN.format(args=[]), with_library=False, check_fake=False)
    assert result.stdout.splitlines()[-1] == "EXIT 1"
    assert result.stderr.count("\n") == 1
    assert "NVML unavailable" in result.stderr


def test_table_marks_outside_configuration_and_lost() -> None:
    """A lost GPU, a process outside its devices and memory N/A read plainly."""
    from detectors.classify import ContainerFacts
    from tests.unit.gpu_snapshots import contained

    cid = "c" * 64
    snap = snapshot(
        on_gpu(20, 0, memory=None),
        on_mig(21, 1, 0),
        count=3,
        mig=(1,),
        mig_devices=migs(1, 2),
        lost=(2,),
    )
    facts = {cid: ContainerFacts(id=cid, name="job", user="bob", managed=True, gpu_devices=("1",))}
    classified = classify(snap, {20: contained(20, cid), 21: None}, facts)
    text = render_table(gpu_view(snap, classified))
    assert "managed (outside its devices)" in text
    assert "LOST" in text
    assert "n/a" in text
    assert text.splitlines()[-1] == "free: 1:1"
