"""What the module this package replaces exported, for the scripts that still import it.

The old system's ``ds01_events.py`` offered ``EVENTS_FILE`` (a Path), ``MAX_EVENT_SIZE``,
``SCHEMA_VERSION``, ``EVENT_TYPES``, ``log_event`` and a ``main()`` command line
(``log TYPE key=value ...`` and ``types``); its callers (event-logger.py among them)
import ``EVENTS_FILE`` and ``log_event`` by name. Loaded on first use of one of these
names: pathlib costs every other importer a few milliseconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ds01_events.emit import DEFAULT_EVENTS_FILE
from ds01_events.envelope import MAX_LINE_BYTES

# Where direct appends go (DS01_EVENTS_FILE, as for log_event); readers such as
# event-logger.py's tail open it.
EVENTS_FILE = Path(os.environ.get("DS01_EVENTS_FILE") or DEFAULT_EVENTS_FILE)
MAX_EVENT_SIZE = MAX_LINE_BYTES


def main(argv: list[str] | None = None) -> int:
    """The old command line: ``log TYPE [user=U] [source=S] [key=value ...]`` or ``types``.

    ``log`` is ``ds01-log`` (values stay text: a slot ``1.10`` is not turned into 1.1).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["types"]:
        from ds01_events.catalogue import EVENT_TYPES  # noqa: PLC0415

        for name, entry in sorted(EVENT_TYPES.items()):
            sys.stdout.write(f"  {name}\n    {entry.description}\n")
        return 0
    from ds01_events.cli_log import main as log_main  # noqa: PLC0415

    args = args[1:] if args[:1] == ["log"] else args
    return log_main([*args[:1], *_well_formed(args[1:])])


def _well_formed(items: list[str]) -> list[str]:
    """The detail items that are key=value; the others are dropped with a warning.

    The old command line ignored such an item and logged the event; ``ds01-log``
    refuses the whole call, which would lose events from unedited ``at`` jobs.
    """
    kept = []
    for item in items:
        if item.partition("=")[0] and "=" in item:
            kept.append(item)
        else:
            sys.stderr.write(
                f"ds01_events.py: ignoring malformed argument {item!r} (expected key=value)\n"
            )
    return kept
