"""Settings: file, then environment, then flags; a local fallback that says where."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from watcher.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from pathlib import Path

ROOTISH = {"euid": 0, "writable": lambda _p: True}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_defaults_suit_the_systemd_unit(tmp_path: Path) -> None:
    """As root with writable /var, the defaults are the system paths and no note is given."""
    settings, notes = load_settings({"config": None}, {"DS01_WATCHER_CONFIG": ""}, **ROOTISH)
    assert settings.events_file == "/var/log/ds01/events.jsonl"
    assert settings.socket == "/run/ds01/events.sock"
    assert settings.spool_dir == "/var/spool/ds01/events"
    assert notes == []
    del tmp_path


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    """A flag beats DS01_* which beats the file, field by field."""
    config = _write(
        tmp_path / "w.toml",
        'events_file = "/f/events"\nsocket = "/f/sock"\nspool_dir = "/f/spool"\ngpu = "off"\n',
    )
    env = {"DS01_EVENTS_SOCKET": "/e/sock", "DS01_EVENTS_SPOOL": "/e/spool"}
    settings, _ = load_settings({"config": config, "spool_dir": "/flag/spool"}, env, **ROOTISH)
    assert settings.events_file == "/f/events"
    assert settings.socket == "/e/sock"
    assert settings.spool_dir == "/flag/spool"
    assert settings.gpu == "off"


def test_dcgm_off_means_none(tmp_path: Path) -> None:
    """--dcgm-url off (or dcgm_url = "off" in the file) disables the probe."""
    config = _write(tmp_path / "w.toml", 'dcgm_url = "off"\n')
    assert load_settings({"config": config}, {}, **ROOTISH)[0].dcgm_url is None
    assert load_settings({"dcgm_url": "off"}, {}, **ROOTISH)[0].dcgm_url is None


def test_unprivileged_falls_back_and_says_where(tmp_path: Path) -> None:
    """Not root: unset paths move under $XDG_STATE_HOME/ds01 and a note names it."""
    env = {"XDG_STATE_HOME": str(tmp_path)}
    settings, notes = load_settings(
        {"events_file": "/given"}, env, euid=1000, writable=lambda _p: False
    )
    base = str(tmp_path / "ds01")
    assert settings.events_file == "/given"
    assert settings.socket == f"{base}/events.sock"
    assert settings.spool_dir.startswith(base)
    assert len(notes) == 1
    assert base in notes[0]


def test_unwritable_var_falls_back_to_the_working_directory(tmp_path: Path) -> None:
    """Root on a read-only /var without XDG_STATE_HOME uses ./.ds01."""
    settings, notes = load_settings(
        {}, {}, euid=0, writable=lambda p: p != "/var", cwd=str(tmp_path)
    )
    assert settings.state_dir == str(tmp_path / ".ds01" / "state")
    assert notes


def test_unknown_key_is_one_clear_error(tmp_path: Path) -> None:
    """A misspelt key in the file is refused naming the key."""
    config = _write(tmp_path / "w.toml", "evnts_file = 1\n")
    with pytest.raises(ConfigError, match="evnts_file"):
        load_settings({"config": config}, {}, **ROOTISH)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    """--config naming a file that does not exist is refused."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"config": str(tmp_path / "nope.toml")}, {}, **ROOTISH)


def test_bad_values_are_refused() -> None:
    """--gpu must be auto or off; sizes must be positive."""
    with pytest.raises(ConfigError):
        load_settings({"gpu": "maybe"}, {}, **ROOTISH)
    with pytest.raises(ValueError, match="queue_size"):
        Settings(queue_size=0)


def test_cli_show_config_and_help(tmp_path: Path) -> None:
    """`ds01-watcher show-config` prints the merged settings; every command has help."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "watcher",
            "show-config",
            "--config",
            "/dev/null",
            "--socket",
            str(tmp_path / "s.sock"),
            "--dcgm-url",
            "off",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f'"socket": "{tmp_path}/s.sock"' in out.stdout
    assert '"dcgm_url": null' in out.stdout
    helptext = subprocess.run(
        [sys.executable, "-m", "watcher", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "run" in helptext
    assert "show-config" in helptext
    bad = subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "does not exist" in bad.stderr


def test_gpu_settings_defaults_and_overrides(tmp_path: Path) -> None:
    """GPU polling: auto every 30 s by default; the interval from env or flag; bad ones refused."""
    missing = str(tmp_path / "none.toml")
    settings, _ = load_settings({"config": None}, {"DS01_WATCHER_CONFIG": ""}, **ROOTISH)
    assert (settings.gpu, settings.gpu_interval_seconds) == ("auto", 30.0)
    assert settings.inventory_file == "/var/lib/ds01/workload-inventory.json"
    config = _write(tmp_path / "w.toml", "")
    settings, _ = load_settings(
        {"config": config, "gpu_interval_seconds": "5", "gpu": "off"},
        {"DS01_GPU_INTERVAL": "7"},
        **ROOTISH,
    )
    assert (settings.gpu, settings.gpu_interval_seconds) == ("off", 5.0)
    settings, _ = load_settings({"config": config}, {"DS01_GPU_INTERVAL": "7"}, **ROOTISH)
    assert settings.gpu_interval_seconds == 7.0
    with pytest.raises(ConfigError, match="gpu_interval_seconds"):
        load_settings({"config": config, "gpu_interval_seconds": "0"}, {}, **ROOTISH)
    with pytest.raises(ConfigError):
        load_settings({"config": missing}, {}, **ROOTISH)


def test_inventory_follows_the_state_dir(tmp_path: Path) -> None:
    """Without its own setting the inventory sits in the state directory in use."""
    config = _write(tmp_path / "w.toml", f'state_dir = "{tmp_path / "state"}"\n')
    settings, _ = load_settings({"config": config}, {}, **ROOTISH)
    assert settings.inventory_file == str(tmp_path / "state" / "workload-inventory.json")
    settings, _ = load_settings(
        {"config": config, "inventory_file": str(tmp_path / "inv.json")}, {}, **ROOTISH
    )
    assert settings.inventory_file == str(tmp_path / "inv.json")


def test_metrics_port_flag_env_and_off() -> None:
    """--metrics-port sets the port, over DS01_METRICS_PORT; "off" and no setting mean off."""
    from watcher.cli import build_parser

    args = build_parser().parse_args(["run", "--metrics-port", "9187"])
    assert args.metrics_port == "9187"
    rootish = {"euid": 0, "writable": lambda _path: True}
    settings, _ = load_settings({"metrics_port": "9187"}, {"DS01_METRICS_PORT": "9000"}, **rootish)
    assert settings.metrics_port == 9187
    settings, _ = load_settings({"metrics_port": "off"}, {"DS01_METRICS_PORT": "9000"}, **rootish)
    assert settings.metrics_port is None
    settings, _ = load_settings({}, {}, **rootish)
    assert settings.metrics_port is None
