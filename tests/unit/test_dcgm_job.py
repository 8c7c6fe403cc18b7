"""The watchdog's settings, its wiring into the service, and the systemd restart path."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from watcher.config import ConfigError, Settings, load_settings
from watcher.dcgm.job import DcgmProbe, dcgm_probe_from_settings
from watcher.dcgm.probe import ProbeAnswer
from watcher.dcgm.restart import ExporterRestarter
from watcher.dcgm.watchdog import WatchdogPolicy
from watcher.service import default_job_factories

ROOTISH = {"euid": 0, "writable": lambda _p: True}


def test_flags_reach_the_settings() -> None:
    """Every --dcgm-* flag lands in its setting, as a number where it is one."""
    flags = {
        "dcgm_url": "http://127.0.0.1:9500/metrics",
        "dcgm_interval": "15",
        "dcgm_timeout": "5",
        "dcgm_collect_interval": "10",
        "dcgm_hung_after": "4",
        "dcgm_unit": "x.service",
        "dcgm_container": "x",
        "dcgm_restarts_per_hour": "2",
        "dcgm_grace": "30",
        "dcgm_stop_timeout": "25",
    }
    settings, _ = load_settings(flags, {}, **ROOTISH)
    assert settings.dcgm_interval == 15.0
    assert settings.dcgm_timeout == 5.0
    assert settings.dcgm_collect_interval == 10.0
    assert settings.dcgm_hung_after == 4
    assert settings.dcgm_restarts_per_hour == 2
    assert settings.dcgm_stop_timeout == 25.0
    assert (settings.dcgm_unit, settings.dcgm_container) == ("x.service", "x")


def test_defaults_are_the_documented_ones() -> None:
    """30 s probes, a 10 s deadline, 30 s collect interval, the unit and container names."""
    settings = Settings()
    assert settings.dcgm_url == "http://127.0.0.1:9400/metrics"
    assert (settings.dcgm_interval, settings.dcgm_timeout) == (30.0, 10.0)
    assert settings.dcgm_collect_interval == 30.0
    assert settings.dcgm_unit == "ds01-dcgm-exporter.service"
    assert settings.dcgm_container == "ds01-dcgm-exporter"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"dcgm_url": "http://127.0.0.1:9400/health"}, "/health"),
        ({"dcgm_url": "https://gpu01:9400/metrics"}, "http://"),
        ({"dcgm_interval": 0}, "dcgm_interval"),
        ({"dcgm_timeout": 0}, "dcgm_timeout"),
        ({"dcgm_hung_after": 0}, "dcgm_hung_after"),
        ({"dcgm_restarts_per_hour": -1}, "dcgm_restarts_per_hour"),
    ],
)
def test_bad_settings_are_one_line(values: dict[str, Any], says: str) -> None:
    """A bad DCGM setting is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=says) as info:
        load_settings({k: str(v) for k, v in values.items()}, {}, **ROOTISH)
    assert "\n" not in str(info.value)


def test_cli_shows_and_refuses_dcgm_flags() -> None:
    """show-config prints the dcgm settings; a /health URL exits 2 with one line."""
    base = [sys.executable, "-m", "watcher", "show-config", "--config", "/dev/null"]
    shown = subprocess.run(
        [*base, "--dcgm-interval", "12", "--dcgm-timeout", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"dcgm_interval": 12.0' in shown.stdout
    bad = subprocess.run(
        [*base, "--dcgm-url", "http://127.0.0.1:9400/health"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "/health" in bad.stderr


def test_service_adds_the_job_only_when_on() -> None:
    """default_job_factories gives the dcgm-probe job, or nothing with dcgm_url off."""

    class Log:
        def submit(self, _event: object, /) -> bool:
            return True

        def wait_durable(self, _timeout: float) -> bool:
            return True

    (factory,) = default_job_factories(Settings(dcgm_interval=7))
    job = factory(Log(), lambda _line: None)
    assert job is not None
    assert job.name == "dcgm-probe"
    assert job.interval_seconds == 7
    assert job.run_at_start
    (off,) = default_job_factories(Settings(dcgm_url=None))
    assert off(Log(), lambda _line: None) is None
    assert dcgm_probe_from_settings(Settings(dcgm_url=None), Log().submit) is None


def test_the_watchdog_expects_the_gpus_nvml_last_saw() -> None:
    """With the service's DeviceDirectory, the probe's yardstick is NVML's count of live GPUs."""
    from detectors.snapshot import Gpu, NvmlSnapshot
    from watcher.gpu.directory import DeviceDirectory

    class Log:
        def submit(self, _event: object, /) -> bool:
            return True

        def wait_durable(self, _timeout: float) -> bool:
            return True

    devices = DeviceDirectory()
    (factory,) = default_job_factories(Settings(), devices)
    job = factory(Log(), lambda _line: None)
    assert job is not None
    probe = job.func.__self__  # type: ignore[attr-defined]
    assert probe._expected() is None  # NVML not known yet: no GPU-count rule
    gpus = (
        Gpu(index=0, uuid="GPU-a"),
        Gpu(index=1, uuid="GPU-b"),
        Gpu(index=2, uuid="GPU-c", lost=True),
    )
    devices.update(NvmlSnapshot(taken_at=0.0, gpus=gpus))
    assert probe._expected() == 2


class FakeSystemctl:
    """Answers systemctl like a host where the unit is installed (or not)."""

    def __init__(self, *, installed: bool = True, restart_rc: int = 0) -> None:
        self.installed = installed
        self.restart_rc = restart_rc
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Answer one systemctl call."""
        self.calls.append(argv)
        if argv[1] == "cat":
            return subprocess.CompletedProcess(argv, 0 if self.installed else 1, "", "")
        return subprocess.CompletedProcess(argv, self.restart_rc, "", "Job failed. See journal.")


def _restarter(run: FakeSystemctl, *, systemd: bool = True) -> ExporterRestarter:
    def no_docker(**_kwargs: Any) -> Any:
        raise ConnectionError

    return ExporterRestarter(
        unit="ds01-dcgm-exporter.service",
        container="ds01-dcgm-exporter",
        stop_timeout=20,
        run=run,
        systemd_running=lambda: systemd,
        docker_client=no_docker,
    )


def test_systemd_path_when_the_unit_is_installed() -> None:
    """Systemd runs and systemctl cat finds the unit: systemctl restart is used."""
    run = FakeSystemctl()
    restarter = _restarter(run)
    assert restarter.method() == "systemd"
    outcome = restarter.restart("systemd")
    assert outcome.ok
    assert outcome.method == "systemd"
    assert ["systemctl", "restart", "--", "ds01-dcgm-exporter.service"] in run.calls
    assert outcome.killed is None  # the engine could not be asked here


def test_no_systemd_or_no_unit_means_docker_or_nothing() -> None:
    """Without systemd, or without the unit, and no container either: nothing to restart."""
    assert _restarter(FakeSystemctl(), systemd=False).method() is None
    assert _restarter(FakeSystemctl(installed=False)).method() is None
    assert "--dcgm-url off" in _restarter(FakeSystemctl()).nothing_installed()


def test_failed_systemctl_restart_is_not_ok_with_a_reason() -> None:
    """A failing systemctl restart gives ok false and its last stderr line."""
    outcome = _restarter(FakeSystemctl(restart_rc=1)).restart("systemd")
    assert not outcome.ok
    assert "See journal" in str(outcome.error)


def test_probe_skips_while_a_restart_runs() -> None:
    """While a restart is running, the job neither fetches nor decides anything."""
    fetched: list[float] = []

    def fetch(_url: object, timeout: float) -> ProbeAnswer:
        fetched.append(timeout)
        return ProbeAnswer(took_s=0.0, error="connection refused", kind="refused")

    probe = DcgmProbe(
        "http://127.0.0.1:9400/metrics",
        lambda _e: True,
        policy=WatchdogPolicy(),
        fetch=fetch,
    )
    probe.watchdog.restarting = object()  # type: ignore[assignment]
    probe.probe()
    assert fetched == []


def test_tick_returns_at_once_and_skips_while_a_probe_waits() -> None:
    """The scheduler's tick starts a probe thread; ticks during it skip, silently."""
    import threading

    release = threading.Event()
    entered = threading.Event()
    fetched: list[float] = []

    def fetch(_url: object, timeout: float) -> ProbeAnswer:
        fetched.append(timeout)
        entered.set()
        release.wait(10)
        return ProbeAnswer(took_s=0.0, error="no whole answer", kind="timeout")

    said: list[str] = []
    probe = DcgmProbe(
        "http://127.0.0.1:9400/metrics", lambda _e: True, fetch=fetch, say=said.append
    )
    probe.tick()
    assert entered.wait(5)
    for _ in range(5):
        probe.tick()
    assert len(fetched) == 1
    assert probe.skipped == 5
    release.set()
    assert probe._probe_thread is not None
    probe._probe_thread.join(5)
    probe.tick()
    probe._probe_thread.join(5)
    assert len(fetched) == 2
    assert said == []


def test_every_dcgm_flag_has_help_and_is_documented() -> None:
    """Each --dcgm-* flag has help text and a row in docs/watcher.md."""
    from pathlib import Path

    from watcher.cli import _FLAGS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "watcher.md").read_text()
    flags = [(flag, dest, text) for flag, dest, text in _FLAGS if flag.startswith("--dcgm")]
    assert len(flags) >= 12
    for flag, dest, text in flags:
        assert text
        assert f"`{flag}` / `{dest}`" in docs, flag
        assert hasattr(Settings(), dest)


def test_exporter_status_for_the_metrics_endpoint() -> None:
    """dcgm_exporter_status says up after a whole answer, down after failures, and counts restarts."""
    from pathlib import Path

    body = (Path(__file__).resolve().parents[1] / "fixtures" / "dcgm" / "mig-a100.prom").read_text()
    answers = [ProbeAnswer(took_s=0.01, body=body)]
    fail = ProbeAnswer(took_s=0.01, error="connection refused", kind="refused")

    def fetch(_url: object, _timeout: float) -> ProbeAnswer:
        return answers.pop(0) if answers else fail

    class Restarter:
        container = "ds01-dcgm-exporter"

        def method(self) -> str:
            return "docker"

        def restart(self, method: str) -> Any:
            from watcher.dcgm.watchdog import RestartOutcome

            return RestartOutcome(method=method, took_s=0.0, ok=True)

        def nothing_installed(self) -> str:
            return ""

        def container_state(self) -> str | None:
            return None

    probe = DcgmProbe(
        "http://127.0.0.1:9400/metrics",
        lambda _e: True,
        policy=WatchdogPolicy(hung_after=2),
        fetch=fetch,
        restarter=Restarter(),  # type: ignore[arg-type]
    )
    assert probe.dcgm_exporter_status()["up"] == 0.0  # nothing known before the first probe
    probe.probe()
    assert probe.dcgm_exporter_status() == {"up": 1.0, "restarts": 0.0, "given_up": 0.0}
    for _ in range(3):
        probe.probe()
        probe.wait_restart(5)
    status = probe.dcgm_exporter_status()
    assert status["up"] == 0.0
    assert status["restarts"] >= 1.0
