"""A full scan in one process, window after window of the map: jq's answer, and no child."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
from datetime import timezone
from typing import TYPE_CHECKING

import pytest

from bench.corpus import generate
from ds01_query.cli import runner
from ds01_query.scan import search

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is the reference")


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 2.6 MB of varied events with cut-off lines: forty windows of 64 KiB."""
    path = tmp_path_factory.mktemp("one") / "events.jsonl"
    lines = generate(12000, seed=5, variety=True, malformed=0.002, users=40)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jq(path: Path, program: str) -> list[object]:
    result = subprocess.run(
        ["jq", "-R", "-c", f"fromjson? | {program}", str(path)],
        capture_output=True,
        check=True,
    )
    return [json.loads(x) for x in result.stdout.splitlines()]


@pytest.mark.parametrize(
    ("options", "program"),
    [
        ({"users": ("user005",)}, 'select(.user == "user005")'),
        ({"users": ("józef",)}, 'select(.user == "józef")'),
        ({"grep": "MIG-3"}, 'select(tostring | contains("MIG-3"))'),
        ({"types": ("gpu",)}, 'select((.event_type // .event) | startswith("gpu"))'),
    ],
    ids=["user", "unicode-user", "grep", "type"],
)
def test_windowed_scan_gives_jq_answer(
    log: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, object], program: str
) -> None:
    """Small windows put many window edges mid-file; the lines are still exactly jq's."""
    monkeypatch.setattr(search, "SCAN_WINDOW", 64 << 10)
    out, err = io.StringIO(), io.StringIO()
    request = runner.QueryRequest(files=(str(log),), json=True, all=True, **options)  # type: ignore[arg-type]
    streams = runner.Streams(out, err, {"HOME": str(log.parent / "home")}, timezone.utc)
    before = os.times()
    assert runner.run_query(request, streams) == 0
    after = os.times()
    got = [json.loads(x) for x in out.getvalue().splitlines()]
    want = _jq(log, program) if "grep" not in options else None
    if want is None:  # --grep is a raw substring: compare with the raw lines
        raw = log.read_bytes().splitlines()
        want = [json.loads(x) for x in raw if b"MIG-3" in x and _decodes(x)]
    assert got == want
    assert len(got) > 50
    assert after.children_user + after.children_system == (
        before.children_user + before.children_system
    )  # no worker process ran


def _decodes(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_no_parallel_scan_remains() -> None:
    """The scan is one process by design: no module forks workers, no setting asks for them."""
    assert importlib.util.find_spec("ds01_query.scan.parallel") is None
    assert not hasattr(runner, "worker_count")
