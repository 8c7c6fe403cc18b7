"""The event table: the details an admin looks for first, fitted to the terminal's width.

Each event type names the detail keys that answer "what happened" (exit code, OOM,
signal, reason, GPU devices, run time) and they come first; ids are cut to Docker's
12 characters and bookkeeping (image, attribution) comes last. The columns are sized
once, from the width and the first rows, and kept for every later batch of
``--follow``. Where the width leaves the details too little room, they go on a line
of their own below the row. ``--wide`` shows every key, whole, on one line.
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from typing import TYPE_CHECKING, Any

from ds01_query.cli.render import (
    bounded,
    escape,
    forged_watcher_event,
    local_time,
    use_colour,
    user_parts,
)
from ds01_query.engine.dates import datetime, timezone
from ds01_query.engine.query import Obj, event_container, event_container_id, event_type

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import tzinfo

    from ds01_query.cli.streams import Streams

SHORT_ID = 12  # what `docker ps` shows
MAX_VALUE = 60  # one long value (a command line) must not push the rest away
MIN_DETAILS = 32  # narrower than this, the details get a line of their own
TIME_WIDTH = len("2026-11-22 14:00:05")
GAP = "  "
# Per column: (fewest, most) characters; the fewest keep --follow's columns steady.
BOUNDS = {"type": (14, 28), "user": (8, 32), "container": (10, 24)}
FIRST_KEYS: dict[str, tuple[str, ...]] = {
    "container.stop": ("exit_code", "oom", "signal", "reason", "ran_s", "gpu_devices"),
    "container.start_failed": ("exit_code", "error"),
    "container.create": ("gpu_devices", "container_type", "managed", "interface"),
    "container.rename": ("old_name",),
    "gpu.reject": ("reason", "requested"),
    "auth.denied": ("action", "reason"),
    "detection.host_gpu_process": ("pid", "command", "gpu_uuid", "mig_uuid", "used_memory_mib"),
    "watcher.gap": ("since", "until", "reason"),
    "ingest.rejected": ("counts", "uids", "window_seconds"),
    "maintenance.*": ("action", "reason"),
}
GENERIC_FIRST = ("exit_code", "oom", "signal", "reason", "error", "gpu_devices", "ran_s")
LAST_KEYS = ("container_id", "image", "attributed_by", "inferred")
HIDDEN = frozenset({"container"})  # has its own column
_LEGACY_KEYS = ("ts", "event", "container")
_COLOURS = {
    "container": "32",
    "gpu": "36",
    "auth": "31",
    "resource": "31",
    "detection": "33",
    "maintenance": "35",
    "monitoring": "34",
    "watcher": "2",
    "ingest": "2",
}
FORGED_COLOUR = "1;31"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return ",".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _pair(key: str, value: Any, most: int) -> str | None:
    """``key=value`` as the default table shows it; None for what says nothing."""
    if value is None or (key == "oom" and value is False) or (key == "inferred" and not value):
        return None
    if key == "inferred":
        return "inferred"
    if key == "ran_s" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"ran={_duration(float(value))}"
    if key == "container_id" and isinstance(value, str):
        return f"id={value[:SHORT_ID]}"
    return f"{key}={bounded(escape(_text(value)), most)}"


def details_text(obj: Obj, *, wide: bool = False, fitted: bool = True) -> str:
    """The DETAILS cell: first the keys this type is about, bookkeeping last (all, if wide).

    ``fitted`` (a terminal's width to fit) cuts one long value to `MAX_VALUE`.
    """
    details = obj.get("details")
    extra = {}
    if "event_type" not in obj:  # a legacy line: its other top-level keys are its details
        known = {"user", "details", "timestamp", "event_type", "origin", *_LEGACY_KEYS}
        extra = {k: v for k, v in obj.items() if k not in known}
    if not isinstance(details, dict):
        details = {} if details is None else {"details": details}
    items = {**details, **extra}
    if wide:
        return " ".join(f"{k}={escape(_text(v))}" for k, v in items.items() if k not in HIDDEN)
    kind = event_type(obj) or ""
    first = FIRST_KEYS.get(kind) or FIRST_KEYS.get(kind.split(".", 1)[0] + ".*", GENERIC_FIRST)
    order = [k for k in first if k in items]
    order += [k for k in items if k not in order and k not in LAST_KEYS and k not in HIDDEN]
    order += [k for k in LAST_KEYS if k in items and k not in order]
    most = MAX_VALUE if fitted else 1 << 30
    pairs = (_pair(k, items[k], most) for k in order)
    return " ".join(p for p in pairs if p is not None)


def zone_name(local: tzinfo | None, when: datetime | None = None) -> str:
    """The local zone's abbreviation (JST, CET), or its UTC offset when it has none."""
    moment = (when or datetime.now(timezone.utc)).astimezone(local)
    name = moment.strftime("%Z")
    if name and name[0] not in "+-":
        return name
    offset = moment.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"


def terminal_width(streams: Streams) -> int:
    """Columns to fit: ``COLUMNS``, else the terminal's; 0 when not writing to a terminal."""
    given = streams.environ.get("COLUMNS", "")
    if given.isascii() and given.isdigit() and int(given) > 0:
        return int(given)
    if not streams.is_terminal():
        return 0
    try:
        return os.get_terminal_size(streams.out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


class Row:
    """One event's cells, escaped; the user cell as (name, marker) so the name is cut first."""

    __slots__ = ("container", "details", "forged", "kind", "marker", "name", "time")

    def __init__(
        self, obj: Obj, local: tzinfo | None, *, wide: bool, fitted: bool, account: Any
    ) -> None:
        """Take the cells from one decoded event."""
        self.time = local_time(obj, local)
        self.kind = escape(event_type(obj) or "?")
        self.name, self.marker = user_parts(obj, account) if account else user_parts(obj)
        container = event_container(obj)
        cid = event_container_id(obj)
        if container is None and cid is not None:
            container = cid if wide else cid[:SHORT_ID]
        self.container = escape(container or "-")
        self.details = details_text(obj, wide=wide, fitted=fitted)
        self.forged = forged_watcher_event(obj)


INDENT = "    "
MAX_DETAIL_LINES = 2  # below a row; the rest is for --wide


def _wrapped(details: str, width: int) -> list[str]:
    """The details on lines of their own, broken between ``key=value`` pairs."""
    lines: list[str] = []
    current = ""
    for pair in details.split(" ") if details else []:
        if current and cells(INDENT + current) + 1 + cells(pair) > width:
            lines.append(INDENT + current)
            current = pair
        else:
            current = f"{current} {pair}" if current else pair
    if current:
        lines.append(INDENT + current)
    if len(lines) > MAX_DETAIL_LINES:
        lines = [*lines[: MAX_DETAIL_LINES - 1], clip(lines[MAX_DETAIL_LINES - 1] + " …", width)]
    return lines


def _cell(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1


def cells(text: str) -> int:
    """Columns ``text`` takes on a terminal: CJK characters two, combining marks none."""
    return len(text) if text.isascii() else sum(_cell(c) for c in text)


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal columns, the cut shown as "…"."""
    if cells(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        used += _cell(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def pad(text: str, width: int) -> str:
    """``text`` filled with spaces to ``width`` terminal columns."""
    return text + " " * max(width - cells(text), 0)


def _fit(text: str, width: int) -> str:
    return pad(clip(text, width), width)


def _fit_user(name: str, marker: str, width: int) -> str:
    """The user cell in ``width``: the claimed name gives way, the marker stays whole."""
    room = width - cells(marker)
    if cells(name) > room:
        name = clip(name, max(room, 1))
    return pad(name + marker, width)


class Layout:
    """Column widths, fixed once so that later rows line up with the first."""

    def __init__(self, rows: Sequence[Row], width: int, *, wide: bool) -> None:
        """Size the columns for ``width`` (0: no limit) from the first rows."""
        self.width = 0 if wide else width
        self.narrow = False
        # Into a pipe (no width) nothing is cut: a long name stays greppable.
        self.sizes = self._sizes(rows, BOUNDS, cap=bool(self.width))
        if self.width and self._fixed() + MIN_DETAILS > self.width:
            self.narrow = True
            self.sizes = self._sizes(rows, BOUNDS, cap=True)
            self._shrink(self.width - self._fixed() + len(GAP))

    def _shrink(self, room: int) -> None:
        """Give back ``-room`` characters from the widest of TYPE and CONTAINER (never USER)."""
        while room < 0:
            column = max(("container", "type"), key=lambda c: self.sizes[c] - BOUNDS[c][0])
            if self.sizes[column] <= BOUNDS[column][0]:
                return
            self.sizes[column] -= 1
            room += 1

    def _sizes(
        self, rows: Sequence[Row], bounds: dict[str, tuple[int, int]], *, cap: bool
    ) -> dict[str, int]:
        found = {
            "type": max([cells(r.kind) for r in rows], default=0),
            "user": max([cells(r.name + r.marker) for r in rows], default=0),
            "container": max([cells(r.container) for r in rows], default=0),
        }
        sizes = {}
        for column, (fewest, most) in bounds.items():
            sizes[column] = max(fewest, min(found[column], most) if cap else found[column])
        # A marker is never cut: the user column holds the longest one and a little name.
        markers = max([cells(r.marker) for r in rows], default=0)
        sizes["user"] = max(sizes["user"], markers + 4 if markers else 0)
        return sizes

    def _fixed(self) -> int:
        return TIME_WIDTH + sum(self.sizes.values()) + len(GAP) * 4

    def header(self, zone: str) -> list[str]:
        """The header, the time column naming the zone; DETAILS below it when narrow."""
        cells = [
            f"TIME ({zone})".ljust(TIME_WIDTH),
            "TYPE".ljust(self.sizes["type"]),
            "USER".ljust(self.sizes["user"]),
            "CONTAINER".ljust(self.sizes["container"]),
        ]
        if self.narrow:
            return [self._cut(GAP.join(cells).rstrip()), INDENT + "DETAILS"]
        return [self._cut((GAP.join(cells) + GAP + "DETAILS").rstrip())]

    def lines(self, row: Row) -> list[str]:
        """The row as one line, or two when the details sit on their own line."""
        cells = [
            row.time.ljust(TIME_WIDTH),
            _fit(row.kind, self.sizes["type"]),
            _fit_user(row.name, row.marker, self.sizes["user"]),
            _fit(row.container, self.sizes["container"]),
        ]
        if not self.narrow:
            return [self._cut(GAP.join([*cells, row.details]).rstrip())]
        out = [self._cut(GAP.join(cells).rstrip())]
        return out + [self._cut(line) for line in _wrapped(row.details, self.width)]

    def _cut(self, line: str) -> str:
        return clip(line, self.width) if self.width else line


class TableWriter:
    """Writes batches of events as one table: header once, the same columns throughout."""

    def __init__(
        self, streams: Streams, *, wide: bool = False, account: Callable[[int], str] | None = None
    ) -> None:
        """Write to ``streams.out``, fitted to its terminal (``COLUMNS`` wins)."""
        self.streams = streams
        self.wide = wide
        self.account = account
        self.colour = use_colour(streams.out, streams.environ)
        self.width = terminal_width(streams)
        self.layout: Layout | None = None
        self.headed = False

    def write(self, events: Iterable[Obj]) -> int:
        """Write the events (the header before the first batch); how many were written."""
        local = self.streams.local
        fitted = bool(self.width) and not self.wide
        rows = [
            Row(obj, local, wide=self.wide, fitted=fitted, account=self.account) for obj in events
        ]
        if self.layout is None:
            self.layout = Layout(rows, self.width, wide=self.wide)
        if rows and not self.headed:  # the header waits for the first row
            for line in self.layout.header(zone_name(local)):
                self._put(line, "1")
            self.headed = True
        for row in rows:
            code = FORGED_COLOUR if row.forged else _COLOURS.get(row.kind.split(".", 1)[0])
            for line in self.layout.lines(row):
                self._put(line, code)
        self.streams.out.flush()
        return len(rows)

    def _put(self, line: str, code: str | None) -> None:
        if self.colour and code:
            line = f"\x1b[{code}m{line}\x1b[0m"
        self.streams.out.write(line + "\n")


def render_table(
    events: Iterable[Obj],
    streams: Streams,
    *,
    wide: bool = False,
    account: Callable[[int], str] | None = None,
) -> int:
    """Write one table of ``events``; how many rows."""
    return TableWriter(streams, wide=wide, account=account).write(events)
