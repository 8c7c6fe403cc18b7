"""The ingest socket of a real watcher process: many senders, two uids, logger(1), LISTEN_FDS."""

from __future__ import annotations

import array
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from watcher_support import Watcher, needs_root, read_events, wait_for

from ds01_events.envelope import Origin, encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.integration, needs_root]

NOBODY = 65534
# Reads "<hex>\n" lines and sends each as one datagram (blocking: nothing dropped by us).
SENDER = """
import socket, sys, os
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
with open(sys.argv[2]) as f:
    for line in f:
        sock.sendto(bytes.fromhex(line.strip()), sys.argv[1])
print(os.getpid())
"""


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """Yield a directory any uid can traverse (pytest's tmp dirs are 0700)."""
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="ds01-ingest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(root: Path, text: str) -> list[str]:
    path = root / "watcher.toml"
    path.write_text(text)
    return ["--config", str(path)]


def _as_nobody() -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _mixed_datagrams(
    rng: random.Random, sender: int, bad: Counter[str]
) -> tuple[list[bytes], list[str]]:
    """2,500 datagrams: 75% valid (a fifth of them forging origin), the rest bad; ids of valid."""
    lines, valid = [], []
    for n in range(2500):
        roll = rng.random()
        if roll < 0.10:
            lines.append(b"\xff" + os.urandom(rng.randint(0, 300)))
            bad["binary"] += 1
        elif roll < 0.15:
            lines.append(b'{"event_type": "test.half"')
            bad["invalid"] += 1
        elif roll < 0.20:
            lines.append(encode_line(make_event("test.big")).rstrip() + b" " * 5000)
            bad["oversize"] += 1
        else:
            event = make_event("test.flood", user="claimed", details={"s": sender, "n": n})
            if roll < 0.25:  # a forged origin claim: must be replaced by the kernel's
                event.origin = Origin(uid=0, gid=0, pid=1)
            lines.append(encode_line(event))
            valid.append(event.id)
    return lines, valid


def _rejections(events: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    counts: Counter[str] = Counter()
    uids: Counter[str] = Counter()
    for event in events:
        if event["event_type"] == "ingest.rejected":
            counts.update(event["details"]["counts"])
            uids.update(event["details"]["uids"])
    return counts, uids


def test_ten_thousand_datagrams_from_four_processes(
    make_watcher: Callable[..., Watcher], open_dir: Path
) -> None:
    """10,000 mixed datagrams from 4 senders and 2 uids: valid once with origin, bad counted."""
    watcher = make_watcher(
        open_dir, extra=_config(open_dir, "rate_per_second = 1e9\nrate_burst = 1e9\n")
    )
    watcher.start()
    rng = random.Random(4)
    expected_bad: Counter[str] = Counter()
    procs, expected_valid = [], []
    for sender in range(4):
        lines, valid = _mixed_datagrams(rng, sender, expected_bad)
        expected_valid.append(valid)
        plan = open_dir / f"plan{sender}"
        plan.write_text("".join(line.hex() + "\n" for line in lines))
        plan.chmod(0o644)
        prefix = _as_nobody() if sender == 3 else []
        cmd = [*prefix, sys.executable, "-c", SENDER, str(watcher.socket), str(plan)]
        procs.append(cmd)
    running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for cmd in procs]
    pids = [int(proc.communicate(timeout=120)[0]) for proc in running]
    assert all(proc.returncode == 0 for proc in running)

    last = watcher.send_event("test.after_the_storm")
    assert wait_for(lambda: watcher.logged(last), 60)
    assert watcher.proc is not None
    assert watcher.proc.poll() is None, "the service died under the storm"
    assert watcher.stop() == 0

    events = read_events(watcher.events_file)
    by_id = Counter(e["id"] for e in events)
    logged = {e["id"]: e for e in events}
    for sender, valid in enumerate(expected_valid):
        for event_id in valid:
            assert by_id[event_id] == 1, f"event {event_id} logged {by_id[event_id]} times"
            assert logged[event_id]["origin"]["uid"] == (NOBODY if sender == 3 else 0)
            assert logged[event_id]["origin"]["pid"] == pids[sender]
            assert logged[event_id]["user"] == "claimed"
    floods = sum(e["event_type"] == "test.flood" for e in events)
    assert floods == sum(len(v) for v in expected_valid)
    counts, uids = _rejections(events)
    assert counts == expected_bad
    assert uids[str(NOBODY)] > 0
    assert sum(uids.values()) == sum(expected_bad.values())


def test_rate_limit_is_per_uid_and_counted(
    make_watcher: Callable[..., Watcher], open_dir: Path
) -> None:
    """A uid over its bucket has the excess counted as rate_limited; root is exempt."""
    watcher = make_watcher(
        open_dir, extra=_config(open_dir, "rate_per_second = 0.001\nrate_burst = 5\n")
    )
    watcher.start()
    plan = open_dir / "plan"
    plan.write_text("".join(encode_line(make_event("test.rl")).hex() + "\n" for _ in range(20)))
    plan.chmod(0o644)
    cmd = [*_as_nobody(), sys.executable, "-c", SENDER, str(watcher.socket), str(plan)]
    subprocess.run(cmd, check=True, capture_output=True)
    for _ in range(20):
        watcher.send_event("test.root")
    assert watcher.stop() == 0
    events = read_events(watcher.events_file)
    assert sum(e["event_type"] == "test.rl" for e in events) == 5
    assert sum(e["event_type"] == "test.root" for e in events) == 20
    reports = [e["details"] for e in events if e["event_type"] == "ingest.rejected"]
    assert sum(r["counts"].get("rate_limited", 0) for r in reports) == 15
    assert sum(r["uids"].get(str(NOBODY), 0) for r in reports) == 15


def test_logger_framed_datagrams_are_accepted(
    make_watcher: Callable[..., Watcher], open_dir: Path
) -> None:
    """Real logger(1) output (RFC 3164, local and RFC 5424 headers) is logged with origin."""
    watcher = make_watcher(open_dir).start()
    ids = []
    for fmt in (["--rfc3164"], [], ["--rfc5424"]):
        event = make_event("test.bash", user="alice")
        ids.append(event.id)
        line = encode_line(event).decode().rstrip("\n")
        subprocess.run(
            ["logger", "-d", "-u", str(watcher.socket), *fmt, "-t", "ds01", "--size", "4096", line],
            check=True,
        )
    nobody_event = make_event("test.bash_nobody")
    subprocess.run(
        [
            *_as_nobody(),
            "logger",
            "-d",
            "-u",
            str(watcher.socket),
            "--rfc3164",
            encode_line(nobody_event).decode().rstrip("\n"),
        ],
        check=True,
    )
    assert wait_for(lambda: all(watcher.logged(i) for i in [*ids, nobody_event.id]))
    assert watcher.stop() == 0
    logged = {e["id"]: e for e in read_events(watcher.events_file)}
    for event_id in ids:
        assert logged[event_id]["origin"]["uid"] == 0
        assert logged[event_id]["origin"]["pid"] > 0
        assert logged[event_id]["user"] == "alice"
    assert logged[nobody_event.id]["origin"]["uid"] == NOBODY


def test_socket_is_0666_and_a_stale_one_is_replaced(
    make_watcher: Callable[..., Watcher], open_dir: Path
) -> None:
    """A leftover socket file is replaced; the new socket is 0666; a live one is not stolen."""
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(open_dir / "events.sock"))
    stale.close()  # the file stays, nobody listens: what a crash leaves
    watcher = make_watcher(open_dir).start()
    assert (watcher.socket.stat().st_mode & 0o777) == 0o666
    second = make_watcher(open_dir / "second")
    second.socket = watcher.socket
    with second.stderr_path.open("wb") as err:
        rc = subprocess.run(second.command(), stderr=err, check=False, timeout=60).returncode
    assert rc == 1
    assert "another process is serving" in second.stderr()
    event_id = watcher.send_event("test.still_mine")
    assert wait_for(lambda: watcher.logged(event_id))


ACTIVATE = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def test_socket_activation_uses_the_passed_socket(
    make_watcher: Callable[..., Watcher], open_dir: Path
) -> None:
    """With LISTEN_FDS it serves systemd's fd 3, including datagrams queued before it started."""
    watcher = make_watcher(open_dir)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(watcher.socket))
    early = watcher.send_event("test.queued_before_start")
    inode = watcher.socket.stat().st_ino
    args = [sys.executable, "-c", ACTIVATE, str(listener.fileno()), *watcher.command()[1:]]
    watcher.start(args=args, pass_fds=[listener.fileno()])
    listener.close()
    late = watcher.send_event("test.after_start")
    assert wait_for(lambda: watcher.logged(early) and watcher.logged(late))
    assert watcher.socket.stat().st_ino == inode  # not unlinked and re-bound
    assert watcher.stop() == 0
    start = next(e for e in read_events(watcher.events_file) if e["event_type"] == "watcher.start")
    assert start["details"]["socket_activated"] is True
    assert "socket activation" in watcher.stderr()


def test_passed_file_descriptors_do_not_leak(
    make_watcher: Callable[..., Watcher], open_dir: Path, tmp_path: Path
) -> None:
    """Datagrams carrying SCM_RIGHTS fds are still handled and leave no fd open in the watcher."""
    watcher = make_watcher(open_dir).start()
    assert watcher.proc is not None
    fd_dir = Path(f"/proc/{watcher.proc.pid}/fd")
    marker = tmp_path / "passed-fd-marker"
    marker.write_bytes(b"")

    def held() -> int:
        """How many of the watcher's fds are copies of ours (its own fds come and go)."""
        count = 0
        for fd in fd_dir.iterdir():
            try:
                count += fd.readlink() == marker
            except FileNotFoundError:  # closed while we looked
                continue
        return count

    ids = []
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        marker.open("rb") as passed,
    ):
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [passed.fileno()] * 4))]
        for _ in range(50):
            event = make_event("test.with_fds")
            ids.append(event.id)
            sock.sendmsg([encode_line(event)], rights, 0, str(watcher.socket))
    assert wait_for(lambda: all(watcher.logged(i) for i in ids))
    assert held() == 0


def test_socket_activation_refuses_a_stream_socket(
    make_watcher: Callable[..., Watcher], open_dir: Path
) -> None:
    """A LISTEN_FDS socket of the wrong type is refused with one clear line and exit 1."""
    watcher = make_watcher(open_dir)
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(str(watcher.socket))
    args = [sys.executable, "-c", ACTIVATE, str(stream.fileno()), *watcher.command()[1:]]
    with watcher.stderr_path.open("wb") as err:
        result = subprocess.run(
            args, pass_fds=[stream.fileno()], stderr=err, check=False, timeout=60
        )
    stream.close()
    assert result.returncode == 1
    assert "no datagram socket" in watcher.stderr()
