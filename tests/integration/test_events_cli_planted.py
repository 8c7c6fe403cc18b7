"""Files an unprivileged user plants beside the log: never followed, never hung on, named once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

NOBODY = 65534
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root to plant files as an unprivileged user",
)
GENUINE = [
    {"timestamp": f"2026-12-01T11:0{i}:00.000000Z", "event_type": "container.start", "user": "a"}
    for i in range(3)
]
FORGED = {"timestamp": "2026-11-30T10:00:00.000000Z", "event_type": "container.stop", "user": "a"}
# What nobody does in the folder it can write: the attack, run as that user.
PLANT = """
import os, sys
folder = sys.argv[1]
os.mkfifo(os.path.join(folder, "events.jsonl.3"))
os.symlink("/dev/zero", os.path.join(folder, "events.jsonl.2"))
os.symlink("/etc/shadow", os.path.join(folder, "events.jsonl.1"))
with open(os.path.join(folder, "events.jsonl-20261130"), "w") as out:
    out.write(sys.argv[2] + "\\n")
# a regular file of 1 GiB holding no newline (sparse: costs the attacker nothing)
with open(os.path.join(folder, "events.jsonl-20261129"), "wb") as out:
    out.truncate(1 << 30)
"""
# The query in a process that then says its own peak memory. VmHWM, not ru_maxrss:
# Linux carries ru_maxrss across execve, so a child of a large pytest process would
# report pytest's size; VmHWM belongs to the new image alone.
QUERY = """
import sys
from ds01_query.cli.main import main
status = main(sys.argv[1:])
with open("/proc/self/status") as status_file:
    hwm = next(line.split()[1] for line in status_file if line.startswith("VmHWM:"))
sys.stderr.write(f"maxrss={hwm}\\n")
sys.exit(status)
"""


@pytest.fixture
def planted() -> Iterator[str]:
    """A log folder anyone may write to (the misconfiguration), with files nobody planted."""
    folder = tempfile.mkdtemp(prefix="ds01-planted-")
    os.chmod(folder, 0o777)  # noqa: S103 - the misconfiguration under test
    live = os.path.join(folder, "events.jsonl")
    with open(live, "w", encoding="utf-8") as out:
        out.write("".join(json.dumps(e) + "\n" for e in GENUINE))
    os.chmod(live, 0o644)
    subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            PLANT,
            folder,
            json.dumps(FORGED),
        ],
        check=True,
        timeout=30,
    )
    yield live
    shutil.rmtree(folder)


def _query(live: str, *args: str) -> subprocess.CompletedProcess[str]:
    home = tempfile.mkdtemp(prefix="ds01-home-")
    try:
        return subprocess.run(
            [sys.executable, "-c", QUERY, *args, "--file", live],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, "HOME": home},
        )
    finally:
        shutil.rmtree(home)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--json", "--all"],
        ["--user", "a", "--json", "--all"],
        ["--grep", "container", "--all"],
        ["--since", "2026-11-01", "--json", "--all"],
        ["--summary"],
        ["verify"],
    ],
    ids=["default", "json", "user", "grep", "since", "summary", "verify"],
)
def test_planted_siblings_are_skipped_and_named(planted: str, args: list[str]) -> None:
    """A FIFO, links to /dev/zero and /etc/shadow: no hang, never read, each named on stderr."""
    result = _query(planted, *args)
    assert result.returncode in (0, 1), result.stderr  # verify finds the overlong line: 1
    for name, kind in (
        ("events.jsonl.3", "a FIFO"),
        ("events.jsonl.2", "a symbolic link"),
        ("events.jsonl.1", "a symbolic link"),
    ):
        assert f"{name}: it is {kind}, not a regular file" in result.stderr
    assert result.stderr.count("can be written by users other than root") == 1
    assert "events.jsonl-20261130 (owned by uid 65534)" in result.stderr
    assert "root:" not in result.stdout  # nothing of /etc/shadow
    peak = int(result.stderr.rsplit("maxrss=", 1)[1])
    assert peak < 200 * 1024, "a 1 GiB line was held in memory"  # KiB


def test_a_planted_regular_file_is_read_but_flagged(planted: str) -> None:
    """The forged line nobody wrote is still shown (it is a log line), with the warning."""
    result = _query(planted, "--json", "--all")
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert lines == [FORGED, *GENUINE]
    assert "skipped 1 malformed line(s) (events.jsonl-20261129: 1)" in result.stderr
