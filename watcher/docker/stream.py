"""Pure helpers for the Docker event stream: decoding byte chunks, keys, ``since``, de-duplication.

dockerd writes one JSON object per line on ``/events``; the HTTP layer may cut the
stream anywhere, so a chunk can hold part of an event, one event or several.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, NamedTuple

# A line longer than this is not an event from dockerd: drop it instead of growing forever.
MAX_LINE_BYTES = 1 << 20


class EventKey(NamedTuple):
    """What identifies one Docker event: dockerd gives no event id."""

    time_nano: int
    actor_id: str
    action: str


class ChunkDecoder:
    """Turns raw ``/events`` byte chunks into event dicts; counts what it had to skip."""

    def __init__(self) -> None:
        self._partial = b""
        self.skipped = 0

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """Events completed by ``chunk``, in order. Never raises on malformed input."""
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""
            self.skipped += 1
        events: list[dict[str, Any]] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):  # deep nesting ends json's recursion
                self.skipped += 1
                continue
            if isinstance(value, dict):
                events.append(value)
            else:
                self.skipped += 1
        return events


def base_action(action: str) -> str:
    """``exec_start: sh -c ...`` and ``health_status: healthy`` carry text after a colon."""
    return action.split(":", 1)[0].strip()


def event_key(event: dict[str, Any]) -> EventKey | None:
    """Return the de-duplication key of an event, or None when it lacks one."""
    actor = event.get("Actor") or {}
    actor_id = actor.get("ID") or event.get("id")
    action = event.get("Action") or event.get("status")
    try:
        time_nano = int(event["timeNano"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(actor_id, str) or not isinstance(action, str):
        return None
    return EventKey(time_nano, actor_id, action)


def since_arg(time_nano: int) -> str:
    """``since`` as ``"sec.nanos"``: a datetime would be truncated to whole seconds."""
    seconds, nanos = divmod(time_nano, 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


class SeenKeys:
    """A bounded set of recent event keys; the oldest are forgotten first."""

    def __init__(self, limit: int = 8192) -> None:
        self._keys: OrderedDict[EventKey, None] = OrderedDict()
        self._limit = limit

    def add(self, key: EventKey) -> bool:
        """Remember ``key``; False if it was already there (a duplicate)."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._limit:
            self._keys.popitem(last=False)
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
