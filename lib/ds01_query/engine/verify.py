"""``ds01-events verify``: every problem of every line, for file:line reports."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from ds01_events.envelope import MAX_LINE_BYTES
from ds01_query.engine import reader
from ds01_query.engine.decoding import MAX_LINE_BYTES as LONGEST_READ
from ds01_query.engine.decoding import nesting_exceeds
from ds01_query.engine.query import event_time, event_type
from ds01_query.scan.search import decode_event

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime, timedelta

    from ds01_query.engine.reader import StrPath

_EVENT_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")


def line_problem(line: bytes) -> tuple[str | None, datetime | None]:  # noqa: PLR0911
    """Say what is wrong with one line (None when nothing), and give its time."""
    if len(line) + 1 > MAX_LINE_BYTES:
        size_problem: str | None = f"line is {len(line) + 1} bytes, over {MAX_LINE_BYTES}"
    else:
        size_problem = None
    if len(line) > LONGEST_READ:
        return f"line longer than {LONGEST_READ} bytes: skipped by every query", None
    if nesting_exceeds(line):
        return "nested too deep to be an event: skipped by every query", None
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


class TimeWatch:
    """The latest time seen so far across files, and where it was seen."""

    __slots__ = ("latest", "margin", "where")

    def __init__(self, margin: timedelta) -> None:
        """Start with nothing seen."""
        self.margin = margin
        self.latest: datetime | None = None
        self.where = ""

    def goes_back(self, when: datetime, where: str) -> str | None:
        """Say how far ``when`` (at ``where``) goes back beyond the margin, else None.

        Reported once: the count starts again from the line reported, so a line dated
        in the future shows as the one the next line goes back from, not as every
        later line.
        """
        problem = None
        if self.latest is not None and self.latest - when > self.margin:
            problem = (
                f"time goes back {self.latest - when} from {self.where} (more than {self.margin})"
            )
            self.latest = None
        if self.latest is None or when > self.latest:
            self.latest, self.where = when, where
        return problem


def check_file(
    path: StrPath, watch: TimeWatch
) -> Iterator[tuple[int, str | None, datetime | None]]:
    """(line number, problem or None, time) for every non-empty line of ``path``.

    A time more than the margin before the latest seen so far is a problem too (see
    `TimeWatch`): a time query reads such a file whole.
    """
    name = os.path.basename(path)
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
            if when is not None:
                behind = watch.goes_back(when, f"{name}:{number}")
                problem = problem or behind
            yield number, problem, when
