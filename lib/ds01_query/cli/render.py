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
from typing import TYPE_CHECKING, TextIO

from ds01_query.engine.query import (
    Obj,
    event_time,
    event_type,
    event_user,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime, tzinfo

    from ds01_query.engine.summary import Summary

# C0, DEL, C1, line and paragraph separators, and every format character (category
# Cf: bidi controls and isolates, zero-width characters, U+061C, tag characters):
# what reorders, hides or breaks text on a terminal. tests/unit/test_render_table.py
# checks the class against unicodedata.
_FORMAT_CHARACTERS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_FORMAT_CHARACTERS}]")
# Raw C0 cannot stand in a JSON string; a tab between tokens is whitespace and stays.
_UNSAFE_IN_JSON = re.compile(f"[\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f{_FORMAT_CHARACTERS}]")
_LATIN1_MAX = 0xFF
_BMP_MAX = 0xFFFF


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= _LATIN1_MAX:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= _BMP_MAX else f"\\U{code:08x}"


def _json_escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= _BMP_MAX:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP JSON escapes a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escape_json(line: str) -> str:
    r"""A JSON line with the characters a terminal would act on escaped: the same JSON value.

    They can only stand inside strings, where ``\\uXXXX`` means the same character.
    """
    return _UNSAFE_IN_JSON.sub(_json_escape_char, line)


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


MAX_CLAIM = 32  # a claimed name longer than this is cut (with "…"), never the marker
WATCHER_UIDS = frozenset({0})  # the watcher runs as root: its own events carry uid 0 or none
WATCHER_ONLY = ("watcher.", "container.", "detection.", "monitoring.")
WATCHER_SOURCE = "ds01-watcher"


def origin_uid(obj: Obj) -> int | None:
    """``origin.uid``: who really sent a script's event (stamped by the watcher), or None."""
    origin = obj.get("origin")
    uid = origin.get("uid") if isinstance(origin, dict) else None
    return uid if isinstance(uid, int) and not isinstance(uid, bool) else None


def forged_watcher_event(obj: Obj) -> bool:
    """An event of a kind only the watcher writes, yet sent by some other uid."""
    uid = origin_uid(obj)
    if uid is None or uid in WATCHER_UIDS:
        return False
    kind = event_type(obj) or ""
    return kind.startswith(WATCHER_ONLY) or obj.get("source") == WATCHER_SOURCE


def bounded(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters, the cut shown as "…"."""
    return text if len(text) <= most else text[: max(most - 1, 0)] + "…"


def user_parts(obj: Obj, account: Callable[[int], str] = _account) -> tuple[str, str]:
    """The USER column as (name, marker): a name the sender merely claims is never fact.

    ``origin`` is the kernel's word for who sent a script's event. Root's wrappers
    speak for the users they act for; anyone else claiming another name gets the
    marker ``? (sent by bob)``, and an unnamed event its sender in brackets. An event
    of a kind only the watcher writes, sent by another uid, is marked with that uid.
    The name is escaped, trimmed and bounded; the marker is what must stay visible.
    """
    claim = event_user(obj)
    name = bounded(escape(claim.strip()), MAX_CLAIM) if claim is not None else None
    uid = origin_uid(obj)
    if uid is None or uid == 0:
        return (name or "-"), ""
    if forged_watcher_event(obj):
        return (name or ""), f"{'? ' if name else ''}(sent by uid {uid})"
    sender = account(uid)
    shown = bounded(escape(sender), MAX_CLAIM)
    if name is None or claim is None:
        return "", f"({shown})"
    return (name, "") if claim.strip() == sender else (name, f"? (sent by {shown})")


def user_cell(obj: Obj, account: Callable[[int], str] = _account) -> str:
    """The USER column as one text (name and marker)."""
    name, marker = user_parts(obj, account)
    return name + marker


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
