"""Docker event to submit latency of the Docker source during a burst of container lifecycles.

Usage: python bench/docker_burst.py [COUNT] [WORKERS]
Runs the standalone source (python -m watcher.docker_source) against the default
dockerd and prints its summary line (submitted, duplicates, latency in ms) plus the
source's CPU time and peak RSS.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

IMAGE = "ds01-test/busybox:latest"


def lifecycle(client: docker.DockerClient, run: str) -> str:
    c = client.containers.create(
        IMAGE, ["sleep", "30"], network_mode="none", labels={"ds01.test": "1", "ds01.test.run": run}
    )
    c.start()
    c.stop(timeout=0)
    c.remove()
    return str(c.id)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    client = docker.from_env()
    run = str(time.time_ns())
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        state = Path(tmp) / "state"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "watcher.docker_source",
                "--events-file",
                str(events),
                "--state-dir",
                str(state),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        while not (state / "docker-cursor.json").exists():
            time.sleep(0.05)
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            ids = set(pool.map(lambda _: lifecycle(client, run), range(count)))
        burst_s = time.monotonic() - started
        while True:
            lines = events.read_text().splitlines() if events.exists() else []
            removed = {
                json.loads(x)["details"].get("container_id")
                for x in lines
                if '"container.remove"' in x
            }
            if ids <= removed:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(60)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{count} lifecycles in {burst_s:.1f} s with {workers} workers")
    print(err.strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    print(f"source CPU {cpu:.2f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
