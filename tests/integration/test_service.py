"""The whole service as a process: signals, full disk, spool, sd_notify, fallback paths."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from watcher_support import Watcher, fill, mount_tmpfs, needs_root, read_events, wait_for

from ds01_events.envelope import encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [pytest.mark.integration]


def test_sigterm_flushes_everything_and_logs_stop(make_watcher: Callable[..., Watcher]) -> None:
    """Events sent just before SIGTERM are all written; watcher.stop is the last line."""
    watcher = make_watcher().start()
    ids = [watcher.send_event("test.burst", n=n) for n in range(3000)]
    assert watcher.stop() == 0
    events = read_events(watcher.events_file)
    logged = [e["id"] for e in events if e["event_type"] == "test.burst"]
    assert logged == ids
    assert events[0]["event_type"] == "watcher.start"
    assert events[0]["details"]["version"]
    assert events[0]["details"]["settings"]["socket"] == str(watcher.socket)
    assert events[-1]["event_type"] == "watcher.stop"
    assert events[-1]["details"]["reason"] == "SIGTERM"
    assert (watcher.spool.stat().st_mode & 0o7777) == 0o1733


def test_sigint_also_stops_cleanly(make_watcher: Callable[..., Watcher]) -> None:
    """SIGINT (Ctrl-C) stops with exit status 0 and a watcher.stop event."""
    watcher = make_watcher().start()
    watcher.signal(signal.SIGINT)
    assert watcher.proc is not None
    assert watcher.proc.wait(30) == 0
    assert read_events(watcher.events_file)[-1]["details"]["reason"] == "SIGINT"


def test_sighup_reopens_and_keeps_serving(make_watcher: Callable[..., Watcher]) -> None:
    """SIGHUP does not kill the service: it reopens the log at its path and goes on."""
    watcher = make_watcher().start()
    rotated = watcher.events_file.with_name("events.jsonl.old")
    watcher.events_file.rename(rotated)
    watcher.signal(signal.SIGHUP)
    assert wait_for(lambda: "reopening the log" in watcher.stderr())
    event_id = watcher.send_event("test.after_hup")
    assert wait_for(lambda: watcher.logged(event_id))
    assert watcher.proc is not None
    assert watcher.proc.poll() is None
    fds = Path(f"/proc/{watcher.proc.pid}/fd").iterdir()
    targets = {str(fd.readlink()) for fd in fds}
    assert str(watcher.events_file) in targets
    assert str(rotated) not in targets
    assert watcher.stop() == 0


def test_spool_files_are_drained_at_start_with_the_owner_as_origin(
    make_watcher: Callable[..., Watcher],
) -> None:
    """A spool file present at start is logged with origin = its owner, then removed."""
    watcher = make_watcher()
    watcher.spool.mkdir(parents=True)
    watcher.spool.chmod(0o1733)
    event = make_event("test.spooled")
    spooled = watcher.spool / "123-abc.json"
    spooled.write_bytes(encode_line(event))
    os.chown(spooled, 65534, 65534)
    watcher.start()
    assert wait_for(lambda: watcher.logged(event.id))
    assert not spooled.exists()
    assert watcher.stop() == 0
    logged = next(e for e in read_events(watcher.events_file) if e["id"] == event.id)
    assert logged["origin"] == {"uid": 65534, "gid": 65534}


def test_sd_notify_ready_status_watchdog_stopping(make_watcher: Callable[..., Watcher]) -> None:
    """Under NOTIFY_SOCKET the service sends READY=1, STATUS=, WATCHDOG=1 and STOPPING=1."""
    watcher = make_watcher()
    path = str(watcher.root / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(30)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: _collect(listener, got), daemon=True)
    reader.start()
    # WATCHDOG_USEC=400 ms: pings every 200 ms while healthy.
    watcher.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    assert wait_for(lambda: any(b"WATCHDOG=1" in m for m in got))
    assert watcher.stop() == 0
    assert wait_for(lambda: any(b"STOPPING=1" in m for m in got))
    listener.close()
    assert got[0].startswith(b"READY=1\nSTATUS=")
    assert any(m.startswith(b"STATUS=") for m in got)


def _collect(sock: socket.socket, into: list[bytes]) -> None:
    try:
        while True:
            into.append(sock.recv(4096))
    except OSError:
        return


@needs_root
def test_full_target_service_survives_and_writes_held_events(
    make_watcher: Callable[..., Watcher], tmp_path: Path
) -> None:
    """On a full filesystem it keeps serving, says so once, and writes held events when freed."""
    log_dir = tmp_path / "logfs"
    mount_tmpfs(log_dir, "size=128k,mode=0755")
    try:
        watcher = make_watcher(log_dir=log_dir).start()
        filler = fill(log_dir)
        ids = [watcher.send_event("test.while_full", n=n, pad="y" * 200) for n in range(200)]
        assert wait_for(lambda: "No space left on device" in watcher.stderr())
        wait_for(lambda: False, 1.0)
        assert watcher.proc is not None
        assert watcher.proc.poll() is None
        assert watcher.stderr().count("cannot write") == 1
        filler.unlink()
        assert wait_for(lambda: all(watcher.logged(i) for i in ids), 30)
        assert watcher.stop() == 0
        events = read_events(watcher.events_file)
        assert [e["id"] for e in events if e["event_type"] == "test.while_full"] == ids
        assert events[-1]["event_type"] == "watcher.stop"
    finally:
        subprocess.run(["umount", "-l", str(log_dir)], check=False)


@needs_root
def test_unprivileged_run_falls_back_and_says_where() -> None:
    """Run as nobody with no paths given, it uses $XDG_STATE_HOME/ds01 and says so."""
    home = Path(tempfile.mkdtemp(prefix="ds01-nobody-"))
    home.chmod(0o755)
    os.chown(home, 65534, 65534)
    env = {**os.environ, "XDG_STATE_HOME": str(home)}
    cmd = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-m",
        "watcher",
        "run",
        "--config",
        "/dev/null",
    ]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=str(home))
    try:
        log = home / "ds01" / "events.jsonl"
        started = wait_for(lambda: log.exists() and log.stat().st_size > 0)
        assert started, proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        events = read_events(log)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    assert proc.returncode == 0, err
    assert f"using {home}/ds01" in err
    assert events[0]["details"]["settings"]["socket"] == f"{home}/ds01/events.sock"
