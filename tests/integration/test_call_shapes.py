"""Call lines of the shapes the old system's scripts use, through our Bash, CLI and Python.

Each case is one call as the old scripts write it (positional user and source,
key=value with spaces, quotes and ``=`` inside, ``1.10`` slots, numeric and empty
users, unicode, text that is not UTF-8) and the line it must give: strict JSON
(no NaN), text kept as text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ds01_events.cli_log import bash_library_path

LIB = str(bash_library_path())
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def strict_json(raw: bytes) -> dict[str, Any]:
    """Decode one line as a strict reader would: UTF-8, no NaN or Infinity."""

    def refuse(name: str) -> None:
        msg = f"not JSON: {name}"
        raise ValueError(msg)

    value: dict[str, Any] = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    return value


def lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, each checked strictly."""
    if not path.exists():
        return []
    return [strict_json(raw) for raw in path.read_bytes().splitlines()]


def env_for(tmp_path: Path) -> dict[str, str]:
    """No watcher: events go to a file in tmp_path; ds01-log is on PATH."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
        "DS01_EVENTS_FILE": str(tmp_path / "events.jsonl"),
        "DS01_EVENTS_SPOOL": str(tmp_path / "spool"),
    }


# (the call in Bash, user, source, details)
BASH_CASES = [
    (
        (
            'log_event "container.create" "$LOG_USER" "docker-wrapper" container="${NAME:-unknown}"'
            ' image="ds01/pytorch:latest" container_type="devcontainer" gpu="1.10" || true'
        ),
        "alice",
        "docker-wrapper",
        {
            "container": "proj._.1001",
            "image": "ds01/pytorch:latest",
            "container_type": "devcontainer",
            "gpu": "1.10",
        },
    ),
    (
        (
            'log_event "maintenance.runtime_kill" "248835" "enforce-max-runtime"'
            ' container="c1" runtime="12h" max_runtime="configured_limit"'
        ),
        "248835",
        "enforce-max-runtime",
        {"container": "c1", "runtime": "12h", "max_runtime": "configured_limit"},
    ),
    (
        'log_event "gpu.health_check" "" "cleanup-stale-gpu" status="ok" message="all 4 GPUs fine"',
        None,
        "cleanup-stale-gpu",
        {"status": "ok", "message": "all 4 GPUs fine"},
    ),
    (
        (
            'log_event "auth.denied" "$LOG_USER" "" reason="quota \\"exceeded\\"" requested="gpu=2"'
            " 'note=it'\"'\"'s a=b=c'"
        ),
        "alice",
        "caller.sh",
        {"reason": 'quota "exceeded"', "requested": "gpu=2", "note": "it's a=b=c"},
    ),
    (
        (
            'log_event "gpu.release" "jürgen" "cleanup-stale-gpu" container="größe-🚀"'
            ' gpu_uuid="MIG-1c2a" reason="stale allocation (48h)"'
        ),
        "jürgen",
        "cleanup-stale-gpu",
        {"container": "größe-🚀", "gpu_uuid": "MIG-1c2a", "reason": "stale allocation (48h)"},
    ),
    (
        'log_event "monitoring.value" "" "" util="NaN" peak="Infinity" slot="2.0" n="007"',
        None,
        "caller.sh",
        {"util": "NaN", "peak": "Infinity", "slot": "2.0", "n": "007"},
    ),
    (
        'log_event "maintenance.cleanup" "$LOG_USER" "cleanup" path=$\'/home/a/caf\\xe9\'',
        "alice",
        "cleanup",
        {"path": "/home/a/caf\ufffd"},
    ),
    (
        'log_event "user.added" "1001" "sync-group-membership" group="ds01-users"',
        "1001",
        "sync-group-membership",
        {"group": "ds01-users"},
    ),
]


@pytest.mark.parametrize(("call", "user", "source", "details"), BASH_CASES)
def test_bash_call_shapes(tmp_path, call, user, source, details):
    """Each call shape of the old scripts gives one strict JSON line with its text kept."""
    script = tmp_path / "caller.sh"
    script.write_text(
        f"set -euo pipefail\nsource {LIB}\nLOG_USER=alice\nNAME=proj._.1001\n"
        f'[[ keep.me =~ (\\.me) ]]\n{call}\necho "rematch=${{BASH_REMATCH[1]}}"\n'
    )
    out = subprocess.run(
        ["bash", str(script)], env=env_for(tmp_path), capture_output=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == "rematch=.me"
    (event,) = lines(tmp_path / "events.jsonl")
    assert event.get("user") == user
    assert event["source"] == source
    assert event["details"] == details


def test_exported_function_in_a_child_bash(tmp_path):
    """After export -f log_event a child bash records the event (the helpers are sourced)."""
    script = tmp_path / "parent.sh"
    script.write_text(
        f"source {LIB}\nexport -f log_event\n"
        "bash -c 'log_event maintenance.child alice at-job slot=1.10'\n"
    )
    out = subprocess.run(
        ["bash", str(script)], env=env_for(tmp_path), capture_output=True, timeout=60, check=False
    )
    assert "command not found" not in out.stderr.decode()
    (event,) = lines(tmp_path / "events.jsonl")
    assert event["event_type"] == "maintenance.child"
    assert event["details"] == {"slot": "1.10"}


CLI_CASES = [
    (["maintenance.cleanup", "user=alice", "source=at-job", "gpu=1.10", "note=a b"], "alice"),
    (["gpu.reject", "user=248835", "reason=no slot = none free", "requested=2"], "248835"),
    (["maintenance.cleanup", "user=", "util=NaN", "v=Infinity"], None),
    (["maintenance.cleanup", "user=j\udcfcrgen", "path=/tmp/caf\udce9"], "j\ufffdrgen"),
]


@pytest.mark.parametrize(("args", "user"), CLI_CASES)
def test_log_command_shapes(tmp_path, args, user):
    """`python3 -m ds01_events log ...` (the old at-job line) keeps values as text."""
    argv = [os.fsencode(a) for a in [sys.executable, "-m", "ds01_events", "log", *args]]
    out = subprocess.run(argv, env=env_for(tmp_path), capture_output=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    (event,) = lines(tmp_path / "events.jsonl")
    assert event.get("user") == user
    for item in args[1:]:
        key, _, value = item.partition("=")
        if key not in ("user", "source"):
            assert event["details"][key] == value.replace("\udce9", "\ufffd")


def test_python_call_shapes(tmp_path):
    """log_event as the allocator and event-logger.py call it, NaN and surrogates included."""
    code = """
import sys
from ds01_events import EVENTS_FILE, log_event, EVENT_TYPES as BASE_EVENT_TYPES
assert str(EVENTS_FILE) == sys.argv[1], EVENTS_FILE
# An older event-logger.py merged these and printed ", ".join(fields) for each type.
merged = {**BASE_EVENT_TYPES, "config.change": ["field", "old_value"]}
assert "container" in ", ".join(merged["container.create"])
ok = [
    log_event("gpu.allocate", user="248835", source="gpu_allocator", container="c", gpu_uuid="1.10", reason="ok"),
    log_event("gpu.allocation.lock_timeout", source="gpu_allocator", error="5s timeout exceeded", severity="warning"),
    log_event("maintenance.cleanup", user="", source="event-logger", ratio=float("nan"), big=float("inf")),
    log_event("maintenance.cleanup", user="caf\\udce9", path="/home/x/caf\\udce9"),
]
print(ok)
"""
    env = env_for(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code, env["DS01_EVENTS_FILE"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == "[True, True, True, True]", out.stderr
    first, second, third, fourth = lines(tmp_path / "events.jsonl")
    assert first["user"] == "248835"
    assert first["details"]["gpu_uuid"] == "1.10"
    assert second["event_type"] == "gpu.allocation.lock_timeout"
    assert "user" not in third
    assert third["details"] == {"ratio": None, "big": None}
    assert fourth["user"] == "caf\ufffd"
    assert fourth["details"]["path"] == "/home/x/caf\ufffd"


def test_old_log_command_ignores_a_malformed_item_and_keeps_the_event(tmp_path):
    """`python3 -m ds01_events log T stray k=v`: the stray item is dropped with a warning, as before."""
    argv = [
        sys.executable,
        "-m",
        "ds01_events",
        "log",
        "maintenance.cleanup",
        "user=alice",
        "stray",
        "k=v",
    ]
    out = subprocess.run(argv, env=env_for(tmp_path), capture_output=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert b"ignoring malformed argument 'stray'" in out.stderr
    (event,) = lines(tmp_path / "events.jsonl")
    assert event["user"] == "alice"
    assert event["details"] == {"k": "v"}


def test_old_types_command_lists_the_catalogue(tmp_path):
    """`python3 -m ds01_events types` prints the catalogue, as the old module's command did."""
    out = subprocess.run(
        [sys.executable, "-m", "ds01_events", "types"],
        env=env_for(tmp_path),
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert b"auth.denied" in out.stdout
