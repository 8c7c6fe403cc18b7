"""ds01_events: the audit trail's one event envelope and the ways to record an event.

What scripts import: `log_event` (never raises, never waits long), `EventWriter` for
long-running programs, the envelope (`Event`, `make_event`, `encode_line`, ...) and
the catalogue of event types. Fakes for tests are in `ds01_events.testing`.
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
    "EVENT_TYPES",
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
    "make_event",
    "utc_timestamp",
]
__version__ = "0.1.0"
