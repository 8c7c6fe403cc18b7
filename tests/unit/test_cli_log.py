"""ds01-log: argument rules, exit statuses and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ds01_events.cli_log import UsageError, bash_library_path, main, parse_items


def test_values_stay_strings_unless_given_as_json():
    """key=value is text (1.10 and 248835 stay text); key:=JSON keeps the JSON type."""
    user, source, details = parse_items(
        ["user=248835", "slot=1.10", "n:=3", "ok:=true", 'g:=["0"]', "x=a=b"]
    )
    assert (user, source) == ("248835", None)
    assert details == {"slot": "1.10", "n": 3, "ok": True, "g": ["0"], "x": "a=b"}


@pytest.mark.parametrize("item", ["novalue", "=x", ":=1", "n:=not-json"])
def test_malformed_items_are_usage_errors(item):
    """Items that are neither key=value nor key:=JSON are refused with a reason."""
    with pytest.raises(UsageError):
        parse_items([item])


def run(args: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "no.sock"),
        "DS01_EVENTS_FILE": str(tmp_path / "e.jsonl"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "ds01_events", "log", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_logs_and_exits_zero(tmp_path):
    """A valid call is recorded and exits 0 with nothing on stdout or stderr."""
    out = run(["maintenance.cleanup", "user=alice", "container=c1", "freed:=2"], tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    event = json.loads((tmp_path / "e.jsonl").read_text())
    assert event["details"] == {"container": "c1", "freed": 2}
    assert event["user"] == "alice"


def test_bad_type_exits_2_with_one_line(tmp_path):
    """An invalid type: exit 2, one line on stderr naming the problem."""
    out = run(["Bad"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "category.action" in out.stderr


def test_unrecorded_exits_1_and_quiet_silences(tmp_path):
    """No route: exit 1 with the reason; --quiet keeps the status, drops the message."""
    blocked = tmp_path / "dir"
    blocked.mkdir()
    env = {"DS01_EVENTS_FILE": str(blocked), "DS01_EVENTS_SPOOL": "/proc/none"}
    loud = run(["a.b"], tmp_path, **env)
    assert loud.returncode == 1
    assert "not recorded" in loud.stderr
    quiet = run(["--quiet", "a.b"], tmp_path, **env)
    assert (quiet.returncode, quiet.stderr) == (1, "")


def test_bash_path_points_at_the_shipped_library(capsys):
    """--bash-path prints an existing ds01_events.sh that defines log_event."""
    assert main(["--bash-path"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(bash_library_path())
    assert "log_event()" in open(path).read()


def test_help_and_unknown_options(capsys):
    """--help exits 0 with usage; an unknown option exits 2."""
    assert main(["--help"]) == 0
    assert "usage: ds01-log" in capsys.readouterr().out
    assert main(["--frobnicate"]) == 2
