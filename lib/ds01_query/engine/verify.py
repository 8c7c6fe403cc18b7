"""``ds01-events verify``: every problem of every line, for file:line reports."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ds01_events.envelope import MAX_LINE_BYTES
from ds01_query.engine import reader
from ds01_query.engine.query import event_time, event_type
from ds01_query.scan.search import decode_event

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime, timedelta

    from ds01_query.engine.reader import StrPath

_EVENT_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")


def line_problem(line: bytes) -> tuple[str | None, datetime | None]:
    """Say what is wrong with one line (None when nothing), and give its time."""
    if len(line) + 1 > MAX_LINE_BYTES:
        size_problem: str | None = f"line is {len(line) + 1} bytes, over {MAX_LINE_BYTES}"
    else:
        size_problem = None
    event = decode_event(line)
    if event is None:
        return "not a JSON object", None
    when = event_time(event)
    if when is None:
        return "no readable timestamp (timestamp or ts)", None
    kind = event_type(event)
    if kind is None:
        return "no event_type (or legacy event)", when
    if not _EVENT_TYPE.fullmatch(kind):
        return f"event type {kind!r} is not category.action", when
    return size_problem, when


def check_file(
    path: StrPath, previous: datetime | None, margin: timedelta
) -> Iterator[tuple[int, str | None, datetime | None]]:
    """(line number, problem or None, time) for every non-empty line of ``path``.

    A time more than ``margin`` before the latest seen so far is a problem too: time
    queries assume the log is in time order within that margin.
    """
    latest = previous
    number = 0
    for chunk in reader.iter_chunks(path):
        lines = chunk.split(b"\n")
        if chunk.endswith(b"\n"):
            lines.pop()
        for line in lines:
            number += 1
            if not line.strip():
                continue
            problem, when = line_problem(line)
            if problem is None and when is not None and latest is not None:
                behind = latest - when
                if behind > margin:
                    problem = f"time goes back {behind} (more than {margin})"
            if when is not None and (latest is None or when > latest):
                latest = when
            yield number, problem, when
