"""ds01-watcher install/uninstall into a --prefix root: real venv, real pip, real systemd-analyze.

One install (venv + pip, the slow part) is shared by the module; the uninstall test
runs last and takes it down. Refusals and dry runs need no venv.
"""

from __future__ import annotations

import grp
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="install sets owners: needs root"),
    pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="needs /usr/bin/python3"),
]


def watcher(*args: str) -> subprocess.CompletedProcess[str]:
    """Run this checkout's ds01-watcher as the README says: the bare system python3, no venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [SYSTEM_PYTHON, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
        env=env,
    )


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root with its type, mode, owner and content hash or link target."""
    result: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            extra: object = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            extra = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            extra = None
        key = str(path.relative_to(root))
        result[key] = (
            stat.S_IFMT(info.st_mode),
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
            extra,
            info.st_mtime_ns,
        )
    return result


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One --compat install into a fresh root, shared by this module."""
    root = tmp_path_factory.mktemp("root")
    # An old system's library already in place: install must keep it aside, uninstall restore it.
    old_lib = root / "opt/ds01-infra/scripts/lib"
    old_lib.mkdir(parents=True)
    (old_lib / "ds01_events.py").write_text("# the old module\n")
    result = watcher("install", "--prefix", str(root), "--compat")
    assert result.returncode == 0, result.stdout + result.stderr
    return root, result


def test_installed_units_verify(installed):
    """systemd-analyze verify accepts the installed units: ExecStart names the venv's command."""
    root, _ = installed
    units = root / "etc/systemd/system"
    service = (units / "ds01-watcher.service").read_text()
    assert f"ExecStart={root}/opt/ds01/venv/bin/ds01-watcher run\n" in service
    assert "/usr/local/bin/ds01-watcher" not in service
    names = sorted(p.name for p in units.iterdir())
    assert {"ds01-watcher.service", "ds01-watcher.socket", "ds01-dcgm-exporter.service"} <= set(
        names
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        check=False,
        cwd=units,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ds01" not in result.stderr, result.stderr


def test_installed_layout(installed):
    """Commands on PATH, directories with their owners and modes, the docs the units name."""
    root, _ = installed
    for name in ("ds01-watcher", "ds01-events", "ds01-log"):
        link = root / "usr/local/bin" / name
        assert os.readlink(link) == f"{root}/opt/ds01/venv/bin/{name}"
        assert os.access(link, os.X_OK)
    adm = grp.getgrnam("adm").gr_gid
    expected = {
        "var/log/ds01": (0o750, 0, adm),
        "var/lib/ds01": (0o755, 0, 0),  # the inventory in it is world-readable
        "var/spool/ds01/events": (0o1733, 0, 0),
    }
    for rel, (mode, uid, gid) in expected.items():
        info = (root / rel).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, uid, gid), rel
    doc = (root / "etc/systemd/system/ds01-watcher.service").read_text()
    named = doc.split("Documentation=file://")[1].split()[0]
    assert (root / named.lstrip("/")).is_file()
    assert (root / "etc/logrotate.d/ds01").read_bytes() == (
        ROOT / "deploy/logrotate/ds01"
    ).read_bytes()
    assert (root / "etc/sysctl.d/60-ds01-watcher.conf").is_file()
    assert "/run/ds01" in (root / "etc/tmpfiles.d/ds01-watcher.conf").read_text()
    version = subprocess.run(
        [str(root / "usr/local/bin/ds01-watcher"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.stdout.startswith("ds01-watcher "), version.stderr
    # Not editable: the venv holds its own copy, not a path into this checkout.
    site = next((root / "opt/ds01/venv/lib").glob("python3.*/site-packages"))
    assert (site / "watcher" / "cli.py").is_file()


def test_install_twice_changes_nothing(installed):
    """A second install changes nothing (not even a timestamp) and says so."""
    root, _ = installed
    before = snapshot(root)
    again = watcher("install", "--prefix", str(root), "--compat")
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert "changed " not in again.stdout
    assert snapshot(root) == before


def test_dry_run_on_an_installed_root(installed):
    """--dry-run over a complete install: every step listed as ok, nothing to do."""
    root, first = installed
    before = snapshot(root)
    dry = watcher("install", "--prefix", str(root), "--compat", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "0 of" in dry.stdout
    steps = [line for line in first.stdout.splitlines() if line.startswith("  ")]
    assert len([line for line in dry.stdout.splitlines() if line.startswith("  ok")]) == len(steps)
    assert snapshot(root) == before


def test_dry_run_writes_nothing(tmp_path):
    """--dry-run into a fresh root prints every step and creates nothing at all."""
    root = tmp_path / "fresh"
    dry = watcher("install", "--prefix", str(root), "--dry-run", "--compat")
    assert dry.returncode == 0, dry.stderr
    assert not root.exists()
    text = dry.stdout
    for what in (
        "virtual environment",
        "ds01-watcher.service",
        "logrotate.d/ds01",
        "sysctl.d",
        "events (1733",
        "ds01_events.py",
    ):
        assert what in text, what
    assert "nothing was written" in text


def test_dry_run_from_a_wheel(tmp_path):
    """A wheel carries the units and docs: a dry run from it plans the same files."""
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("*.whl")
    root = tmp_path / "root"
    dry = watcher("install", "--prefix", str(root), "--dry-run", "--from", str(wheel))
    assert dry.returncode == 0, dry.stderr
    assert "ds01-watcher.socket" in dry.stdout
    assert "usr/share/doc/ds01/watcher.md" in dry.stdout
    assert not root.exists()


def refused(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run install into root, expecting a refusal."""
    result = watcher("install", "--prefix", str(root), *extra)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (root / "opt").exists(), "refused, yet something was installed"
    return result


def test_refuses_a_log_directory_writable_by_others(tmp_path):
    """A world-writable /var/log/ds01 is refused with the chmod that fixes it."""
    log_dir = tmp_path / "var/log/ds01"
    log_dir.mkdir(parents=True)
    log_dir.chmod(0o777)
    result = refused(tmp_path)
    (line,) = result.stderr.splitlines()
    assert "writable by others" in line
    assert f"chmod o-w {log_dir}" in line


def test_refuses_an_events_file_with_the_wrong_owner(tmp_path):
    """An events file someone else owns is refused (its owner could rewrite the trail)."""
    log_dir = tmp_path / "var/log/ds01"
    log_dir.mkdir(parents=True)
    events = log_dir / "events.jsonl"
    events.write_text("")
    os.chown(events, 65534, 65534)
    (line,) = refused(tmp_path).stderr.splitlines()
    assert "uid 65534" in line
    assert "chown root:" in line


def test_refuses_a_group_that_does_not_exist(tmp_path):
    """A log group that does not exist is refused with how to create or change it."""
    (line,) = refused(tmp_path, "--log-group", "no-such-group-ds01").stderr.splitlines()
    assert "group 'no-such-group-ds01' does not exist" in line
    assert "groupadd" in line


def test_compat_import_is_ours(installed, tmp_path):
    """The old import path (lib dir first on sys.path) gives our package, EVENTS_FILE included."""
    root, _ = installed
    lib = root / "opt/ds01-infra/scripts/lib"
    events = tmp_path / "events.jsonl"
    script = tmp_path / "event-logger.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(lib)!r})\n"
        "from ds01_events import EVENTS_FILE, log_event\n"
        "import ds01_events\n"
        "print(ds01_events.__file__)\n"
        "print(EVENTS_FILE)\n"
        "print(log_event('gpu.allocate', user='248835', source='gpu_allocator', gpu_uuid='1.10'))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DS01_EVENTS_FILE": str(events),
        "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
    }
    out = subprocess.run(
        [SYSTEM_PYTHON, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    where, events_file, ok = out.stdout.split()
    assert where.startswith(f"{root}/opt/ds01/venv/lib/")
    assert events_file == str(events)
    assert ok == "True"
    assert '"gpu_uuid":"1.10"' in events.read_text()


def test_compat_command_line_and_bash_library(installed, tmp_path):
    """`python3 .../ds01_events.py log TYPE k=v` and the Bash library at the old path record events."""
    root, _ = installed
    lib = root / "opt/ds01-infra/scripts/lib"
    events = tmp_path / "events.jsonl"
    env = {
        "PATH": f"{root}/usr/local/bin:/usr/bin:/bin",
        "DS01_EVENTS_FILE": str(events),
        "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
    }
    out = subprocess.run(
        [
            SYSTEM_PYTHON,
            str(lib / "ds01_events.py"),
            "log",
            "maintenance.cleanup",
            "user=alice",
            "gpu=1.10",
            "note=a b=c",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    bash = subprocess.run(
        [
            "bash",
            "-c",
            f"set -eu; source {lib}/ds01_events.sh; log_event auth.denied bob '' reason=x",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bash.returncode == 0, bash.stderr
    text = events.read_text()
    assert '"details":{"gpu":"1.10","note":"a b=c"}' in text
    assert '"event_type":"auth.denied"' in text
    assert (lib / "ds01_events.py.pre-ds01").read_text() == "# the old module\n"


def test_bash_fallback_through_the_old_path(installed, tmp_path):
    """Without ds01-log on PATH the Bash library's Python path runs through the loader there."""
    root, _ = installed
    lib = root / "opt/ds01-infra/scripts/lib"
    events = tmp_path / "events.jsonl"
    env = {
        "PATH": "/usr/bin:/bin",
        "DS01_EVENTS_FILE": str(events),
        "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
    }
    # A byte that is not UTF-8 sends the event down the Python path.
    script = f"source {lib}/ds01_events.sh; log_event maintenance.cleanup alice '' path=$'caf\\xe9'"
    bash = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert bash.returncode == 0, bash.stderr
    assert '"path":"caf\ufffd"' in events.read_text(encoding="utf-8")


def test_installed_watcher_serves_metrics_and_doctor_passes(installed, tmp_path):
    """The installed commands run from the venv: a watcher with metrics, then its doctor."""
    import json
    import socket as socketlib
    import time
    import urllib.request

    root, _ = installed
    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    paths = [
        "--config", "/dev/null",
        "--events-file", str(tmp_path / "log" / "events.jsonl"),
        "--socket", str(tmp_path / "events.sock"),
        "--spool-dir", str(tmp_path / "spool"),
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    (tmp_path / "log").mkdir(mode=0o750)
    env = {"PATH": "/usr/bin:/bin", "DS01_METRICS_PORT": str(port)}
    command = str(root / "usr/local/bin/ds01-watcher")
    proc = subprocess.Popen(
        [command, "run", *paths], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics", timeout=5
                ) as answer:
                    text = answer.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert 'ds01_events_total{event_type="watcher.start"}' in text
        logrotate = str(root / "etc/logrotate.d/ds01")
        doc = subprocess.run(
            [command, "doctor", "--json", "--dcgm-url", "off", "--logrotate-config", logrotate, *paths],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        report = json.loads(doc.stdout)
        assert doc.returncode == 0, [c for c in report["checks"] if c["status"] == "fail"]
        assert report["healthy"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_uninstall_removes_what_install_added(installed):
    """Uninstall (last: it takes the shared install down) leaves only the logs and the old file."""
    root, _ = installed
    (root / "var/log/ds01/events.jsonl").write_text('{"kept":true}\n')
    out = watcher("uninstall", "--prefix", str(root))
    assert out.returncode == 0, out.stderr
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == [
        "opt",
        "opt/ds01-infra",
        "opt/ds01-infra/scripts",
        "opt/ds01-infra/scripts/lib",
        "opt/ds01-infra/scripts/lib/ds01_events.py",
        "var",
        "var/log",
        "var/log/ds01",
        "var/log/ds01/events.jsonl",
    ]
    assert (root / "opt/ds01-infra/scripts/lib/ds01_events.py").read_text() == "# the old module\n"
    again = watcher("uninstall", "--prefix", str(root))
    assert again.returncode == 0
    assert "nothing to remove" in again.stdout
