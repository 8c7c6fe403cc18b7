"""ds01-watcher doctor against a healthy running watcher and against each broken setup.

One real watcher serves the module; each broken case changes one thing (a mode, a
path, a full tmpfs, a Docker URL with nothing behind it) and checks that exactly
that check fails, with its fix. The shared dockerd is never stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.watcher_support import Watcher, fill, mount_tmpfs, needs_root

ROOT = Path(__file__).resolve().parents[2]
LOGROTATE = str(ROOT / "deploy" / "logrotate" / "ds01")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real watcher with its own log, socket and spool."""
    root = tmp_path_factory.mktemp("doctor")
    log_dir = root / "log"
    log_dir.mkdir(mode=0o750)
    spool = root / "spool"
    watcher = Watcher(root, log_dir / "events.jsonl", root / "events.sock", spool).start()
    yield watcher
    watcher.stop()


def doctor(
    watcher: Watcher, *extra: str, user: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Run doctor --json over the watcher's files; return (exit status, checks by name)."""
    argv = [
        sys.executable,
        "-m",
        "watcher",
        "doctor",
        "--json",
        "--config",
        "/dev/null",
        "--events-file",
        str(watcher.events_file),
        "--socket",
        str(watcher.socket),
        "--spool-dir",
        str(watcher.spool),
        "--state-dir",
        str(watcher.root / "state"),
        "--logrotate-config",
        LOGROTATE,
        *extra,
    ]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=env
    )
    report = json.loads(out.stdout)
    assert report["healthy"] == (out.returncode == 0)
    return out.returncode, {c["name"]: c for c in report["checks"]}


def failed(checks: dict[str, Any]) -> set[str]:
    """The names of the checks that failed."""
    return {name for name, c in checks.items() if c["status"] == "fail"}


def test_healthy_setup(running):
    """A running watcher with a sound setup: exit 0, no check fails."""
    status, checks = doctor(running)
    assert status == 0, checks
    assert failed(checks) == set()
    for name in ("docker", "events file", "socket", "spool", "disk", "logrotate"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["newest event"]["status"] == "ok"
    assert checks["nvml"]["status"] in ("ok", "warn", "skip")


def test_human_report_fits_one_screen(running):
    """Without --json: one line per check (plus fixes), at most a screen."""
    out = subprocess.run(
        [sys.executable, "-m", "watcher", "doctor", "--config", "/dev/null",
         "--events-file", str(running.events_file), "--socket", "/nonexistent/none.sock",
         "--spool-dir", str(running.spool), "--logrotate-config", LOGROTATE],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert len(lines) <= 24
    assert any(line.split()[:2] == ["FAIL", "socket"] for line in lines)
    assert "fix: systemctl restart ds01-watcher.socket" in out.stdout


def test_events_file_writable_by_others(running):
    """A log anyone may write fails the events check, with chmod o-w as the fix."""
    os.chmod(running.events_file, 0o666)  # noqa: S103 - the broken setup under test
    try:
        status, checks = doctor(running)
    finally:
        os.chmod(running.events_file, 0o640)
    assert status == 1
    assert failed(checks) == {"events file"}
    assert "writable by others" in checks["events file"]["summary"]
    assert checks["events file"]["fix"] == f"chmod o-w {running.events_file}"


def test_missing_socket(running, tmp_path):
    """No socket where the settings say: the socket check fails with the restart to do."""
    missing = tmp_path / "none.sock"
    status, checks = doctor(running, "--socket", str(missing))
    assert status == 1
    assert failed(checks) == {"socket"}
    assert "is missing" in checks["socket"]["summary"]
    assert "systemctl restart ds01-watcher.socket" in checks["socket"]["fix"]


def test_stopped_docker(running):
    """A Docker URL with nothing listening (the shared dockerd keeps running) fails docker."""
    host = f"unix:///tmp/none-{uuid.uuid4().hex[:8]}.sock"
    status, checks = doctor(running, "--docker-host", host)
    assert status == 1
    assert failed(checks) == {"docker"}
    assert host in checks["docker"]["summary"]
    assert "systemctl start docker" in checks["docker"]["fix"]


@needs_root
def test_docker_permission_error_is_named(running):
    """As a user outside the docker group the socket's permission error is named as such."""
    status, checks = doctor(running, user="nobody")
    assert status == 1
    assert "permission denied on the Docker socket" in checks["docker"]["summary"]
    assert "docker group" in checks["docker"]["fix"]


@needs_root
def test_full_disk(running, tmp_path):
    """The log on a full filesystem (a small tmpfs) fails the disk check."""
    where = tmp_path / "small"
    mount_tmpfs(where, "size=2m,mode=0750")
    try:
        events = where / "events.jsonl"
        events.write_bytes(running.events_file.read_bytes())
        events.chmod(0o640)
        fill(where)
        status, checks = doctor(running, "--events-file", str(events))
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
    assert status == 1
    assert failed(checks) == {"disk"}
    assert "events will be lost" in checks["disk"]["summary"]


def test_invalid_logrotate_config(running, tmp_path):
    """A logrotate file logrotate -d refuses fails the logrotate check."""
    bad = tmp_path / "ds01"
    bad.write_text("/var/log/ds01/events.jsonl {\n    rotate many\n}\n")
    bad.chmod(0o644)
    status, checks = doctor(running, "--logrotate-config", str(bad))
    assert status == 1
    assert failed(checks) == {"logrotate"}
    assert "logrotate -d" in checks["logrotate"]["summary"]


def test_spool_not_draining(running, tmp_path):
    """An event waiting in the spool for ten minutes means nobody drains it."""
    spool = tmp_path / "spool"
    spool.mkdir()
    stale = spool / "1-abc.json"
    stale.write_text("{}\n")
    old = time.time() - 600
    os.utime(stale, (old, old))
    status, checks = doctor(running, "--spool-dir", str(spool))
    assert status == 1
    assert failed(checks) == {"spool"}
    assert "not draining" in checks["spool"]["summary"]


def test_quarantined_spool_files_warn(running, tmp_path):
    """Files set aside in <spool>.quarantine are reported (a warning: nothing is stuck)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    quarantine = tmp_path / "spool.quarantine"
    quarantine.mkdir()
    (quarantine / "1000-planted.json").write_text("x")
    status, checks = doctor(running, "--spool-dir", str(spool))
    assert status == 0
    assert checks["spool"]["status"] == "warn"
    assert "1 spool file(s) set aside" in checks["spool"]["summary"]
    assert str(quarantine) in checks["spool"]["fix"]


def test_dcgm_exporter_answering(running):
    """An exporter on loopback answering /metrics with DCGM series is reported ok."""
    import http.server
    import threading

    class Exporter(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-1"} 12345\n'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # noqa: ARG002 - quiet
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        status, checks = doctor(running, "--dcgm-url", url)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 0
    assert checks["dcgm exporter"]["status"] == "ok"
    assert url in checks["dcgm exporter"]["summary"]


GPUS = """\
gpu 0 uuid=GPU-aaaa name="NVIDIA A100-PCIE-40GB" memory=40960 mig=off
gpu 1 uuid=GPU-bbbb name="NVIDIA RTX A6000" memory=49140
"""


@pytest.fixture
def fake_nvml(tmp_path):
    """The fake libnvidia-ml.so.1 (tests/fakes/nvml) for the doctor's child process."""
    from tests.fakes.nvml import FakeNvml

    fake = FakeNvml(tmp_path / "nvml")
    yield fake
    fake.close()


def dead_url() -> str:
    """A metrics URL on loopback with nothing listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"


def test_gpus_without_an_exporter(running, fake_nvml):
    """NVML sees GPUs (fake library) and no exporter answers: the exporter check fails."""
    fake_nvml.write(GPUS)
    url = dead_url()
    status, checks = doctor(running, "--dcgm-url", url, env=fake_nvml.env())
    assert checks["nvml"]["status"] == "ok", checks["nvml"]
    assert "2 GPU(s)" in checks["nvml"]["summary"]
    assert status == 1
    assert failed(checks) == {"dcgm exporter"}
    assert "systemctl restart ds01-dcgm-exporter" in checks["dcgm exporter"]["fix"]


def test_hung_nvml_is_a_failure_not_a_hang(running, fake_nvml):
    """An NVML init that never returns: doctor answers within its bound and says so."""
    fake_nvml.write(GPUS + "hang nvmlInitWithFlags\n")
    started = time.monotonic()
    status, checks = doctor(running, "--dcgm-url", "off", env=fake_nvml.env())
    assert time.monotonic() - started < 30
    assert status == 1
    assert failed(checks) == {"nvml"}
    assert "did not answer in time" in checks["nvml"]["summary"]
