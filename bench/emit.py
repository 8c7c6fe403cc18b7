#!/usr/bin/env python3
"""Per-call latency of log_event on each route and of the Bash log_event.

Side by side with the previous emitter (json.dumps + open/append/close; Bash
starting Python for every event), in one run:

    .venv/bin/python bench/emit.py [--calls 5000] [--bash-calls 200]

Prints p50/p99 per call and the ratio reference/ours (above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "bench")]

import reference_emitter  # noqa: E402

from ds01_events.cli_log import bash_library_path  # noqa: E402
from ds01_events.emit import Settings, record  # noqa: E402
from ds01_events.envelope import make_event  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def time_calls(call: object, calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        call(i)  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return samples


class Receiver:
    """A socket that drains datagrams as the watcher would, so senders never back up."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.sock.recv(8192)
                self.count += 1
            except TimeoutError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


BASH_LOOP = """
source {lib}
for ((i = 0; i < {calls}; i++)); do
  t0=$EPOCHREALTIME
  {call}
  t1=$EPOCHREALTIME
  echo "${{t0/./}} ${{t1/./}}"
done
"""


def bash_samples(call: str, calls: int, env: dict[str, str]) -> list[float]:
    script = BASH_LOOP.format(lib=shlex.quote(str(bash_library_path())), calls=calls, call=call)
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return [(int(b) - int(a)) / 1e6 for a, b in (line.split() for line in out.stdout.splitlines())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--bash-calls", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ds01-bench-"))
    sock_path, events, spool = tmp / "events.sock", tmp / "events.jsonl", tmp / "spool"
    rows: list[tuple[str, list[float], str]] = []

    ref_file = str(tmp / "reference.jsonl")
    ref = time_calls(
        lambda i: reference_emitter.log_event(ref_file, "bench.event", "alice", n=i, gpu="1.10"),
        args.calls,
    )
    rows.append(("reference: json.dumps + open/append/close", ref, ""))

    receiver = Receiver(sock_path)
    on_socket = Settings(socket_path=str(sock_path), events_file=str(events), spool_dir=str(spool))
    rows.append(
        (
            "log_event, socket route",
            time_calls(
                lambda i: record(
                    make_event("bench.event", user="alice", details={"n": i, "gpu": "1.10"}),
                    on_socket,
                ),
                args.calls,
            ),
            "reference",
        )
    )
    direct = Settings(
        socket_path=str(tmp / "absent.sock"), events_file=str(events), spool_dir=str(spool)
    )
    rows.append(
        (
            "log_event, direct append",
            time_calls(
                lambda i: record(
                    make_event("bench.event", user="alice", details={"n": i, "gpu": "1.10"}), direct
                ),
                args.calls,
            ),
            "reference",
        )
    )
    blocked = tmp / "not-a-file"
    blocked.mkdir()
    spooled = Settings(
        socket_path=str(tmp / "absent.sock"),
        events_file=str(blocked / "x" / "events.jsonl"),
        spool_dir=str(spool),
    )
    (blocked / "x").write_text("")  # the events path cannot exist: spool route
    rows.append(
        (
            "log_event, spool",
            time_calls(
                lambda i: record(
                    make_event("bench.event", user="alice", details={"n": i, "gpu": "1.10"}),
                    spooled,
                ),
                args.calls // 5,
            ),
            "reference",
        )
    )

    env = {
        **os.environ,
        "DS01_EVENTS_FILE": str(tmp / "bash.jsonl"),
        "DS01_EVENTS_SOCKET": str(sock_path),
        "DS01_EVENTS_SPOOL": str(spool),
    }
    prev = f"DS01_EVENTS_FILE={shlex.quote(ref_file)} {shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'bench' / 'reference_emitter.py'))} log bench.event alice n=$i gpu=1.10"
    bash_ref = bash_samples(prev, max(20, args.bash_calls // 4), env)
    rows.append(("reference Bash: starts python3 per event", bash_ref, ""))
    rows.append(
        (
            "Bash log_event, socket route (logger)",
            bash_samples("log_event bench.event alice '' n=$i gpu=1.10", args.bash_calls, env),
            "bash-reference",
        )
    )
    env_direct = {**env, "DS01_EVENTS_SOCKET": str(tmp / "absent.sock")}
    rows.append(
        (
            "Bash log_event, direct append",
            bash_samples(
                "log_event bench.event alice '' n=$i gpu=1.10", args.bash_calls, env_direct
            ),
            "bash-reference",
        )
    )
    receiver.close()

    ref_p50 = {"reference": percentiles(ref)[0], "bash-reference": percentiles(bash_ref)[0]}
    print(f"{'emitter':45} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10}")
    for name, samples, against in rows:
        p50, p99 = percentiles(samples)
        ratio = f"{ref_p50[against] / p50:9.1f}x" if against else "        -"
        print(f"{name:45} {len(samples):6d} {p50:8.3f} {p99:8.3f} {ratio:>10}")
    print(f"(ratio = reference p50 / p50; datagrams received: {receiver.count}; files in {tmp})")


if __name__ == "__main__":
    main()
