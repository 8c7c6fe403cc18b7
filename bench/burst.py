"""What burst the ingest socket holds while one user floods it, per kernel queue length.

For each ``net.unix.max_dgram_qlen`` given, starts a watcher (its socket created
after the value is set, as the socket unit's would be), one flooding user (nobody:
non-blocking sends as fast as it can, which the per-uid limit drops), and N
senders (half root, half the ``daemon`` user) each recording M events with the
library's `record` as fast as it returns. Reports, per queue length, how the
senders' events went (socket, spool after the retry, not recorded) and how many
are missing from the log once the spool has drained.

Needs root and a network namespace of its own, so the queue length it sets is
nobody else's:

    unshare --net .venv/bin/python bench/burst.py --qlen 10,512,4096
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QLEN = Path("/proc/sys/net/unix/max_dgram_qlen")

SENDER = """
import json, sys
from ds01_events.emit import Settings, record
from ds01_events.envelope import make_event
settings = Settings.from_env()
routes = {}
for n in range(int(sys.argv[2])):
    event = make_event("bench.burst", details={"sender": sys.argv[1], "n": n})
    outcome = record(event, settings)
    key = outcome.route if outcome.recorded else "none"
    routes[key] = routes.get(key, 0) + 1
print(json.dumps(routes))
"""

FLOOD = """
import socket, sys, time
line = b'{"timestamp":"2026-01-01T00:00:00.000000Z","event_type":"bench.flood",' \\
    b'"schema_version":"1","host":"h","id":"' + b"0" * 32 + b'"}'
# One socket holds at most its send buffer (about 278 short datagrams) in the queue;
# a fresh socket per datagram, as log_event uses, can fill the whole queue.
fresh = sys.argv[3] == "fresh"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
end = time.monotonic() + float(sys.argv[2])
sent = refused = 0
while time.monotonic() < end:
    if fresh:
        sock.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    try:
        sock.sendto(line, sys.argv[1])
        sent += 1
    except BlockingIOError:
        refused += 1
print(sent, refused)
"""


def _as(user: str, argv: list[str]) -> list[str]:
    if user == "root":
        return argv
    group = "nogroup" if user == "nobody" else user
    return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", *argv]


def one_round(
    qlen: int, senders: int, events: int, flood_seconds: float, flood_sockets: str
) -> dict[str, object]:
    """Run one watcher at ``qlen``; return the senders' routes and the losses."""
    QLEN.write_text(f"{qlen}\n")
    base = Path(tempfile.mkdtemp(prefix="ds01-burst-"))
    base.chmod(0o755)
    paths = {
        "events": base / "log" / "events.jsonl",
        "socket": base / "events.sock",
        "spool": base / "spool",
    }
    paths["spool"].mkdir(mode=0o1733)
    paths["spool"].chmod(0o1733)
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'lib'}:{ROOT}",
        "DS01_EVENTS_SOCKET": str(paths["socket"]),
        "DS01_EVENTS_FILE": str(paths["events"]),
        "DS01_EVENTS_SPOOL": str(paths["spool"]),
        "HOME": "/",
    }
    watcher = subprocess.Popen(
        [
            sys.executable, "-m", "watcher", "run", "--config", "/dev/null",
            "--events-file", str(paths["events"]), "--socket", str(paths["socket"]),
            "--spool-dir", str(paths["spool"]), "--state-dir", str(base / "state"),
            "--gpu", "off", "--dcgm-url", "off", "--docker-host", f"unix://{base}/none.sock",
        ],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not paths["events"].exists() or b"watcher.start" not in paths["events"].read_bytes():
            time.sleep(0.05)
        flood = subprocess.Popen(
            _as("nobody", ["/usr/bin/python3", "-c", FLOOD, str(paths["socket"]), str(flood_seconds), flood_sockets]),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.5)  # the flood is on
        procs = [
            subprocess.Popen(
                _as(
                    "root" if i % 2 == 0 else "daemon",
                    [sys.executable, "-c", SENDER, str(i), str(events)],
                ),
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(senders)
        ]
        routes: dict[str, int] = {}
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            for key, value in json.loads(out).items():
                routes[key] = routes.get(key, 0) + value
        flood_out, _ = flood.communicate(timeout=300)
        time.sleep(5.0)  # two spool intervals and then some
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(60)
        data = paths["events"].read_bytes()
        shutil.rmtree(base, ignore_errors=True)
    logged = data.count(b'"bench.burst"')
    limited: dict[str, int] = {}
    for line in data.splitlines():
        if b'"ingest.rejected"' in line:
            for uid, count in json.loads(line)["details"]["uids"].items():
                limited[uid] = limited.get(uid, 0) + count
    flood_sent, flood_refused = (int(x) for x in flood_out.split())
    return {
        "qlen": qlen,
        "flood_sockets": flood_sockets,
        "sent": senders * events,
        "routes": routes,
        "missing_from_log": senders * events - logged,
        "rejected_per_uid": limited,
        "flood_sent": flood_sent,
        "flood_refused_by_kernel": flood_refused,
    }


def main() -> int:
    """Run every round and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qlen", default="10,512,4096")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--flood-seconds", type=float, default=0.0, help="default: until done")
    parser.add_argument(
        "--flood-sockets",
        choices=("one", "fresh"),
        default="fresh",
        help="the flooder sends from one socket, or a fresh one per datagram (fills the queue)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("burst: needs root (other users, the queue length)\n")
        return 2
    original = QLEN.read_text()
    try:
        for qlen in (int(q) for q in args.qlen.split(",")):
            seconds = args.flood_seconds or max(5.0, args.events * args.senders / 2000)
            result = one_round(qlen, args.senders, args.events, seconds, args.flood_sockets)
            print(json.dumps(result), flush=True)
    finally:
        QLEN.write_text(original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
