"""ds01-events as a process: as an unprivileged user, and with a reader that goes away.

Everything else about the command line runs in-process (tests/unit/test_events_cli.py).
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EVENTS = [
    {
        "timestamp": "2026-11-22T01:00:00.000000Z",
        "event_type": "container.start",
        "user": "alice",
        "details": {"container": "job._.1001", "container_id": "abc123"},
    },
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return path


def _as_nobody(log: Path) -> subprocess.CompletedProcess[str]:
    log.parent.chmod(0o755)
    for parent in log.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ds01_query.cli.main", "--file", str(log)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )


AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root to run as an unprivileged user",
)


@AS_ROOT
def test_unreadable_log_names_a_group_that_can_read(log: Path) -> None:
    """A log of group adm with the group read bit: one line naming adm, exit 1."""
    os.chown(log, 0, grp.getgrnam("adm").gr_gid)
    log.chmod(0o640)
    result = _as_nobody(log)
    assert result.returncode == 1
    assert str(log) in result.stderr
    assert "group 'adm'" in result.stderr
    assert result.stderr.count("\n") == 1


@AS_ROOT
@pytest.mark.parametrize(("group", "mode"), [("root", 0o640), ("adm", 0o600)])
def test_unreadable_log_never_suggests_root(log: Path, group: str, mode: int) -> None:
    """Group root, or a group without the read bit: ask for read access, name no group."""
    os.chown(log, 0, grp.getgrnam(group).gr_gid)
    log.chmod(mode)
    result = _as_nobody(log)
    assert result.returncode == 1
    assert "group" not in result.stderr
    assert "ask an admin for read access" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_reader_that_goes_away_is_no_error(tmp_path: Path) -> None:
    """``ds01-events --json --all | head -1``: status 0, nothing on stderr, the first line out."""
    log = tmp_path / "events.jsonl"
    line = json.dumps(EVENTS[0]) + "\n"
    log.write_text(line * 200_000)  # far more than a pipe holds
    script = f'{sys.executable} -m ds01_query.cli.main --json --all 2>"$1"; echo "$?" >>"$1.status"'
    err = tmp_path / "err"
    result = subprocess.run(
        ["bash", "-c", f"({script}) | head -1", "-", str(err)],
        capture_output=True,
        text=True,
        env={**os.environ, "DS01_EVENTS_FILE": str(log)},
        check=True,
        timeout=60,
    )
    assert result.stdout == line
    assert err.read_text() == ""
    assert Path(f"{err}.status").read_text() == "0\n"
