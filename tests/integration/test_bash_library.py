"""ds01_events.sh: the Bash log_event, run by real bash against real sockets and files."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ds01_events.cli_log import bash_library_path
from ds01_events.envelope import decode_client_line, strip_logger_header

LIB = str(bash_library_path())


def run_bash(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "caller.sh"
    path.write_text(f"set -euo pipefail\nsource {shlex.quote(LIB)}\n{script}\n")
    full_env = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
        "DS01_EVENTS_FILE": str(tmp_path / "events.jsonl"),
        "DS01_EVENTS_SPOOL": str(tmp_path / "spool"),
        **env,
    }
    return subprocess.run(
        ["bash", str(path)], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_direct_append_builds_a_valid_envelope(tmp_path):
    """Strings stay strings, := numbers stay numbers, source is the script's name."""
    out = run_bash(
        'log_event container.start alice "" slot=1.10 uid=248835 n:=3 ok:=true', tmp_path
    )
    assert out.returncode == 0, out.stderr
    (event,) = events(tmp_path / "events.jsonl")
    assert event["event_type"] == "container.start"
    assert event["user"] == "alice"
    assert event["source"] == "caller.sh"
    assert event["details"] == {"slot": "1.10", "uid": "248835", "n": 3, "ok": True}
    decode_client_line(json.dumps(event).encode())
    assert (tmp_path / "events.jsonl").stat().st_mode & 0o777 == 0o640


def test_broken_setup_never_stops_a_strict_script(tmp_path):
    """Under set -euo pipefail, with nowhere to write and bad calls, the script runs to its end."""
    (tmp_path / "events.jsonl").mkdir()
    script = "\n".join(
        [
            "log_event auth.denied bob '' reason=quota",
            "log_event NotAType",
            "log_event a.b '' '' no_equals_sign",
            "log_event",
            "echo reached-the-end",
        ]
    )
    out = run_bash(script, tmp_path, DS01_EVENTS_SPOOL="/proc/no-spool")
    assert out.returncode == 0
    assert out.stdout.strip() == "reached-the-end"
    assert "not recorded" in out.stderr
    assert "ignoring detail 'no_equals_sign'" in out.stderr
    # 4 events not recorded (nowhere to write, or no type), one ignored detail
    assert len(out.stderr.splitlines()) == 5


def test_a_detail_without_equals_is_ignored_and_the_event_kept(tmp_path):
    """As the old library did, an item with no '=' is dropped with a warning, not the event."""
    out = run_bash("log_event maintenance.cleanup alice '' stray a=1 '=x'", tmp_path)
    assert out.returncode == 0
    (event,) = events(tmp_path / "events.jsonl")
    assert event["details"] == {"a": "1"}
    assert event["user"] == "alice"
    assert out.stderr.count("ignoring detail") == 2


def test_no_variables_leak_into_the_caller(tmp_path):
    """The caller's variables are the same after log_event as before."""
    script = "\n".join(
        [
            "before=$(declare -p | grep -v -E '^declare -[-a-zA-Z]* (_|BASH_.*|EPOCH.*|SRANDOM|RANDOM|LINENO|SECONDS|PIPESTATUS|BASH)(=|$)')",
            "log_event container.start alice '' a=1 b:=2 'c=x y'",
            "log_event a.b '' '' 'j:={\"k\":1}'",
            "after=$(declare -p | grep -v -E '^declare -[-a-zA-Z]* (_|BASH_.*|EPOCH.*|SRANDOM|RANDOM|LINENO|SECONDS|PIPESTATUS|BASH|before)(=|$)')",
            '[ "$before" = "$after" ] && echo same || diff <(echo "$before") <(echo "$after")',
        ]
    )
    out = run_bash(script, tmp_path)
    assert out.stdout.strip() == "same", out.stdout
    assert len(events(tmp_path / "events.jsonl")) == 2


awkward = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)


@settings(max_examples=5, deadline=None)
@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), awkward), min_size=1, max_size=40
    )
)
def test_escaping_round_trips_any_text(tmp_path_factory, pairs):
    """Quotes, backslashes, control characters and unicode come back exactly as given."""
    tmp_path = tmp_path_factory.mktemp("esc")
    calls = "\n".join(
        f"log_event test.escape {shlex.quote(v)} '' {shlex.quote(k + '=' + v)}" for k, v in pairs
    )
    out = run_bash(calls, tmp_path, LC_ALL="C.UTF-8")
    assert out.returncode == 0
    got = events(tmp_path / "events.jsonl")
    assert [(next(iter(e["details"].items())), e.get("user")) for e in got] == [
        ((k, v), v or None) for k, v in pairs
    ]


def test_socket_route_goes_through_logger_to_a_real_socket(tmp_path):
    """With a socket present, the datagram carries the envelope behind logger's header."""
    path = tmp_path / "events.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    try:
        out = run_bash(
            "log_event gpu.reject carol '' reason='no free MIG: 2g.20gb' cmd=$'a\\tb\\x1b[2J'",
            tmp_path,
            DS01_EVENTS_SOCKET=str(path),
        )
        assert out.returncode == 0, out.stderr
        event = decode_client_line(strip_logger_header(receiver.recv(8192)))
    finally:
        receiver.close()
    assert (event.event_type, event.user) == ("gpu.reject", "carol")
    assert event.details == {"reason": "no free MIG: 2g.20gb", "cmd": "a\tb\x1b[2J"}
    assert not (tmp_path / "events.jsonl").exists()


def test_stale_socket_file_falls_back_to_the_file(tmp_path):
    """A socket file with no listener (watcher crashed) does not lose the event."""
    path = tmp_path / "events.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()
    out = run_bash(
        "log_event maintenance.cleanup root '' container=x", tmp_path, DS01_EVENTS_SOCKET=str(path)
    )
    assert out.returncode == 0, out.stderr
    assert [e["event_type"] for e in events(tmp_path / "events.jsonl")] == ["maintenance.cleanup"]


def test_concurrent_bash_writers_never_interleave(tmp_path):
    """4 scripts × 300 appends at once: every line whole, the count exact."""
    script = (
        "for i in $(seq 300); do log_event test.bash '' '' w=$W n=$i pad=$(printf '%0900d' 0); done"
    )
    path = tmp_path / "caller.sh"
    path.write_text(f"set -euo pipefail\nsource {shlex.quote(LIB)}\n{script}\n")
    env = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
        "DS01_EVENTS_FILE": str(tmp_path / "events.jsonl"),
    }
    procs = [subprocess.Popen(["bash", str(path)], env={**env, "W": str(w)}) for w in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    got = events(tmp_path / "events.jsonl")
    assert sorted((e["details"]["w"], int(e["details"]["n"])) for e in got) == sorted(
        (str(w), n) for w in range(4) for n in range(1, 301)
    )


def test_spool_route_when_the_file_cannot_be_written(tmp_path):
    """No socket, unwritable events path: the event is dropped whole into the spool."""
    (tmp_path / "events.jsonl").mkdir()
    spool = tmp_path / "spool"
    spool.mkdir()
    out = run_bash("log_event auth.denied dave '' reason=x", tmp_path)
    assert out.returncode == 0, out.stderr
    (spooled,) = spool.glob("*.json")
    assert json.loads(spooled.read_text())["user"] == "dave"
    assert not list(spool.glob("*.tmp"))


def test_oversize_and_json_values_take_the_python_path(tmp_path):
    """A 10 kB value is truncated by the library; key:=JSON objects are parsed."""
    out = run_bash(
        "log_event test.big '' '' big=$(printf '%010000d' 0) 'obj:={\"a\":[1,2]}'", tmp_path
    )
    assert out.returncode == 0, out.stderr
    (event,) = events(tmp_path / "events.jsonl")
    assert event["details"]["_truncated"] is True
    assert event["details"]["obj"] == {"a": [1, 2]}
    assert len(json.dumps(event, separators=(",", ":")).encode()) < 4096
