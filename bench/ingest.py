"""Ingest throughput: datagrams a second sustained into the file, side by side.

    python bench/ingest.py [--events 200000] [--senders 2]

Runs, one after the other on the same machine and the same pre-encoded lines:
  watcher   ds01-watcher (python -m watcher run): socket -> validate -> origin ->
            queue -> group commit (one fdatasync per batch)
  append    the no-watcher fallback: each sender appends each line itself
            (open O_APPEND, one write, close), no fsync at all
  fsync1    a minimal single-writer receiver that fdatasyncs every datagram
  logger    the Bash path: one logger(1) process per event, against python -c per event
and prints events/s and the ratios. The clock runs from the first send until the last
line is in the file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT)]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT)])}

from ds01_events.envelope import encode_line, make_event  # noqa: E402

SEND = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
lines = open(sys.argv[2], "rb").read().splitlines(keepends=True)
for line in lines:
    sock.sendto(line, sys.argv[1])
"""

APPEND = """
import os, sys
lines = open(sys.argv[2], "rb").read().splitlines(keepends=True)
flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
for line in lines:
    fd = os.open(sys.argv[1], flags, 0o640)
    os.write(fd, line)
    os.close(fd)
"""

FSYNC_EACH = """
import os, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
open(sys.argv[1] + ".ready", "w").close()
while True:
    data = sock.recv(8192)
    if data == b"STOP":
        break
    os.write(fd, data)
    os.fdatasync(fd)
"""


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def wait_lines(path: Path, want: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while count_lines(path) < want:
        if time.monotonic() > deadline:
            msg = f"{path}: only {count_lines(path)} of {want} lines after {timeout} s"
            raise SystemExit(msg)
        time.sleep(0.05)


def make_plans(work: Path, events: int, senders: int) -> list[Path]:
    plans = []
    for s in range(senders):
        plan = work / f"plan{s}"
        with plan.open("wb") as handle:
            for n in range(events // senders):
                event = make_event(
                    "bench.ingest",
                    user="alice",
                    source="bench",
                    details={"sender": s, "n": n, "container": "train-job._.1001"},
                )
                handle.write(encode_line(event))
        plans.append(plan)
    return plans


def blast(script: str, target: str, plans: list[Path]) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", script, target, str(p)]) for p in plans]
    for proc in procs:
        if proc.wait() != 0:
            msg = "a sender failed"
            raise SystemExit(msg)


def bench_watcher(work: Path, plans: list[Path], total: int) -> float:
    config = work / "watcher.toml"
    config.write_text("rate_per_second = 1e9\nrate_burst = 1e9\n")
    log, sock = work / "w" / "events.jsonl", work / "w.sock"
    cmd = [
        sys.executable,
        "-m",
        "watcher",
        "run",
        "--config",
        str(config),
        "--events-file",
        str(log),
        "--socket",
        str(sock),
        "--spool-dir",
        str(work / "spool"),
        "--state-dir",
        str(work / "state"),
    ]
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.DEVNULL)
    try:
        wait_lines(log, 1, 30)  # watcher.start
        start = time.perf_counter()
        blast(SEND, str(sock), plans)
        wait_lines(log, total + 1)
        elapsed = time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return total / elapsed


def bench_append(work: Path, plans: list[Path], total: int) -> float:
    log = work / "append.jsonl"
    start = time.perf_counter()
    blast(APPEND, str(log), plans)
    elapsed = time.perf_counter() - start
    if count_lines(log) != total:
        msg = "append lost lines"
        raise SystemExit(msg)
    return total / elapsed


def bench_fsync_each(work: Path, plans: list[Path], total: int) -> float:
    log, sock = work / "fsync1.jsonl", work / "f.sock"
    proc = subprocess.Popen([sys.executable, "-c", FSYNC_EACH, str(sock), str(log)])
    try:
        while not Path(str(sock) + ".ready").exists():
            time.sleep(0.01)
        start = time.perf_counter()
        blast(SEND, str(sock), plans)
        wait_lines(log, total)
        elapsed = time.perf_counter() - start
    finally:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.sendto(b"STOP", str(sock))
        proc.wait(30)
    return total / elapsed


def _discard(sock: socket.socket) -> None:
    try:
        while sock.recv(8192):
            pass
    except OSError:
        return


def bench_spawn(work: Path, count: int) -> tuple[float, float]:
    """Events/s when every event starts a process: logger(1) vs python -c (the Bash path)."""
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(work / "spawn.sock")
    sink.bind(path)
    sink.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    # Unix datagram queues hold net.unix.max_dgram_qlen (often 10) datagrams: keep reading.
    reader = threading.Thread(target=lambda: _discard(sink), daemon=True)
    reader.start()
    line = encode_line(make_event("bench.spawn")).decode().rstrip("\n")
    start = time.perf_counter()
    for _ in range(count):
        cmd = ["logger", "-d", "-u", path, "--rfc3164", "--size", "4096", line]
        subprocess.run(cmd, check=True)
    logger_rate = count / (time.perf_counter() - start)
    code = (
        "import socket, sys; from ds01_events.envelope import encode_line, make_event;"
        " socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto("
        "encode_line(make_event('bench.spawn')), sys.argv[1])"
    )
    start = time.perf_counter()
    for _ in range(count // 4):
        subprocess.run([sys.executable, "-c", code, path], check=True, env=ENV)
    python_rate = (count // 4) / (time.perf_counter() - start)
    sink.close()
    return logger_rate, python_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--spawn", type=int, default=200, help="events for the spawn comparison")
    parser.add_argument("--dir", help="work directory (default: a new one under /tmp)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="ds01-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        plans = make_plans(work, args.events, args.senders)
        total = (args.events // args.senders) * args.senders
        qlen = Path("/proc/sys/net/unix/max_dgram_qlen").read_text().strip()
        print(
            f"{total} datagrams from {args.senders} senders, {os.cpu_count()} CPUs,"
            f" max_dgram_qlen {qlen}, {work}"
        )
        watcher = bench_watcher(work, plans, total)
        print(f"watcher (validate, origin, group commit): {watcher:10.0f} events/s")
        append = bench_append(work, plans, total)
        print(f"append  (each sender O_APPEND, no fsync): {append:10.0f} events/s")
        fsync1 = bench_fsync_each(work, plans, total)
        print(f"fsync1  (one writer, fdatasync each)    : {fsync1:10.0f} events/s")
        print(
            f"ratios: watcher/append = {watcher / append:.2f},"
            f" watcher/fsync1 = {watcher / fsync1:.2f}"
        )
        print(f"target 20000 events/s: {'met' if watcher >= 20_000 else 'NOT met'}")
        if args.spawn and shutil.which("logger"):
            logger_rate, python_rate = bench_spawn(work, args.spawn)
            print(
                f"one process per event: logger {logger_rate:.0f}/s, python -c {python_rate:.0f}/s,"
                f" ratio {logger_rate / python_rate:.1f}"
            )
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
