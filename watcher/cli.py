"""``ds01-watcher``: a thin shell around `load_settings` and `run_service`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import msgspec

from watcher import __version__
from watcher.config import ConfigError, load_settings

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
    ("--dcgm-url", "dcgm_url", "DCGM exporter metrics URL, or off"),
)


def build_parser() -> argparse.ArgumentParser:
    """Build the command line: ``run``, ``show-config`` and ``gpus``, taking the settings flags."""
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
    for sub in (run, show, gpus):
        for flag, dest, text in _FLAGS:
            choices = ("auto", "off") if dest == "gpu" else None
            sub.add_argument(flag, dest=dest, help=text, choices=choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
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
    from watcher.service import run_service  # noqa: PLC0415 - keeps --help fast

    return run_service(settings)
