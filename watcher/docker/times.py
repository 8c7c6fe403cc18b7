"""Docker's times (event timeNano, inspect's RFC 3339 strings) as envelope times and run times."""

from __future__ import annotations

import calendar
import time


def timestamp_from_nanos(time_nano: int) -> str:
    """Turn a Docker ``timeNano`` into an envelope timestamp (UTC, microseconds), exactly."""
    seconds, micros = divmod(time_nano // 1000, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


_DOCKER_ZERO_YEAR = "0001"  # Go's zero time: "never" in State.StartedAt/FinishedAt


def docker_time_nanos(text: object) -> int | None:
    """A Docker RFC 3339 UTC time (``...T20:25:13.123456789Z``) as epoch nanoseconds.

    None for Go's zero time, a zone other than Z, or anything else. Never raises.
    """
    if not isinstance(text, str) or not text.endswith("Z") or text.startswith(_DOCKER_ZERO_YEAR):
        return None
    base, _, fraction = text[:-1].partition(".")
    if not fraction.isdigit() and fraction:
        return None
    try:
        seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    return seconds * 1_000_000_000 + int((fraction or "0")[:9].ljust(9, "0"))


def ran_seconds(started_nano: int | None, ended_nano: int | None) -> float | None:
    """How long a container ran, in seconds (ms precision); None when a bound is unknown."""
    if started_nano is None or ended_nano is None or ended_nano < started_nano:
        return None
    return round((ended_nano - started_nano) / 1e9, 3)
