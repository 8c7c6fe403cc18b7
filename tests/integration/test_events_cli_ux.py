"""The admin's side of ds01-events: help tiers, older forms, commands, errors, escaping."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ds01_query.cli.render import use_colour

EVENTS = [
    {
        "timestamp": "2026-11-22T01:00:00.000000Z",
        "event_type": "container.start",
        "user": "alice",
        "details": {"container": "job._.1001", "container_id": "abc123"},
    },
    {"ts": "2026-11-22T01:30:00Z", "event": "gpu.reject", "user": "bob", "container": "old"},
    {
        "timestamp": "2026-11-22T02:00:00.000000Z",
        "event_type": "auth.denied",
        "user": "mallory\x1b[2J\x1b]0;pwned\x07",
        "details": {"command": "rm\r -rf \x9b"},
    },
    {
        "timestamp": "2026-11-22T03:00:00.000000Z",
        "event_type": "resource.oom_kill",
        "user": "alice",
        "details": {"container": "job._.1001"},
    },
    {
        "timestamp": "2026-11-22T23:30:00.000000Z",
        "event_type": "monitoring.scrape_failure",
        "details": {"reason": "timeout"},
    },
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS) + "oops\n")
    return path


def run(
    log: Path, *args: str, stdin: str = "", tz: str = "Asia/Tokyo", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DS01_EVENTS_FILE": str(log), "TZ": tz, **env}
    return subprocess.run(
        [sys.executable, "-m", "ds01_query.cli.main", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=environment,
        check=False,
    )


def test_help_tiers(log: Path) -> None:
    """--help is short, --info has examples, --concepts explains origin."""
    quick, info, concepts = run(log, "--help"), run(log, "--info"), run(log, "--concepts")
    assert "--since" in quick.stdout
    assert "EXAMPLES" not in quick.stdout
    assert "EXAMPLES" in info.stdout
    assert "origin" in concepts.stdout
    assert "SO_PASSCRED" in concepts.stdout


def test_guided_builds_prints_and_runs(log: Path) -> None:
    """--guided asks questions, prints the command it built and runs it."""
    result = run(log, "--guided", stdin="2\nbob\n\njson\n")
    assert "ds01-events --user bob --json" in result.stdout
    assert '"gpu.reject"' in result.stdout
    assert result.returncode == 0


@pytest.mark.parametrize(
    ("alias", "options"),
    [
        (["user", "alice"], ["--user", "alice"]),
        (["type", "gpu"], ["--type", "gpu"]),
        (["container", "old"], ["--container", "old"]),
        (["gpu"], ["--type", "gpu"]),
        (["tail", "2"], ["--limit", "2"]),
        (["stats"], ["--summary"]),
        (["json"], ["--json"]),
    ],
)
def test_older_forms_are_aliases(log: Path, alias: list[str], options: list[str]) -> None:
    """Each older command form prints exactly what its option form prints."""
    assert run(log, *alias).stdout == run(log, *options).stdout != ""


def test_errors_alias_selects_failures(log: Path) -> None:
    """`errors` shows denied, reject, failure and OOM events and nothing else."""
    types = [
        json.loads(x)["event_type" if "event_type" in x else "event"]
        for x in run(log, "errors", "--json").stdout.splitlines()
    ]
    assert types == ["gpu.reject", "auth.denied", "resource.oom_kill", "monitoring.scrape_failure"]


def test_summary_days_are_local(log: Path) -> None:
    """Per-day counts use local days: in Tokyo 23:30Z on the 22nd is already the 23rd."""
    summary = run(log, "--summary", tz="Asia/Tokyo").stdout
    assert "2026-11-23" in summary
    assert "2026-11-23" not in run(log, "--summary", tz="UTC").stdout


def test_table_escapes_control_and_ansi(log: Path) -> None:
    """Control characters and ANSI sequences from a line are shown, never sent raw."""
    out = run(log).stdout
    assert "mallory\\x1b[2J\\x1b]0;pwned\\x07" in out
    assert "\\x9b" in out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\r" not in out


def test_json_output_is_only_jsonl(log: Path) -> None:
    """--json writes the matching lines and nothing else on stdout; the count goes to stderr."""
    result = run(log, "--json", "--all")
    assert [json.loads(x) for x in result.stdout.splitlines()] == EVENTS
    assert "skipped 1 malformed" in result.stderr


def test_limit_and_table_time_is_local(log: Path) -> None:
    """The table shows the last N events with times in the local zone."""
    lines = run(log, "--limit", "1", tz="Asia/Tokyo").stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("2026-11-23 08:30:00")


def test_bad_timespec_one_line_exit_2(log: Path) -> None:
    """A bad TIMESPEC gives one line listing the accepted forms and exit status 2."""
    result = run(log, "--since", "last tuesday-ish")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "accepted forms" in result.stderr


def test_missing_log_one_line(tmp_path: Path) -> None:
    """A missing log gives one line saying how to point at one, and a non-zero exit."""
    result = run(tmp_path / "absent.jsonl")
    assert result.returncode == 1
    assert "DS01_EVENTS_FILE" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root to run as an unprivileged user",
)
def test_unreadable_log_names_file_and_group(log: Path) -> None:
    """An unreadable log gives one line naming the file and the group to join."""
    log.chmod(0o640)
    log.parent.chmod(0o755)
    for parent in log.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "ds01_query.cli.main", "--file", str(log)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    assert result.returncode == 1
    assert str(log) in result.stderr
    assert "group" in result.stderr
    assert result.stderr.count("\n") == 1


def test_types_lists_catalogue(log: Path) -> None:
    """`types` prints every catalogue type with its detail keys."""
    out = run(log, "types").stdout
    assert "container.start" in out
    assert "detection.host_gpu_process" in out
    assert "gpu_uuid" in out


def test_verify_reports_file_line(log: Path) -> None:
    """`verify` reports each bad line as file:line and exits 1; a clean log exits 0."""
    result = run(log, "verify")
    assert f"{log}:6: not a JSON object" in result.stdout
    assert result.returncode == 1
    log.write_text(json.dumps(EVENTS[0]) + "\n")
    assert run(log, "verify").returncode == 0


def test_summary_fast_and_filtered_paths_agree(log: Path) -> None:
    """The unfiltered summary and a filtered one that keeps everything give equal numbers."""
    assert run(log, "--summary").stdout == run(log, "--summary", "--since", "@0").stdout


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_tty_without_no_color() -> None:
    """Colour needs a terminal, and NO_COLOR (any value, even empty) turns it off."""
    assert use_colour(_Tty(), {})
    assert not use_colour(_Tty(), {"NO_COLOR": ""})
    assert not use_colour(io.StringIO(), {})


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
