"""The doctor's checks (pure): each broken fact fails its own check with a fix."""

from __future__ import annotations

from watcher.doctor.checks import Facts, PathFacts, run_checks

HEALTHY = Facts(
    docker_host="unix:///var/run/docker.sock",
    docker_error=None,
    nvml="ok:2",
    events_dir=PathFacts("/var/log/ds01", 0o40750, 0, 4, "adm"),
    events_file=PathFacts("/var/log/ds01/events.jsonl", 0o100640, 0, 4, "adm"),
    socket_path="/run/ds01/events.sock",
    socket_state="accepting",
    spool_dir="/var/spool/ds01/events",
    spool_files=0,
    disk_free=50 * 2**30,
    disk_total=100 * 2**30,
    logrotate_config="/etc/logrotate.d/ds01",
    logrotate="",
    dcgm_url="http://127.0.0.1:9400/metrics",
    dcgm="ok",
    gpus=2,
    systemd=True,
    units={"ds01-watcher.socket": "active", "ds01-watcher.service": "active"},
    newest_age=10.0,
    newest_type="watcher.start",
)


def failing(facts: Facts) -> dict[str, str]:
    return {c.name: c.fix for c in run_checks(facts) if c.status == "fail"}


def test_healthy_facts_fail_nothing():
    """A sound host: no check fails."""
    assert failing(HEALTHY) == {}


def test_each_broken_fact_fails_its_check():
    """One broken fact, one failing check, with its fix."""
    from dataclasses import replace

    cases = {
        "docker": replace(HEALTHY, docker_error="Connection refused"),
        "nvml": replace(HEALTHY, nvml="hung"),
        "events file": replace(
            HEALTHY, events_file=PathFacts("/var/log/ds01/events.jsonl", 0o100666, 0, 4)
        ),
        "socket": replace(HEALTHY, socket_state="missing"),
        "spool": replace(HEALTHY, spool_files=3, spool_oldest_age=900.0),
        "disk": replace(HEALTHY, disk_free=10 * 2**20),
        "logrotate": replace(HEALTHY, logrotate="error: bad line"),
        "dcgm exporter": replace(HEALTHY, dcgm="no answer (timed out)"),
        "units": replace(HEALTHY, units={"ds01-watcher.service": "failed"}),
    }
    for name, facts in cases.items():
        failed = failing(facts)
        assert list(failed) == [name], (name, failed)
        assert failed[name], name


def test_permission_error_on_docker_is_named():
    """EACCES on docker.sock is reported as a permission problem, not a stopped engine."""
    from dataclasses import replace

    (check,) = [
        c
        for c in run_checks(replace(HEALTHY, docker_error="denied", docker_permission=True))
        if c.name == "docker"
    ]
    assert "permission denied" in check.summary
    assert "docker group" in check.fix


def test_no_driver_is_a_warning_not_a_failure():
    """A host without the NVIDIA driver warns (gpu = off skips) but needs no action."""
    from dataclasses import replace

    checks = {
        c.name: c.status
        for c in run_checks(
            replace(HEALTHY, nvml="missing:no lib", gpus=0, dcgm="no answer (refused)")
        )
    }
    assert checks["nvml"] == "warn"
    assert checks["dcgm exporter"] == "skip"
    assert {c.name: c.status for c in run_checks(replace(HEALTHY, gpu_setting="off"))}[
        "nvml"
    ] == "skip"


def test_logrotate_not_installed():
    """A missing /etc/logrotate.d/ds01 warns while the shipped file checks, fails when not."""
    from dataclasses import replace

    def status(**kw):
        (check,) = [c for c in run_checks(replace(HEALTHY, **kw)) if c.name == "logrotate"]
        return check.status, check.fix

    assert status(logrotate=None, logrotate_shipped="") == ("warn", "run ds01-watcher install")
    assert status(logrotate=None, logrotate_shipped="error: x")[0] == "fail"
    assert status(logrotate=None, logrotate_shipped=None)[0] == "fail"
