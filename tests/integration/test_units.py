"""The systemd units pass systemd-analyze verify and agree with the watcher's defaults."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config import Settings

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/usr/local/bin/ds01-watcher run"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"),
]


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_units_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts both units, ExecStart pointed at this interpreter."""
    # The installed /usr/local/bin/ds01-watcher does not exist on a test machine, and verify
    # checks that ExecStart is executable: the copy runs `python -m watcher run` instead.
    service = (UNITS / "ds01-watcher.service").read_text()
    assert f"ExecStart={INSTALLED}\n" in service
    (tmp_path / "ds01-watcher.service").write_text(
        service.replace(INSTALLED, f"{sys.executable} -m watcher run")
    )
    shutil.copy(UNITS / "ds01-watcher.socket", tmp_path)
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / "ds01-watcher.service"),
            str(tmp_path / "ds01-watcher.socket"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "ds01-watcher" not in result.stderr, result.stderr


def test_socket_unit_matches_the_watcher() -> None:
    """The socket unit listens where the watcher looks, 0666, with credentials passed."""
    socket_unit = _unit("ds01-watcher.socket")["Socket"]
    assert socket_unit["ListenDatagram"] == Settings().socket
    assert socket_unit["SocketMode"] == "0666"
    assert socket_unit["PassCredentials"] == "yes"
    service = _unit("ds01-watcher.service")["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert int(service["TimeoutStopSec"]) > Settings().stop_timeout_seconds


def test_dcgm_exporter_unit_verifies_and_stops_in_time(tmp_path: Path) -> None:
    """The exporter unit verifies; systemd waits longer than docker stop; no shell syntax."""
    docker = shutil.which("docker")
    assert docker is not None, "the test command installs docker.io"
    text = (UNITS / "ds01-dcgm-exporter.service").read_text()
    # verify wants the binaries to exist; docker may live elsewhere than /usr/bin here.
    (tmp_path / "ds01-dcgm-exporter.service").write_text(text.replace("/usr/bin/docker", docker))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "ds01-dcgm-exporter.service")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "ds01-dcgm-exporter" not in result.stderr, result.stderr
    service = _unit("ds01-dcgm-exporter.service")["Service"]
    stop_wait = int(service["ExecStop"].split("-t ")[1].split()[0])
    assert stop_wait < int(service["TimeoutStopSec"]) <= stop_wait + 15
    assert service["ExecStopPost"].startswith("-")
    commands = [v for k, v in service.items() if k.startswith("Exec")]
    assert not any("||" in c or "true" in c.split() for c in commands)
    assert "--label ds01.monitoring=true" in service["ExecStart"]


def test_dcgm_exporter_unit_agrees_with_the_watchdog() -> None:
    """Image a setting, '-' only where failure is normal, stop timeout and start limit as assumed."""
    unit = _unit("ds01-dcgm-exporter.service")
    service = unit["Service"]
    settings = Settings()
    # The image comes from an optional environment file, with a default in the unit.
    assert service["EnvironmentFile"] == "-/etc/default/ds01-dcgm-exporter"
    text = (UNITS / "ds01-dcgm-exporter.service").read_text()
    assert "Environment=DCGM_EXPORTER_IMAGE=" in text
    assert "${DCGM_EXPORTER_IMAGE}" in service["ExecStart"]
    # Removing a leftover container may fail (none there); starting and stopping must not.
    assert service["ExecStartPre"].startswith("-/usr/bin/docker rm -f ds01-dcgm-exporter")
    assert service["ExecStopPost"].startswith("-/usr/bin/docker rm -f ds01-dcgm-exporter")
    assert not service["ExecStart"].startswith("-")
    assert not service["ExecStop"].startswith("-")
    # The watchdog's Docker-API path waits as long as the unit's docker stop before a kill.
    stop_wait = int(service["ExecStop"].split("-t ")[1].split()[0])
    assert stop_wait == settings.dcgm_stop_timeout
    assert settings.dcgm_container in service["ExecStop"]
    assert settings.dcgm_unit == "ds01-dcgm-exporter.service"
    # The watcher's restarts count towards the start limit: its cap alone never trips it.
    assert int(unit["Unit"]["StartLimitBurst"]) > settings.dcgm_restarts_per_hour
    # The exporter's collect interval (ms) is the one the watcher assumes (s).
    assert "-c 30000" in text
    assert settings.dcgm_collect_interval == 30
    assert f"127.0.0.1:{settings.dcgm_url.split(':')[-1].split('/')[0]}" in service["ExecStart"]  # type: ignore[union-attr]


def test_dcgm_exporter_defaults_file_is_commented_examples() -> None:
    """deploy/default/ds01-dcgm-exporter names the settings the unit reads, all commented."""
    text = (UNITS.parent / "default" / "ds01-dcgm-exporter").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(line.startswith("#") for line in lines)
    assert "#DCGM_EXPORTER_IMAGE=" in text
    assert "#DCGM_EXPORTER_ARGS=" in text
