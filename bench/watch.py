#!/usr/bin/env python3
"""Docker event to line on disk, during a burst of container lifecycles.

Runs the watcher (``python -m watcher run``) on a scratch directory beside the
reference, ``docker events --format '{{json .}}' >> file`` (the plain CLI
subscription, which does no inspection, attribution or fsync), creates, starts,
stops and removes N busybox containers as fast as the engine allows, and reports
for each: the p50/p99 delay from the engine's event time to the line being
readable in the file, and the watcher's CPU time and peak RSS; then checks that
each of the burst's create/start/stop/remove events is in the watcher's log once.

    .venv/bin/python bench/watch.py [--containers 200] [--parallel 8] [--keep]

Needs a running dockerd and the test image (scripts/ensure-docker).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("DS01_TEST_IMAGE", "ds01-test/busybox:latest")
ACTIONS = {
    "create": "container.create",
    "start": "container.start",
    "die": "container.stop",
    "destroy": "container.remove",
}


class Tail:
    """Polls a file every few ms and notes when each line first became readable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.path.exists() and not self._stop.is_set():
            time.sleep(0.002)
        with self.path.open("rb") as handle:
            pending = b""
            while not self._stop.is_set():
                chunk = handle.read()
                now = time.time()
                if not chunk:
                    time.sleep(0.002)
                    continue
                *whole, pending = (pending + chunk).split(b"\n")
                self.lines.extend((now, line) for line in whole)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def lifecycle(client: docker.DockerClient, run: str, index: int) -> None:
    container = client.containers.create(
        IMAGE,
        ["true"],
        name=f"ds01-bench-{run}-{index}",
        network_mode="none",
        labels={"ds01.test": "1", "ds01.bench.run": run, "ds01.user": "bench"},
    )
    container.start()
    container.wait(timeout=60)
    container.remove(force=True)


def remove_leftovers(client: docker.DockerClient, run: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"ds01.bench.run={run}"}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def delays_ms(
    lines: list[tuple[float, bytes]], engine_times: dict[tuple[str, str], float], *, reference: bool
) -> list[float]:
    out = []
    for seen, raw in lines:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if reference:
            key = (obj.get("id", ""), obj.get("status") or obj.get("Action", ""))
        else:
            action = next((a for a, t in ACTIONS.items() if t == obj.get("event_type")), None)
            key = (obj.get("details", {}).get("container_id", ""), action or "")
        if key in engine_times:
            out.append((seen - engine_times[key]) * 1000)
    return out


def p99(delays: list[float]) -> float:
    ordered = sorted(delays)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def summary(name: str, delays: list[float], expected: int) -> str:
    if not delays:
        return f"{name:44} no events matched"
    median = statistics.median(delays)
    return f"{name:44} {len(delays):5d}/{expected:<5d} {median:8.1f} {p99(delays):8.1f}"


def report(
    containers: int,
    parallel: int,
    burst: float,
    tails: tuple[Tail, Tail],
    engine_times: dict[tuple[str, str], float],
) -> None:
    expected = 4 * containers
    print(
        f"{containers} container lifecycles in {burst:.1f} s ({expected / burst:.0f} events/s)"
        f", {parallel} in parallel"
    )
    print(f"{'engine event -> line readable in file':44} {'lines':>11} {'p50 ms':>8} {'p99 ms':>8}")
    ours = delays_ms(tails[0].lines, engine_times, reference=False)
    ref = delays_ms(tails[1].lines, engine_times, reference=True)
    print(summary("ds01-watcher (inspect, attribution, fsync)", ours, expected))
    print(summary("reference: docker events >> file", ref, expected))
    if ours and ref:
        print(f"p99 ratio watcher/reference: {p99(ours) / p99(ref):.1f}")
    missing, duplicated = exactly_once(tails[0].lines, {cid for cid, _ in engine_times})
    print(f"watcher log: {missing} lifecycle events missing, {duplicated} duplicated")


def exactly_once(lines: list[tuple[float, bytes]], ids: set[str]) -> tuple[int, int]:
    """Return (missing, duplicated) create/start/stop/remove events of these containers."""
    counts: Counter[tuple[str, str]] = Counter()
    for _, raw in lines:
        obj = json.loads(raw)
        cid = obj.get("details", {}).get("container_id")
        if cid in ids and obj["event_type"] in ACTIONS.values():
            counts[(cid, obj["event_type"])] += 1
    missing = sum(1 for cid in ids for t in ACTIONS.values() if counts[(cid, t)] == 0)
    return missing, sum(n - 1 for n in counts.values() if n > 1)


def start_watcher(tmp: Path, events: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'lib'}:{ROOT}"}
    command = [sys.executable, "-m", "watcher", "run", "--config", os.devnull]
    command += ["--events-file", str(events), "--state-dir", str(tmp / "state")]
    command += ["--socket", str(tmp / "events.sock"), "--spool-dir", str(tmp / "spool")]
    command += ["--gpu", "off", "--dcgm-url", "off"]
    with (tmp / "watcher.log").open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    client = docker.from_env()
    run = uuid.uuid4().hex[:12]
    tmp = Path(tempfile.mkdtemp(prefix="ds01-bench-watch-"))
    events = tmp / "events.jsonl"
    reference_file = tmp / "reference.jsonl"
    watcher = start_watcher(tmp, events)
    with reference_file.open("wb") as out:
        reference = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--format", "{{json .}}"],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    tails = (Tail(events), Tail(reference_file))
    # The bench's own subscription gives the engine's time of each of its containers'
    # events; other containers on a shared engine are left out of the numbers.
    engine_times: dict[tuple[str, str], float] = {}
    stop = threading.Event()

    def collect() -> None:
        stream = client.events(
            decode=True,
            since=int(time.time()) - 1,
            filters={"type": "container", "label": f"ds01.bench.run={run}"},
        )
        for event in stream:
            engine_times[(event.get("id", ""), event.get("Action", ""))] = event["timeNano"] / 1e9
            if stop.is_set():
                return

    threading.Thread(target=collect, daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while not any(b"watcher.start" in line for _, line in tails[0].lines):
            if time.monotonic() > deadline or watcher.poll() is not None:
                print((tmp / "watcher.log").read_text(), file=sys.stderr)
                print("the watcher did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)
        time.sleep(1)  # the Docker source connects after watcher.start
        cpu_before = cpu_seconds(watcher.pid)
        started = time.monotonic()
        with ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(lambda i: lifecycle(client, run, i), range(args.containers)))
        burst = time.monotonic() - started
        time.sleep(2)  # let the last events reach both files
        stop.set()
        cpu = cpu_seconds(watcher.pid) - cpu_before
        rss = peak_rss_mb(watcher.pid)
    finally:
        for proc in (watcher, reference):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        watcher.wait(30)
        reference.wait(30)
        for tail in tails:
            tail.stop()
        remove_leftovers(client, run)
    report(args.containers, args.parallel, burst, tails, engine_times)
    print(f"watcher CPU during the burst: {cpu:.2f} s; peak RSS: {rss:.1f} MB")
    if args.keep:
        print(f"(files in {tmp})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
