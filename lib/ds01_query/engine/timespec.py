"""TIMESPEC: the time forms ``--since`` / ``--until`` accept, turned into aware UTC datetimes.

Pure: the current time and the local zone are parameters, so the same spec gives the
same answer in tests whatever the machine's clock or TZ.
"""

from __future__ import annotations

from ds01_query.engine.dates import datetime, time, timedelta, timezone, tzinfo

ACCEPTED_FORMS = (
    "ISO 8601 (2026-11-22T14:00, 2026-11-22 14:00:05, ...Z or +01:00; no zone = local time), "
    "today, yesterday, tomorrow (local midnight), now, -1h, 1h, 30min ago, 2 days ago, "
    "1 week ago, @EPOCH"
)

_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}


class TimespecError(ValueError):
    """A TIMESPEC that none of the accepted forms matches; the message lists them."""


# Read by hand, not with re: importing re costs more than a bisected --since query.
def _number_length(text: str) -> int:
    """Length of the ``123`` or ``1.5`` at the start of ``text`` (0: none)."""
    whole = len(text) - len(text.lstrip("0123456789"))
    if whole and text[whole : whole + 1] == ".":
        fraction = len(text) - whole - 1 - len(text[whole + 1 :].lstrip("0123456789"))
        if fraction:
            return whole + 1 + fraction
    return whole


def _epoch_seconds(text: str) -> float | None:
    """``@1700000000`` or ``@-1.5``: the seconds; None for anything else."""
    if not text.startswith("@"):
        return None
    body = text[1:]
    sign = 1 if body.startswith("-") else 0
    length = _number_length(body[sign:])
    if not length or sign + length != len(body):
        return None
    return float(body)


def _relative_seconds(text: str) -> float | None:
    """``-1h``, ``30min ago``, ``2 days ago``: the seconds back from now; None otherwise."""
    rest = text[1:].lstrip() if text.startswith("-") else text
    length = _number_length(rest)
    if not length:
        return None
    number, rest = rest[:length], rest[length:].lstrip()
    letters = len(rest) - len(rest.lstrip("abcdefghijklmnopqrstuvwxyz"))
    unit, tail = rest[:letters], rest[letters:]
    if unit not in _UNITS or (tail and (tail.lstrip() != "ago" or tail == "ago")):
        return None
    return float(number) * _UNITS[unit]


def _local_midnight(now: datetime, local: tzinfo | None, days: int) -> datetime:
    today = now.astimezone(local).date() + timedelta(days=days)
    # Build the wall-clock midnight first, then let the zone say its offset (DST aware).
    naive = datetime.combine(today, time())
    aware = naive.replace(tzinfo=local) if local is not None else naive.astimezone()
    return aware.astimezone(timezone.utc)


def _iso(text: str, local: tzinfo | None) -> datetime | None:
    candidate = text.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=local) if local is not None else when.astimezone()
    return when.astimezone(timezone.utc)


def parse_timespec(spec: str, now: datetime, local: tzinfo | None = None) -> datetime:
    """Return the UTC instant ``spec`` names; raise TimespecError (listing the forms) if none.

    ``now`` must be aware. ``local`` is the zone for ``today`` and zone-less ISO times;
    None means the process's local zone (TZ).
    """
    text = spec.strip().lower()
    named = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if text in named:
        return _local_midnight(now, local, named[text])
    if text == "now":
        return now.astimezone(timezone.utc)
    epoch = _epoch_seconds(text)
    seconds = _relative_seconds(text)
    try:
        if epoch is not None:
            return datetime.fromtimestamp(epoch, tz=timezone.utc)
        if seconds is not None:
            return (now - timedelta(seconds=seconds)).astimezone(timezone.utc)
    except (OverflowError, OSError, ValueError):
        msg = f"time {spec!r} is out of range (years 1 to 9999); accepted forms: {ACCEPTED_FORMS}"
        raise TimespecError(msg) from None
    when = _iso(spec.strip(), local)
    if when is not None:
        return when
    raise TimespecError(f"cannot read time {spec!r}; accepted forms: {ACCEPTED_FORMS}")
