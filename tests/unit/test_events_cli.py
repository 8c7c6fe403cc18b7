"""The admin's side of ds01-events, run in-process: help, older forms, commands, errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from cli_support import run

if TYPE_CHECKING:
    from pathlib import Path

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


def _write(path: Path, events: list[dict[str, object]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return _write(tmp_path / "events.jsonl", EVENTS, "oops\n")


def _types(stdout: str) -> list[str]:
    return [
        json.loads(x).get("event_type") or json.loads(x).get("event") for x in stdout.splitlines()
    ]


def test_help_tiers(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--help is short, --info has examples, --concepts explains origin."""
    run(log, "--help")
    quick = capsys.readouterr().out
    info, concepts = run(log, "--info"), run(log, "--concepts")
    assert "--since" in quick
    assert "EXAMPLES" not in quick
    assert "EXAMPLES" in info.stdout
    assert "origin" in concepts.stdout
    assert "SO_PASSCRED" in concepts.stdout


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
        (["errors"], ["--errors"]),
    ],
)
def test_older_forms_are_aliases(log: Path, alias: list[str], options: list[str]) -> None:
    """Each older command form prints exactly what its option form prints."""
    assert run(log, *alias).stdout == run(log, *options).stdout != ""


def test_errors_alias_selects_failures(log: Path) -> None:
    """`errors` shows denied, reject, failure and OOM events and nothing else."""
    types = _types(run(log, "errors", "--json").stdout)
    assert types == ["gpu.reject", "auth.denied", "resource.oom_kill", "monitoring.scrape_failure"]


def test_errors_include_failed_exits_and_oom(tmp_path: Path) -> None:
    """`errors` also shows a container that exited non-zero or was OOM-killed, not a clean exit."""

    def stop(n: int, **details: object) -> dict[str, object]:
        when = f"2026-11-22T0{n}:00:00.000000Z"
        return {"timestamp": when, "event_type": "container.stop", "details": details}

    log = _write(
        tmp_path / "events.jsonl",
        [
            stop(1, exit_code=0, oom=False),
            stop(2, exit_code=1, oom=False),
            stop(3, exit_code=137, oom=True),
            stop(4, exit_code=0, oom=True),
            stop(5, exit_code=None),
            {"timestamp": "2026-11-22T06:00:00Z", "event_type": "container.start_failed"},
        ],
    )
    lines = run(log, "errors", "--json").stdout.splitlines()
    assert [json.loads(x)["timestamp"][11:13] for x in lines] == ["02", "03", "04", "06"]


def test_summary_days_are_local(log: Path) -> None:
    """Per-day counts use local days: in Tokyo 23:30Z on the 22nd is already the 23rd."""
    summary = run(log, "--summary", tz="Asia/Tokyo").stdout
    assert "2026-11-23" in summary
    assert "2026-11-23" not in run(log, "--summary", tz="UTC").stdout


def test_table_escapes_control_and_ansi(log: Path) -> None:
    """Control characters and ANSI sequences from a line are shown, never sent raw."""
    out = run(log, "--wide", tty=True, columns=200).stdout
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


def test_json_is_not_capped_at_50(tmp_path: Path) -> None:
    """--json (and any output that is not a terminal) gives every match unless --limit says."""
    many = [
        {**EVENTS[0], "timestamp": f"2026-11-22T01:{n // 60:02d}:{n % 60:02d}Z"} for n in range(120)
    ]
    log = _write(tmp_path / "events.jsonl", many)
    assert len(run(log, "--json").stdout.splitlines()) == 120
    assert len(run(log, "--json", tty=True).stdout.splitlines()) == 120
    assert len(run(log).stdout.splitlines()) == 121  # a table into a pipe: every row
    assert len(run(log, "--json", "--limit", "7").stdout.splitlines()) == 7


def test_terminal_table_says_when_it_cut(tmp_path: Path) -> None:
    """At a terminal the table shows the last 50 and says on stderr that older ones are left out."""
    many = [
        {**EVENTS[0], "timestamp": f"2026-11-22T01:{n // 60:02d}:{n % 60:02d}Z"} for n in range(60)
    ]
    log = _write(tmp_path / "events.jsonl", many)
    result = run(log, tty=True, columns=120)
    assert len(result.stdout.splitlines()) == 51
    assert "showing the last 50" in result.stderr
    assert "showing" not in run(log, "--limit", "50", tty=True, columns=120).stderr
    few = _write(tmp_path / "few.jsonl", many[:50])
    assert "showing" not in run(few, tty=True, columns=120).stderr


def test_limit_and_table_time_is_local(log: Path) -> None:
    """The table shows the last N events with times in the local zone, named in the header."""
    lines = run(log, "--limit", "1", tz="Asia/Tokyo").stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("TIME (JST)")
    assert lines[1].startswith("2026-11-23 08:30:00")


@pytest.mark.parametrize("count", ["-5", "0", "--limit=0", "-n0"])
def test_limit_below_one_is_refused(log: Path, count: str) -> None:
    """--limit -5 / 0 is a usage error (one line, exit 2), not "no matching events"."""
    args = [count] if count.startswith(("--limit=", "-n")) else ["--limit", count]
    result = run(log, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--limit" in result.stderr
    assert "no matching events" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "--summary"],
        ["--follow", "--summary"],
        ["--summary", "--wide"],
        ["--json", "--wide"],
        ["--all", "--limit", "3"],
        ["--follow", "--all"],
        ["stats", "json"],
        ["--since=", "--json"],
        ["--until", " "],
    ],
)
def test_conflicting_or_empty_options_are_refused(log: Path, args: list[str]) -> None:
    """Two outputs at once, or an empty TIMESPEC, end in one line and exit 2."""
    result = run(log, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_bad_timespec_one_line_exit_2(log: Path) -> None:
    """A bad TIMESPEC gives one line listing the accepted forms and exit status 2."""
    result = run(log, "--since", "last tuesday-ish")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "accepted forms" in result.stderr


@pytest.mark.parametrize(("typed", "hint"), [("--bogus", None), ("--sinse", "--since")])
def test_unknown_option_suggests_only_a_near_one(log: Path, typed: str, hint: str | None) -> None:
    """An unknown option names the nearest option only when it is close (never --user for --bogus)."""
    result = run(log, typed, "x")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "Possible options" not in result.stderr
    if hint is None:
        assert "did you mean" not in result.stderr
    else:
        assert f"did you mean {hint}?" in result.stderr


def test_missing_log_one_line(tmp_path: Path) -> None:
    """A missing log gives one line saying how to point at one, and a non-zero exit."""
    result = run(tmp_path / "absent.jsonl")
    assert result.returncode == 1
    assert "DS01_EVENTS_FILE" in result.stderr
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


def test_verify_works_wherever_it_stands(log: Path, tmp_path: Path) -> None:
    """``--file X verify`` checks X, as ``verify --file X`` does."""
    other = _write(tmp_path / "other.jsonl", EVENTS[:1])
    assert run(log, "--file", str(other), "verify").returncode == 0
    result = run(other, "--file", str(log), "verify")
    assert result.returncode == 1
    assert f"{log}:6:" in result.stdout


def test_summary_fast_and_filtered_paths_agree(log: Path) -> None:
    """The unfiltered summary and a filtered one that keeps everything give equal numbers."""
    assert run(log, "--summary").stdout == run(log, "--summary", "--since", "@0").stdout


def test_guided_builds_prints_and_runs(log: Path) -> None:
    """--guided asks questions, prints the command it built and runs it."""
    result = run(log, "--guided", stdin="2\nbob\n\njson\n")
    assert "ds01-events --user bob --json" in result.stdout
    assert '"gpu.reject"' in result.stdout
    assert result.returncode == 0


@pytest.mark.parametrize("answers", ["", "2\n", "2\nbob\n", "1\n\n"])
def test_guided_end_of_input_exits_cleanly(log: Path, answers: str) -> None:
    """End of input at any question: exit 1 with one clear line, no bare usage error."""
    result = run(log, "--guided", stdin=answers)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "input ended" in result.stderr
    assert "see ds01-events --help" not in result.stderr


def test_guided_asks_again_on_bad_answers(log: Path) -> None:
    """Choice 9 and the time ``banana`` are asked again; the command built then runs."""
    result = run(log, "--guided", stdin="9\n2\n\nbob\nbanana\n2020-01-01\nxml\njson\n")
    assert result.returncode == 0
    assert result.stdout.count("choice [1]:") == 2
    assert result.stdout.count("user name:") == 2
    assert result.stdout.count("since when?") == 2
    assert "ds01-events --user bob --since 2020-01-01 --json" in result.stdout
    assert '"gpu.reject"' in result.stdout


def test_guided_keeps_the_file_given_beside_it(log: Path, tmp_path: Path) -> None:
    """``--guided --file X`` builds and runs a command that reads X."""
    other = _write(tmp_path / "other.jsonl", EVENTS[1:2])
    result = run(log, "--guided", "--file", str(other), stdin="1\n\njson\n")
    assert f"ds01-events --json --file {other}" in result.stdout
    assert _types(result.stdout.splitlines()[-1]) == ["gpu.reject"]


def test_mistyped_command_suggests_the_command(log: Path) -> None:
    """``ds01-events verfy`` says it meant verify; an unrelated word gets no suggestion."""
    assert "did you mean verify?" in run(log, "verfy").stderr
    assert "did you mean" not in run(log, "banana").stderr
