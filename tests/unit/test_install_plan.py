"""The install plan (pure): which steps, where, and what on a host makes install refuse."""

from __future__ import annotations

from watcher.install.plan import (
    Bundle,
    Choices,
    HostFacts,
    Layout,
    Link,
    MakeDir,
    Systemctl,
    WriteFile,
    plan_install,
    refusals,
    rewrite_unit,
)

UNIT = b"[Service]\nExecStart=/usr/local/bin/ds01-watcher run\nExecStop=/usr/bin/docker stop x\n"
BUNDLE = Bundle(
    units={"ds01-watcher.service": UNIT, "ds01-watcher.socket": b"[Socket]\n"},
    logrotate=b"rotate\n",
    sysctl=b"net.unix.max_dgram_qlen = 512\n",
    docs={"watcher.md": b"# notes\n"},
)


def choices(root: str = "/", **kw: object) -> Choices:
    base: dict[str, object] = {
        "layout": Layout(root),
        "python": "/usr/bin/python3",
        "source": "/src",
        "fingerprint": "f",
        "site_packages": f"{Layout(root).venv}/lib/python3.11/site-packages",
    }
    return Choices(**{**base, **kw})  # type: ignore[arg-type]


def test_unit_points_at_the_venv():
    """ExecStart names the venv's command; docker calls name this host's client."""
    text = rewrite_unit(UNIT, "/opt/ds01/venv", "/usr/local/bin/docker").decode()
    assert "ExecStart=/opt/ds01/venv/bin/ds01-watcher run" in text
    assert "/usr/local/bin/docker stop" in text


def test_host_plan_enables_units_only_where_systemd_runs():
    """daemon-reload and enable --now are planned on a systemd host, never under a prefix."""
    with_systemd = plan_install(choices(systemd=True), BUNDLE)
    calls = [s.args for s in with_systemd if isinstance(s, Systemctl)]
    assert calls == [
        ("daemon-reload",),
        ("enable", "--now", "ds01-watcher.socket", "ds01-watcher.service"),
    ]
    assert not [s for s in plan_install(choices(), BUNDLE) if isinstance(s, Systemctl)]
    prefixed = plan_install(choices("/stage", systemd=True), BUNDLE)
    assert not [s for s in prefixed if isinstance(s, Systemctl)]
    assert all(not isinstance(s, MakeDir) or s.path.startswith("/stage/") for s in prefixed)


def test_directories_modes_and_owners():
    """The log directory is 0750 root:<group> and kept; the spool is 1733."""
    dirs = {
        s.path: s
        for s in plan_install(choices(log_group="ds01log"), BUNDLE)
        if isinstance(s, MakeDir)
    }
    log = dirs["/var/log/ds01"]
    assert (log.mode, log.owner, log.group, log.keep_on_uninstall) == (
        0o750,
        "root",
        "ds01log",
        True,
    )
    assert dirs["/var/spool/ds01/events"].mode == 0o1733
    # The world-readable workload inventory lives here, so other users may enter it.
    assert dirs["/var/lib/ds01"].mode == 0o755
    assert "/run/ds01" in dirs


def test_compat_paths():
    """--compat links the Bash library and writes the loader at the old scripts' paths."""
    steps = plan_install(choices(compat=True), BUNDLE)
    links = {s.path: s.target for s in steps if isinstance(s, Link)}
    assert links["/opt/ds01-infra/scripts/lib/ds01_events.sh"].endswith(
        "site-packages/ds01_events/ds01_events.sh"
    )
    (loader,) = [s for s in steps if isinstance(s, WriteFile) and s.path.endswith("ds01_events.py")]
    assert loader.backup_foreign
    assert b"/opt/ds01/venv/lib/python3.11/site-packages" in loader.content
    compile(loader.content, "ds01_events.py", "exec")


def facts(**kw: object) -> HostFacts:
    base: dict[str, object] = {
        "prefixed": False,
        "root_user": True,
        "log_group": "adm",
        "group_exists": True,
        "log_dir": "/var/log/ds01",
        "log_dir_mode": 0o40750,
        "events_file": "/var/log/ds01/events.jsonl",
        "events_file_owner": 0,
    }
    return HostFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_refusals():
    """Each host problem is one line that says what to do; a sound host has none."""
    assert refusals(facts()) == []
    (line,) = refusals(facts(log_dir_mode=0o40777))
    assert "chmod o-w /var/log/ds01" in line
    (line,) = refusals(facts(events_file_owner=1000))
    assert "uid 1000" in line
    (line,) = refusals(facts(group_exists=False, log_group="nope"))
    assert "groupadd nope" in line
    (line,) = refusals(facts(root_user=False))
    assert "sudo" in line
    (line,) = refusals(facts(foreign_commands=("/usr/local/bin/ds01-log",)))
    assert "pip uninstall" in line
