"""ds01-events on a log large enough to be read by several processes: jq's answer still."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

import pytest

from bench.corpus import generate
from ds01_query.scan.search import SHARE_BYTES

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is the reference")

# Runs the query in this process, then says whether any worker ran (and was reaped):
# a reaped child's CPU time shows in os.times(), whatever it did.
QUERY = """
import os, sys
from ds01_query.cli.main import main
status = main(sys.argv[1:])
times = os.times()
sys.stderr.write(f"children-cpu={times.children_user + times.children_system}\\n")
sys.exit(status)
"""


@pytest.fixture(scope="module")
def big_log() -> Iterator[str]:
    """A log of a little over 2 shares (about 70 MB), in a folder anybody may read."""
    folder = tempfile.mkdtemp(prefix="ds01-parallel-")
    os.chmod(folder, 0o755)  # noqa: S103 - nobody reads it in the fork-failure test
    path = os.path.join(folder, "events.jsonl")
    block = ("\n".join(generate(6000, seed=11, variety=True, malformed=0.002)) + "\n").encode()
    with open(path, "wb") as out:
        while out.tell() < 2 * SHARE_BYTES + (4 << 20):
            out.write(block)
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(folder)


def _query(path: str, *args: str, workers: str, prefix: tuple[str, ...] = ()) -> tuple[bytes, str]:
    env = {**os.environ, "DS01_EVENTS_WORKERS": workers}
    result = subprocess.run(
        [*prefix, sys.executable, "-c", QUERY, "--file", path, "--json", "--all", *args],
        capture_output=True,
        check=True,
        env=env,
        timeout=120,
    )
    return result.stdout, result.stderr.decode()


def _workers_ran(stderr: str) -> bool:
    line = next(x for x in stderr.splitlines() if x.startswith("children-cpu="))
    return float(line.split("=", 1)[1]) > 0


def test_two_workers_give_jq_answer(big_log: str) -> None:
    """--user over ~70 MB with two processes: jq's lines, in jq's order, and a worker really ran."""
    out, err = _query(big_log, "--user", "alice", workers="2")
    assert _workers_ran(err)
    # The big log is a clean corpus with cut-off lines; jq stops at those, so it reads
    # only the lines that are JSON (the same events).
    clean = subprocess.run(
        ["jq", "-R", "-c", 'fromjson? | select(.user == "alice")', big_log],
        capture_output=True,
        check=True,
    )
    normalised = subprocess.run(["jq", "-c", "."], input=out, capture_output=True, check=True)
    assert normalised.stdout.splitlines() == clean.stdout.splitlines()
    assert len(clean.stdout.splitlines()) > 100


@pytest.mark.parametrize("args", [("--grep", "MIG-3"), ("--type", "*.denied"), ()])
def test_workers_and_one_process_agree_on_lines_and_counts(
    big_log: str, args: tuple[str, ...]
) -> None:
    """Same output and the same malformed-line report with 1 and 3 processes."""
    one, one_err = _query(big_log, *args, workers="1")
    three, three_err = _query(big_log, *args, workers="3")
    assert not _workers_ran(one_err)
    assert _workers_ran(three_err)
    assert three == one
    report = [x for x in one_err.splitlines() if "malformed" in x]
    if not args:  # only a scan of every line meets the cut-off ones
        assert report
    assert report == [x for x in three_err.splitlines() if "malformed" in x]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")
def test_no_process_to_spare_reads_everything_in_one(big_log: str) -> None:
    """When fork fails (nobody, limited to one process) the query still gives the whole answer."""
    expected, _ = _query(big_log, "--user", "bob", workers="1")
    limited = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
    code = "import resource; resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))\n" + QUERY
    env = {**os.environ, "DS01_EVENTS_WORKERS": "2"}
    result = subprocess.run(
        [
            *limited,
            sys.executable,
            "-c",
            code,
            "--file",
            big_log,
            "--json",
            "--all",
            "--user",
            "bob",
        ],
        capture_output=True,
        check=True,
        env=env,
        timeout=120,
    )
    assert result.stdout == expected
    assert not _workers_ran(result.stderr.decode())


def test_closing_the_pipe_early_leaves_no_worker(big_log: str, tmp_path: Path) -> None:
    """``ds01-events ... | head -1`` ends at once, and no worker outlives it."""
    pids = tmp_path / "pids"
    script = (
        f"{sys.executable} -c {_shell(QUERY)} --file {big_log} --json --all --grep user"
        f" | head -1 >/dev/null; echo done >{pids}"
    )
    subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "DS01_EVENTS_WORKERS": "3"},
        check=True,
        timeout=60,
    )
    assert pids.read_text() == "done\n"
    # A worker is a fork of the query, so its command line names the big log.
    assert [pid for pid in os.listdir("/proc") if pid.isdigit() and big_log in _cmdline(pid)] == []


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:  # gone meanwhile
        return ""
