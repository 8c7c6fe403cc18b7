"""The previous emitter, kept as the benchmark's reference.

Formats with ``json.dumps`` and opens, appends and closes the file on every call; its
Bash side started ``python3 ds01_events.py log ...`` for every event.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone


def log_event(path: str, event_type: str, user: str | None = None, **details: object) -> bool:
    """Append one event the old way."""
    event = {
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "event_type": event_type,
        "schema_version": "1",
        "user": user,
        "source": os.path.basename(sys.argv[0]),
        "details": details,
    }
    try:
        with open(path, "a") as handle:
            handle.write(json.dumps(event) + "\n")
    except OSError:
        return False
    return True


if __name__ == "__main__":
    # python3 reference_emitter.py log TYPE [USER] [key=value ...]
    args = sys.argv[2:]
    log_event(
        os.environ["DS01_EVENTS_FILE"],
        args[0],
        args[1] if len(args) > 1 else None,
        **dict(a.split("=", 1) for a in args[2:]),
    )
