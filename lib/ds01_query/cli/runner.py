"""What each ds01-events command does, given plain settings and the streams to write to.

The command line (`cli_events`, `options`) only parses arguments into a `QueryRequest`;
everything here is callable from tests with in-memory streams. What only one kind of output needs
(the table, the summary, --follow, the catalogue) is imported where it is used: a
bisected ``--json`` query takes less time than importing all of it.
"""

from __future__ import annotations

import os
import sys

from ds01_query.cli.streams import Streams
from ds01_query.engine import reader
from ds01_query.engine.dates import datetime, timedelta, timezone, tzinfo
from ds01_query.engine.query import Filters, Record, event_time, matches
from ds01_query.engine.timeorder import OrderBook, cache_path
from ds01_query.engine.timespec import TimespecError, parse_timespec
from ds01_query.scan import search

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from typing import BinaryIO, ClassVar, TextIO

    from ds01_query.cli.table import TableWriter

DEFAULT_FILE = "/var/log/ds01/events.jsonl"
EXIT_PROBLEM = 1
EXIT_USAGE = 2


class UserError(Exception):
    """A problem the admin can fix; the message is one line saying how. ``code``: exit."""

    def __init__(self, message: str, code: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.code = code


class QueryRequest(Record):
    """One query as the admin gave it (times still as TIMESPEC text; limit None: not given)."""

    FIELDS: ClassVar[dict[str, object]] = {
        "files": (),
        "users": (),
        "types": (),
        "containers": (),
        "since": None,
        "until": None,
        "grep": None,
        "json": False,
        "summary": False,
        "follow": False,
        "limit": None,
        "all": False,
        "wide": False,
        "errors": False,
    }
    __slots__ = tuple(FIELDS)
    files: tuple[str, ...]
    users: tuple[str, ...]
    types: tuple[str, ...]
    containers: tuple[str, ...]
    since: str | None
    until: str | None
    grep: str | None
    json: bool
    summary: bool
    follow: bool
    limit: int | None
    all: bool
    wide: bool
    errors: bool


def default_streams() -> Streams:
    """Return the process's own stdout, stderr, stdin and environment."""
    return Streams(sys.stdout, sys.stderr, os.environ, inp=sys.stdin)


TABLE_LIMIT = 50  # a terminal shows the last 50 unless told otherwise


def check_request(request: QueryRequest) -> None:
    """Refuse what cannot be meant (exit 2, one line): a count below 1, clashing outputs."""
    from ds01_query.cli.options import BY_FIELD, CONFLICTS  # noqa: PLC0415 - small, loaded already

    if request.limit is not None and request.limit < 1:
        msg = (
            f"--limit needs a whole number of at least 1, not {request.limit} (--all: every match)"
        )
        raise UserError(msg, EXIT_USAGE)
    for name in ("since", "until"):
        value = getattr(request, name)
        if value is not None and not value.strip():
            msg = f"--{name} needs a TIMESPEC (e.g. today, '2 hours ago', 2026-11-01)"
            raise UserError(msg, EXIT_USAGE)
    for first, second, why in CONFLICTS:
        if _given(request, first) and _given(request, second):
            names = f"{BY_FIELD[first].names[0]} and {BY_FIELD[second].names[0]}"
            raise UserError(f"{names} cannot be combined: {why}", EXIT_USAGE)


def _given(request: QueryRequest, field: str) -> bool:
    """Whether the admin set this option (a flag on, a value given)."""
    return getattr(request, field) not in {None, False}


def effective_limit(request: QueryRequest, streams: Streams) -> int | None:
    """How many of the last matches to show; None: every one.

    A table at a terminal shows the last 50; JSON, or output into a pipe or a file,
    is for programs and gets every match. ``--limit N`` always wins.
    """
    if request.limit is not None:
        return request.limit
    if request.all or request.json or not streams.is_terminal():
        return None
    return TABLE_LIMIT


def build_filters(request: QueryRequest, now: datetime, local: tzinfo | None) -> Filters:
    """Build filters from the request; raise UserError (exit 2) on a bad TIMESPEC."""
    try:
        since = parse_timespec(request.since, now, local) if request.since else None
        until = parse_timespec(request.until, now, local) if request.until else None
    except TimespecError as exc:
        raise UserError(str(exc), EXIT_USAGE) from exc
    return Filters(
        users=request.users,
        types=request.types,
        containers=request.containers,
        since=since,
        until=until,
        grep=request.grep or None,
        errors=request.errors,
    )


def resolve_files(
    given: Sequence[str], environ: Mapping[str, str], err: TextIO | None = None
) -> list[str]:
    """Every file to read, oldest first; raise UserError when none is there or readable.

    A path that is not a regular file (a link, a FIFO, a device: planted where others
    can write) is skipped, and a file someone other than root could have written is
    named; each once, on ``err``.
    """
    lives = list(given) or [environ.get("DS01_EVENTS_FILE") or DEFAULT_FILE]
    files: list[str] = []
    for live in lives:
        files.extend(reader.log_files(live))
    present, refused, forgeable = reader.screen(files)
    if err is not None:
        for problem in refused:
            err.write(f"ds01-events: warning: {problem}\n")
        if forgeable:
            err.write(
                f"ds01-events: warning: {', '.join(forgeable)} can be written by users other"
                " than root, so lines in it may be forged; make the log root's alone"
                " (chown root and chmod go-w the files and their folder)\n"
            )
    if not present:
        names = ", ".join(str(p) for p in lives)
        raise UserError(f"no event log at {names}: set DS01_EVENTS_FILE or pass --file PATH")
    return present


def order_book(environ: Mapping[str, str]) -> OrderBook:
    """Where this user's file orders are remembered (`timeorder`)."""
    return OrderBook(cache_path(environ))


def _report(stats: search.ScanStats, err: TextIO) -> None:
    if stats.malformed:
        where = ", ".join(f"{os.path.basename(p)}: {n}" for p, n in stats.where.items())
        err.write(
            f"ds01-events: skipped {stats.malformed} malformed line(s) ({where});"
            " run 'ds01-events verify' to see them as file:line\n"
        )


def _binary(out: TextIO) -> BinaryIO | None:
    return getattr(out, "buffer", None)


def _write_json(lines: Iterable[bytes], streams: Streams) -> None:
    """The matching lines as they are; at a terminal, with invisible characters escaped."""
    out = streams.out
    if streams.is_terminal():
        from ds01_query.cli.render import escape_json  # noqa: PLC0415 - terminals only

        for line in lines:
            out.write(escape_json(line.decode("utf-8", "replace")) + "\n")
        out.flush()
        return
    binary = _binary(out)
    for line in lines:
        if binary is not None:
            binary.write(line + b"\n")
        else:
            out.write(line.decode("utf-8", "replace") + "\n")
    out.flush()


def _table_writer(request: QueryRequest, streams: Streams) -> TableWriter:
    from ds01_query.cli.table import TableWriter  # noqa: PLC0415 - only the table needs it

    return TableWriter(streams, wide=request.wide)


def run_query(request: QueryRequest, streams: Streams, now: datetime | None = None) -> int:
    """Run one query; the exit status. Raises UserError for what the admin must fix."""
    check_request(request)
    now = now or datetime.now(timezone.utc)
    filters = build_filters(request, now, streams.local)
    files = resolve_files(request.files, streams.environ, streams.err)
    book = order_book(streams.environ)
    stats = search.ScanStats()
    try:
        return _run(request, streams=streams, filters=filters, files=files, stats=stats, book=book)
    except reader.NotALogError as exc:  # swapped for a link or a FIFO while being read
        raise UserError(str(exc)) from exc
    finally:
        book.save()


def _run(
    request: QueryRequest,
    *,
    streams: Streams,
    filters: Filters,
    files: list[str],
    stats: search.ScanStats,
    book: OrderBook,
) -> int:
    if request.summary:
        from ds01_query.cli import render  # noqa: PLC0415 - only summaries and tables need it
        from ds01_query.engine.summary import summarize_events, summarize_files  # noqa: PLC0415

        if filters.is_empty():
            result = summarize_files(files, stats, streams.local)
        else:
            matched = search.iter_matches(files, filters, stats, book=book)
            result = summarize_events((m.event for m in matched), streams.local)
        streams.out.write(render.summary_text(result, streams.local) + "\n")
    elif request.follow:
        return _follow(files, filters, request, streams=streams, stats=stats, book=book)
    else:
        limit = effective_limit(request, streams)
        if limit is None:
            matched = search.iter_matches(files, filters, stats, book=book)
            _write_events(matched, request, streams, cut=False)
        else:
            # One more than shown tells whether older matches were left out.
            last = search.last_matches(files, filters, limit + 1, stats=stats, book=book)
            _write_events(iter(last[-limit:]), request, streams, cut=len(last) > limit)
    _report(stats, streams.err)
    return 0


def _write_events(
    matched: Iterator[search.Match], request: QueryRequest, streams: Streams, *, cut: bool
) -> None:
    """Print the matches as JSON lines or a table; say on stderr when older ones were left out."""
    if request.json:
        _write_json((m.line for m in matched), streams)
        shown = None
    else:
        writer = _table_writer(request, streams)
        shown = writer.write([m.event for m in matched])
        if not shown:
            streams.err.write("ds01-events: no matching events\n")
    if cut and request.limit is None:
        streams.err.write(
            f"ds01-events: showing the last {TABLE_LIMIT} matches; --all or --limit N for more\n"
        )


def _follow(
    files: list[str],
    filters: Filters,
    request: QueryRequest,
    *,
    streams: Streams,
    stats: search.ScanStats,
    book: OrderBook,
) -> int:
    from ds01_query.engine.follow import follow_lines  # noqa: PLC0415 - only --follow needs it

    live = files[-1]
    start = os.stat(live).st_size
    history = request.limit or TABLE_LIMIT
    last = search.last_matches(files, filters, history, stats=stats, live_end=start, book=book)
    book.save()  # --follow runs until stopped
    writer = None if request.json else _table_writer(request, streams)
    if writer is None:
        _write_json((m.line for m in last), streams)
    else:
        writer.write([m.event for m in last])
    _report(stats, streams.err)
    for batch in follow_lines(live, start):
        found: list[search.Match] = []
        for line in batch:
            event = search.decode_event(line)
            if event is None:
                streams.err.write("ds01-events: skipped a malformed line\n")
            elif matches(event, filters, line):
                found.append(search.Match(line, event))
        if writer is None:
            _write_json((m.line for m in found), streams)
        else:
            writer.write([m.event for m in found])  # same columns as the first batch
    return 0


def run_types(streams: Streams) -> int:
    """Print the catalogue: each type, what it means, its detail keys."""
    from ds01_events.catalogue import EVENT_TYPES  # noqa: PLC0415 - only this command needs it

    for name, entry in sorted(EVENT_TYPES.items()):
        streams.out.write(f"{name}\n    {entry.description}\n")
        if entry.details:
            streams.out.write(f"    details: {', '.join(entry.details)}\n")
    return 0


def run_verify(
    given: Sequence[str], streams: Streams, margin: timedelta = search.DEFAULT_MARGIN
) -> int:
    """Check every line of every file; print problems as file:line; 1 if any."""
    from ds01_query.cli import render  # noqa: PLC0415 - only for escaping
    from ds01_query.engine.verify import TimeWatch, check_file  # noqa: PLC0415 - only verify

    problems = 0
    files = resolve_files(given, streams.environ, streams.err)
    watch = TimeWatch(margin)
    for path in files:
        for number, problem, _ in check_file(path, watch):
            if problem:
                problems += 1
                streams.out.write(f"{path}:{number}: {render.escape(problem)}\n")
    total = f"{problems} problem(s) in {len(files)} file(s)"
    streams.err.write(f"ds01-events verify: {total}\n")
    return EXIT_PROBLEM if problems else 0


__all__ = ["QueryRequest", "Streams", "UserError", "event_time", "run_query"]
