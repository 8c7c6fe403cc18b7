"""log_event through each route, with real processes, sockets, FIFOs and users."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ds01_events.emit import Settings, record
from ds01_events.envelope import decode_client_line, make_event


@pytest.fixture
def open_tmp():
    """A directory other users can reach (pytest's own tmp root is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ds01-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


WRITERS = 8
PER_WRITER = 5_000

WRITER = """
import sys
import tempfile
from ds01_events import log_event
w, n = sys.argv[1], int(sys.argv[2])
failed = sum(not log_event("test.burst", user="u", writer=w, n=i) for i in range(n))
sys.exit(1 if failed else 0)
"""


def run_writers(env: dict[str, str]) -> None:
    # These tests are about loss and tearing, not latency: on a loaded 2-core machine
    # a file write can take longer than the 50 ms default bound.
    env = {"DS01_EVENTS_TIMEOUT_MS": "5000", **env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(PER_WRITER)], env={**os.environ, **env}
        )
        for w in range(WRITERS)
    ]
    assert [p.wait(timeout=180) for p in procs] == [0] * WRITERS


def check_complete(lines: list[bytes]) -> None:
    seen: dict[str, set[int]] = {}
    for line in lines:
        event = decode_client_line(line.rstrip(b"\n"))  # raises on any torn or merged line
        seen.setdefault(event.details["writer"], set()).add(event.details["n"])
    assert len(lines) == WRITERS * PER_WRITER
    assert seen == {str(w): set(range(PER_WRITER)) for w in range(WRITERS)}


def spooled_lines(spool: Path) -> list[bytes]:
    assert not list(spool.glob("*.tmp"))
    return [line for f in spool.glob("*.json") for line in f.read_bytes().splitlines(keepends=True)]


def test_direct_append_from_8_processes_loses_and_tears_nothing(tmp_path):
    """8 × 5,000 concurrent direct appends: every line whole, the count exact."""
    events = tmp_path / "log" / "events.jsonl"
    run_writers(
        {"DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"), "DS01_EVENTS_FILE": str(events)}
    )
    check_complete(events.read_bytes().splitlines(keepends=True))
    assert events.stat().st_mode & 0o777 == 0o640


def test_socket_route_from_8_processes_loses_nothing(tmp_path):
    """8 × 5,000 datagrams to a real socket; what the queue could not take is spooled."""
    path = tmp_path / "events.sock"
    spool = tmp_path / "spool"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(0.5)
    got: list[bytes] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                got.append(receiver.recv(8192))
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive)
    thread.start()
    try:
        run_writers(
            {
                "DS01_EVENTS_SOCKET": str(path),
                "DS01_EVENTS_FILE": str(tmp_path / "no.jsonl"),
                "DS01_EVENTS_SPOOL": str(spool),
            }
        )
        deadline = time.monotonic() + 10
        while len(got) + len(spooled_lines(spool) if spool.exists() else []) < WRITERS * PER_WRITER:
            assert time.monotonic() < deadline, "datagrams missing"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        receiver.close()
    assert not (tmp_path / "no.jsonl").exists(), (
        "a live socket must not be bypassed by direct writes"
    )
    check_complete(got + (spooled_lines(spool) if spool.exists() else []))


def test_spool_route_from_8_processes_loses_nothing(tmp_path):
    """With no socket and a file that cannot be appended, every event is spooled once."""
    spool = tmp_path / "spool"
    blocked = tmp_path / "events.jsonl"
    blocked.mkdir()  # appending to a directory fails: the spool must take over
    run_writers(
        {
            "DS01_EVENTS_SOCKET": str(tmp_path / "none.sock"),
            "DS01_EVENTS_FILE": str(blocked),
            "DS01_EVENTS_SPOOL": str(spool),
        }
    )
    check_complete(spooled_lines(spool))
    assert spool.stat().st_mode & 0o7777 == 0o1733


def test_fifo_without_reader_does_not_block(tmp_path):
    """A FIFO at the events path: the call returns within the bound and says why."""
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    code = (
        "import time; from ds01_events import log_event\n"
        "t = time.monotonic(); ok = log_event('test.fifo'); print(ok, time.monotonic() - t)"
    )
    env = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "no.sock"),
        "DS01_EVENTS_FILE": str(fifo),
        "DS01_EVENTS_SPOOL": "/proc/no-spool",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    ok, elapsed = out.stdout.split()
    assert ok == "False"
    assert float(elapsed) < 0.2
    assert "FIFO with no reader" in out.stderr
    assert out.stderr.count("\n") == 1


def test_hung_write_costs_the_caller_only_the_bound(tmp_path):
    """A write that never returns (simulated on the worker) is abandoned after the bound."""
    from ds01_events import emit

    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        emit._worker.run(release.wait, 0.05)
    assert time.monotonic() - started < 0.5
    # While the stuck write has not returned, further file writes fail at once.
    started = time.monotonic()
    outcome = record(
        make_event("test.hung"),
        Settings(
            socket_path=str(tmp_path / "no"),
            events_file=str(tmp_path / "e"),
            spool_dir=str(tmp_path / "s"),
        ),
    )
    assert not outcome.recorded
    assert "hung filesystem" in outcome.reason
    assert time.monotonic() - started < 0.5
    release.set()
    deadline = time.monotonic() + 5
    while not record(
        make_event("test.hung"),
        Settings(socket_path=str(tmp_path / "no"), events_file=str(tmp_path / "e")),
    ).recorded:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def run_as_nobody(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")
def test_unprivileged_caller_falls_back_to_the_spool(open_tmp):
    """nobody, no socket, a root-owned log: the event lands in the 1733 spool, no exception."""
    tmp_path = open_tmp
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o755)
    events = log_dir / "events.jsonl"
    events.write_bytes(b"")
    events.chmod(0o640)
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(0o1733)
    env = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "no.sock"),
        "DS01_EVENTS_FILE": str(events),
        "DS01_EVENTS_SPOOL": str(spool),
        "HOME": "/",
    }
    code = "from ds01_events import log_event; print(log_event('auth.denied', user='nobody', reason='test'))"
    out = run_as_nobody(code, env)
    assert out.stdout.strip() == "True", out.stderr
    (spooled,) = spool.glob("*.json")
    assert spooled.stat().st_uid != 0
    assert json.loads(spooled.read_bytes())["event_type"] == "auth.denied"
    assert events.read_bytes() == b""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")
def test_unprivileged_caller_with_no_route_gets_one_clear_warning(open_tmp):
    """Nobody with nowhere to write: False and one line on stderr, never a traceback."""
    tmp_path = open_tmp
    env = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "no.sock"),
        "DS01_EVENTS_FILE": str(tmp_path / "events.jsonl"),
        "DS01_EVENTS_SPOOL": str(tmp_path / "spool"),
        "HOME": "/",
    }
    code = "from ds01_events import log_event; print(log_event('a.b'), log_event('a.c'))"
    out = run_as_nobody(code, env)
    assert out.stdout.strip() == "False False"
    assert out.stderr.count("\n") == 1
    assert "not recorded" in out.stderr
    assert "Traceback" not in out.stderr


def test_queued_writer_delivers_its_last_event_at_exit(tmp_path):
    """A program that queues events and exits at once loses none of them."""
    events = tmp_path / "events.jsonl"
    code = "from ds01_events import EventWriter\nw = EventWriter()\nfor i in range(500): w.emit('test.queued', n=i)\n"
    env = {
        **os.environ,
        "DS01_EVENTS_SOCKET": str(tmp_path / "no.sock"),
        "DS01_EVENTS_FILE": str(events),
    }
    subprocess.run([sys.executable, "-c", code], env=env, timeout=30, check=True)
    assert sorted(
        json.loads(line)["details"]["n"] for line in events.read_text().splitlines()
    ) == list(range(500))
