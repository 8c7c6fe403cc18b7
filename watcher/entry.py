"""The ``ds01-watcher`` command's first code: signals are noted before anything slow runs.

Importing the service (msgspec, APScheduler, docker-py) takes long enough that a
SIGHUP sent right after the start (``systemctl reload`` racing a start) used to end
the process with its default action. So ``run`` routes the signals to an inbox
first, then imports the rest. A stuck thread must not hold the exit either: once
``run`` has stopped and flushed the log, the process ends.
"""

from __future__ import annotations

import os
import sys

from watcher import signals


def main() -> int:
    """Entry point of ``ds01-watcher`` and ``python -m watcher``; returns the exit status."""
    running = "run" in sys.argv[1:]
    if running:
        signals.install_early()
    import contextlib  # noqa: PLC0415 - after the signals are routed, like the rest

    from watcher.cli import main as cli_main  # noqa: PLC0415 - after the signals are routed

    status = cli_main()
    if running:
        # The log is flushed and synced by now; a hung job's thread must not keep the
        # process (the interpreter would wait for it at exit).
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)
    return status
