"""``ds01-watcher``: a thin shell around `load_settings` and `run_service`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from watcher import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence


_FLAGS = (
    ("--config", "config", "settings file (default /etc/ds01/watcher.toml)"),
    ("--events-file", "events_file", "the event log (default /var/log/ds01/events.jsonl)"),
    ("--state-dir", "state_dir", "where state such as the Docker cursor is kept"),
    ("--socket", "socket", "the ingest socket (default /run/ds01/events.sock)"),
    ("--spool-dir", "spool_dir", "the spool directory (default /var/spool/ds01/events)"),
    ("--docker-host", "docker_host", "Docker engine URL (default unix:///var/run/docker.sock)"),
    ("--gpu", "gpu", "GPU polling: auto or off"),
    ("--gpu-interval", "gpu_interval_seconds", "seconds between GPU polls (default 30)"),
    ("--gpu-timeout", "gpu_timeout_seconds", "seconds an NVML poll may take (default 10)"),
    ("--inventory-file", "inventory_file", "the workload inventory (default in the state dir)"),
    ("--metrics-port", "metrics_port", "serve Prometheus /metrics on 127.0.0.1:PORT (default off)"),
    ("--dcgm-url", "dcgm_url", "DCGM exporter metrics URL, or off"),
    ("--dcgm-interval", "dcgm_interval", "seconds between exporter probes (default 30)"),
    ("--dcgm-timeout", "dcgm_timeout", "seconds for a whole exporter answer (default 10)"),
    (
        "--dcgm-collect-interval",
        "dcgm_collect_interval",
        "the exporter's collect interval in seconds (default 30)",
    ),
    ("--dcgm-slow", "dcgm_slow", "an answer slower than this many seconds is slow (default 5)"),
    ("--dcgm-hung-after", "dcgm_hung_after", "failed probes in a row that mean hung (default 3)"),
    ("--dcgm-unit", "dcgm_unit", "systemd unit of the exporter (ds01-dcgm-exporter.service)"),
    ("--dcgm-container", "dcgm_container", "exporter container without the unit"),
    ("--dcgm-restarts-per-hour", "dcgm_restarts_per_hour", "restart cap per hour (default 4)"),
    ("--dcgm-grace", "dcgm_grace", "seconds to let a restarted exporter come up (default 60)"),
    ("--dcgm-backoff-max", "dcgm_backoff_max", "longest wait between restarts (default 1800)"),
    ("--dcgm-stable", "dcgm_stable", "healthy seconds that reset the backoff (default 600)"),
    ("--dcgm-stop-timeout", "dcgm_stop_timeout", "graceful stop before a kill (default 20)"),
)


def build_parser() -> argparse.ArgumentParser:
    """Build the command line: run, show-config, gpus, doctor and the installer's commands."""
    parser = argparse.ArgumentParser(
        prog="ds01-watcher",
        description="The ds01 audit trail's service: the single writer of the event log.",
    )
    parser.add_argument("--version", action="version", version=f"ds01-watcher {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the service until SIGTERM/SIGINT")
    show = commands.add_parser("show-config", help="print the settings run would use, as JSON")
    gpus = commands.add_parser(
        "gpus",
        help="who holds each GPU and MIG device now (instead of nvidia-smi); no watcher needed",
    )
    gpus.add_argument("--json", action="store_true", help="print JSON for scripts")
    doctor = commands.add_parser(
        "doctor", help="check the installation's health, each with its fix"
    )
    doctor.add_argument("--json", action="store_true", help="the checks as JSON")
    doctor.add_argument(
        "--logrotate-config", help="the logrotate file to check (default /etc/logrotate.d/ds01)"
    )
    from watcher.install.command import add_parsers  # noqa: PLC0415 - keeps --help fast

    add_parsers(commands)
    for sub in (run, show, gpus, doctor):
        for flag, dest, text in _FLAGS:
            choices = ("auto", "off") if dest == "gpu" else None
            sub.add_argument(flag, dest=dest, help=text, choices=choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "handler"):  # install, uninstall: no watcher settings needed
        status: int = args.handler(args)
        return status
    # Imported here: `install` runs from a checkout on the bare system python3.
    import msgspec  # noqa: PLC0415

    from watcher.config import ConfigError, load_settings  # noqa: PLC0415

    flags = {dest: getattr(args, dest) for _flag, dest, _text in _FLAGS}
    try:
        settings, notes = load_settings(flags)
    except ConfigError as exc:
        sys.stderr.write(f"ds01-watcher: {exc}\n")
        return 2
    for note in notes:
        sys.stderr.write(f"ds01-watcher: {note}\n")
    if args.command == "show-config":
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(settings)).decode() + "\n")
        return 0
    if args.command == "gpus":
        from watcher.gpu.command import show_gpus  # noqa: PLC0415 - keeps --help fast

        return show_gpus(settings, as_json=args.json)
    if args.command == "doctor":
        from watcher.doctor.gather import run_doctor  # noqa: PLC0415

        return run_doctor(settings, as_json=args.json, logrotate_config=args.logrotate_config)
    from watcher.service import run_service  # noqa: PLC0415 - keeps --help fast

    return run_service(settings)
