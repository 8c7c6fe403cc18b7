"""ds01_events: the audit trail's one event envelope and the ways to record an event.

What scripts import: `log_event` (never raises, never waits long), `EventWriter` for
long-running programs, the envelope (`Event`, `make_event`, `encode_line`, ...) and
the catalogue of event types. Fakes for tests are in `ds01_events.testing`. The names
the module this package replaces exported (``EVENTS_FILE``, ``MAX_EVENT_SIZE``,
``main``) are here too, for the scripts written against it.
"""

from __future__ import annotations

from ds01_events.catalogue import EVENT_TYPES, EventType
from ds01_events.emit import EventWriter, log_event
from ds01_events.envelope import (
    MAX_LINE_BYTES,
    SCHEMA_VERSION,
    Event,
    InvalidEvent,
    Origin,
    decode_line,
    encode_line,
    make_event,
    utc_timestamp,
)

__all__ = [
    "EVENTS_FILE",
    "EVENT_TYPES",
    "MAX_EVENT_SIZE",
    "MAX_LINE_BYTES",
    "SCHEMA_VERSION",
    "Event",
    "EventType",
    "EventWriter",
    "InvalidEvent",
    "Origin",
    "decode_line",
    "encode_line",
    "log_event",
    "main",
    "make_event",
    "utc_timestamp",
]
__version__ = "0.1.0"

# The old module's names (EVENTS_FILE, MAX_EVENT_SIZE, main), loaded on first use.
_LEGACY = frozenset(("EVENTS_FILE", "MAX_EVENT_SIZE", "main"))


def __getattr__(name: str) -> object:
    if name in _LEGACY:
        from ds01_events import legacy  # noqa: PLC0415 - pathlib only for those who ask

        return getattr(legacy, name)
    msg = f"module 'ds01_events' has no attribute {name!r}"
    raise AttributeError(msg)
