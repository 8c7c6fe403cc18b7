"""ds01_events: the audit trail's one event envelope and the ways to record an event.

Names are loaded on first use (PEP 562): ``ds01-events`` and the Bash fallback start
a fresh interpreter per call, and importing msgspec and the emit machinery up front
would cost them more than a bisected query takes.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: importing typing costs every one-shot tool ~4 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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

_WHERE = {
    "EVENT_TYPES": "catalogue",
    "EventType": "catalogue",
    "EventWriter": "emit",
    "log_event": "emit",
    "MAX_LINE_BYTES": "envelope",
    "SCHEMA_VERSION": "envelope",
    "Event": "envelope",
    "InvalidEvent": "envelope",
    "Origin": "envelope",
    "decode_line": "envelope",
    "encode_line": "envelope",
    "make_event": "envelope",
    "utc_timestamp": "envelope",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'ds01_events' has no attribute {name!r}"
        raise AttributeError(msg)
    from importlib import import_module  # noqa: PLC0415 - not on the path of a quick query

    value = getattr(import_module(f"ds01_events.{module}"), name)
    globals()[name] = value
    return value
