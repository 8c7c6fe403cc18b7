r"""What reaches the admin's terminal: escaped values, the event table, the summary.

Every value taken from a line goes through `escape` first: control characters, ANSI
escape sequences and bidi overrides are shown as ``\\xNN``/``\\uNNNN``, never executed.
Colours only when writing to a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import functools
import json
import pwd
import re
from typing import TYPE_CHECKING, Any, TextIO

from ds01_query.engine.query import (
    Obj,
    event_container,
    event_time,
    event_type,
    event_user,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime, tzinfo

    from ds01_query.engine.summary import Summary

# C0, DEL, C1, and the Unicode format characters that reorder or hide text.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
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
_LATIN1_MAX = 0xFF
_LEGACY_KEYS = ("ts", "event", "container")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= _LATIN1_MAX else f"\\u{code:04x}"


def escape(value: object) -> str:
    """``value`` as text that is safe to print on a terminal."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _UNSAFE.sub(_escape_char, text)


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (to anything)."""
    if "NO_COLOR" in environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _details_text(obj: Obj) -> str:
    details = obj.get("details")
    parts: list[str] = []
    if isinstance(details, dict):
        parts.extend(f"{k}={_value(v)}" for k, v in details.items() if k != "container")
    elif details is not None:
        parts.append(f"details={_value(details)}")
    if "event_type" not in obj:
        known = {"user", "details", "timestamp", "event_type", *_LEGACY_KEYS}
        parts.extend(f"{k}={_value(v)}" for k, v in obj.items() if k not in known)
    return " ".join(parts)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def local_time(obj: Obj, local: tzinfo | None) -> str:
    """Show the event time as local wall-clock text, or the raw value when it is not a time."""
    when = event_time(obj)
    if when is None:
        raw = obj.get("timestamp", obj.get("ts"))
        return escape(raw if raw is not None else "?")
    return when.astimezone(local).strftime("%Y-%m-%d %H:%M:%S")


@functools.lru_cache(maxsize=256)
def _account(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return f"uid {uid}"


def user_cell(obj: Obj, account: Callable[[int], str] = _account) -> str:
    """The USER column: a name the sender merely claims is never shown as fact.

    ``origin`` is the kernel's word for who sent a script's event. Root's wrappers
    speak for the users they act for; anyone else claiming another name is shown as
    ``alice? (sent by bob)``, and an unnamed event as its sender in brackets.
    """
    user = event_user(obj)
    origin = obj.get("origin")
    uid = origin.get("uid") if isinstance(origin, dict) else None
    if not isinstance(uid, int) or isinstance(uid, bool) or uid == 0:
        return user or "-"
    sender = account(uid)
    if user is None:
        return f"({sender})"
    return user if user == sender else f"{user}? (sent by {sender})"


def table(events: Iterable[Obj], *, colour: bool, local: tzinfo | None, width: int = 0) -> str:
    """Lay the events out as an aligned table: time (local), type, user, container, details."""
    rows = [
        (
            local_time(obj, local),
            escape(event_type(obj) or "?"),
            escape(user_cell(obj)),
            escape(event_container(obj) or "-"),
            escape(_details_text(obj)),
        )
        for obj in events
    ]
    header = ("TIME", "TYPE", "USER", "CONTAINER", "DETAILS")
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(4)]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        text = "  ".join([*cells, row[4]]).rstrip()
        if width:
            text = text[:width]
        if colour and index:
            code = _COLOURS.get(row[1].split(".", 1)[0])
            text = f"\x1b[{code}m{text}\x1b[0m" if code else text
        elif colour:
            text = f"\x1b[1m{text}\x1b[0m"
        lines.append(text)
    return "\n".join(lines)


def summary_text(summary: Summary, local: tzinfo | None) -> str:
    """Write the summary as a short report (names escaped)."""
    out = [f"total: {summary.total}"]
    if summary.first is not None and summary.last is not None:
        first = summary.first.astimezone(local).strftime("%Y-%m-%d %H:%M:%S %Z")
        last = summary.last.astimezone(local).strftime("%Y-%m-%d %H:%M:%S %Z")
        out.append(f"range: {first} .. {last}")
    if summary.untimed:
        out.append(f"without a readable time: {summary.untimed}")
    sections = [("by type", summary.by_type), ("by user", summary.by_user)]
    if summary.claimed:
        sections.append(("claimed by the sender, not attested", summary.claimed))
    for title, counts in sections:
        out.append(f"{title}:")
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        out.extend(f"  {n:>9}  {escape(k)}" for k, n in ranked)
    out.append("per day:")
    out.extend(f"  {n:>9}  {d.isoformat()}" for d, n in summary.per_day(local).items())
    return "\n".join(out)


def format_time(when: datetime, local: tzinfo | None) -> str:
    """Format a time for messages, in local time."""
    return when.astimezone(local).strftime("%Y-%m-%d %H:%M:%S %Z")
