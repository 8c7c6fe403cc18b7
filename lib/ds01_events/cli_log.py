"""``ds01-log``: record one event from the command line.

Usage: ``ds01-log [--quiet] TYPE [user=U] [source=S] [key=value ...] [key:=JSON ...]``

Values stay strings unless given with ``:=`` (a slot ``1.10`` or a user ``248835``
must never turn into numbers). Exit 0 when recorded, 1 when no route took the
event, 2 for bad arguments. Parsed by hand: this runs once per event from scripts,
and argument-parsing frameworks cost more to import than the whole job.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from ds01_events.emit import record
from ds01_events.envelope import InvalidEvent, make_event

USAGE = """\
usage: ds01-log [--quiet] TYPE [user=U] [source=S] [key=value ...] [key:=JSON ...]
       ds01-log --bash-path

Record one audit event (see `ds01-events types` for the catalogue).
  TYPE         category.action, e.g. maintenance.cleanup
  user=U       the user the event is about (kept as text)
  source=S     who reports it (default: the calling program's name)
  key=value    a detail, always a string
  key:=JSON    a detail with a JSON value: n:=3, ok:=true, gpus:='["0","1"]'
  --quiet      no message on failure (the exit status still tells)
  --bash-path  print the path of ds01_events.sh, for `source "$(ds01-log --bash-path)"`
Exit status: 0 recorded, 1 not recorded (reason on stderr), 2 bad arguments."""

_SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "python", "python3", "env", "perl"}


class UsageError(ValueError):
    """Bad command-line arguments; the message says what to fix."""


def bash_library_path() -> Path:
    """Where the Bash library shipped with this package lives."""
    return Path(__file__).with_name("ds01_events.sh")


def parent_program(proc: Path = Path("/proc")) -> str:
    """The name of the program that ran us (a script's name, not its interpreter's)."""
    try:
        raw = (proc / str(os.getppid()) / "cmdline").read_bytes()
    except OSError:
        return "ds01-log"
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if not args:
        return "ds01-log"
    name = os.path.basename(args[0])
    if name.rstrip("0123456789.") in _SHELLS:
        # "bash /opt/ds01/bin/cleanup.sh": the script is the caller.
        scripts = [a for a in args[1:] if not a.startswith("-")]
        if (scripts and "/" in scripts[0]) or (scripts and scripts[0].endswith((".sh", ".py"))):
            return os.path.basename(scripts[0])
    return name


def parse_items(items: list[str]) -> tuple[str | None, str | None, dict[str, Any]]:
    """Split ``user=``, ``source=`` and the detail items; raise UsageError if malformed."""
    user: str | None = None
    source: str | None = None
    details: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or key == ":":
            msg = f"{item!r} is not key=value or key:=JSON"
            raise UsageError(msg)
        if key.endswith(":"):
            key = key[:-1]
            try:
                details[key] = msgspec.json.decode(value)
            except msgspec.DecodeError as exc:
                msg = f"the value of {key} is not JSON ({exc}); use {key}=... for text"
                raise UsageError(msg) from exc
        elif key == "user":
            user = value
        elif key == "source":
            source = value
        else:
            details[key] = value
    return user, source, details


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one exit per outcome
    """Entry point of ``ds01-log``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    quiet = False
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-h", "--help"):
            print(USAGE)  # noqa: T201 - the CLI's output
            return 0
        if flag == "--bash-path":
            print(bash_library_path())  # noqa: T201 - the CLI's output
            return 0
        if flag in ("-q", "--quiet"):
            quiet = True
        elif flag == "--":
            break
        else:
            return _fail(f"unknown option {flag}; see ds01-log --help", 2, quiet=False)
    if not args:
        return _fail("missing the event TYPE; see ds01-log --help", 2, quiet=False)
    try:
        user, source, details = parse_items(args[1:])
        event = make_event(args[0], user=user, source=source or parent_program(), details=details)
    except (UsageError, InvalidEvent) as exc:
        return _fail(str(exc), 2, quiet=quiet)
    outcome = record(event)
    if not outcome.recorded:
        return _fail(
            f"event {args[0]} not recorded: {outcome.reason}. Start the watcher"
            " (systemctl start ds01-watcher) or set DS01_EVENTS_FILE to a writable file",
            1,
            quiet=quiet,
        )
    return 0


def _fail(message: str, status: int, *, quiet: bool) -> int:
    if not quiet:
        sys.stderr.write(f"ds01-log: {message}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
