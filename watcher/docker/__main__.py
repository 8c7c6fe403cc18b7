"""The Docker source alone, appending events to a file: for tests and use without the service.

``python -m watcher.docker --events-file F --state-dir D`` runs this.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from ds01_events.emit import append_line
from ds01_events.envelope import Event, encode_line
from watcher.docker.source import DockerSource
from watcher.log_tail import read_recent_events


def _say(message: str) -> None:
    sys.stderr.write(f"ds01-watcher docker: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the Docker source until SIGTERM/SIGINT; print a summary on stderr."""
    parser = argparse.ArgumentParser(prog="python -m watcher.docker")
    parser.add_argument("--events-file", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--docker-host", default=None)
    parser.add_argument(
        "--slow-submit",
        type=float,
        default=0.0,
        help="seconds each submit sleeps (tests that the reader never waits)",
    )
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=10.0,
        help="seconds between liveness pings while the stream is idle",
    )
    args = parser.parse_args(argv)
    events_file: Path = args.events_file
    slow: float = args.slow_submit

    def submit(event: Event) -> bool:
        if slow:
            time.sleep(slow)
        append_line(str(events_file), encode_line(event))
        return True

    source = DockerSource(
        submit,
        state_dir=args.state_dir,
        docker_host=args.docker_host,
        already_logged=read_recent_events(events_file),
        ping_interval_s=args.ping_interval,
        ping_timeout_s=min(5.0, args.ping_interval),
        say=_say,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    source.start()
    _say("running")
    done.wait()
    source.stop(30.0)
    _say(
        f"stopped: submitted={source.submitted} duplicates={source.duplicates}"
        f" gaps={source.gaps} submit_latency_ms={source.latency_summary()}"
        f" read_latency_ms={source.latency_summary(read=True)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
