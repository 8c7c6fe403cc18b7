"""What each ds01-events command does, given plain settings and the streams to write to.

The Typer layer (`cli_events`) only parses arguments into a `QueryRequest`; everything
here is callable from tests with in-memory streams. What only one kind of output needs
(the table, the summary, --follow, the catalogue) is imported where it is used: a
bisected ``--json`` query takes less time than importing all of it.
"""

from __future__ import annotations

import os
import sys

from ds01_query.engine import reader
from ds01_query.engine.dates import datetime, timedelta, timezone, tzinfo
from ds01_query.engine.query import Filters, event_time, matches
from ds01_query.engine.timeorder import OrderBook, cache_path
from ds01_query.engine.timespec import TimespecError, parse_timespec
from ds01_query.scan import search

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import BinaryIO, TextIO

DEFAULT_FILE = "/var/log/ds01/events.jsonl"
EXIT_PROBLEM = 1
EXIT_USAGE = 2


class UserError(Exception):
    """A problem the admin can fix; the message is one line saying how. ``code``: exit."""

    def __init__(self, message: str, code: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.code = code


class QueryRequest:
    """One query as the admin gave it (times still as TIMESPEC text)."""

    __slots__ = (
        "all",
        "containers",
        "files",
        "follow",
        "grep",
        "json",
        "limit",
        "since",
        "summary",
        "types",
        "until",
        "users",
    )

    def __init__(
        self,
        *,
        files: tuple[str, ...] = (),
        users: tuple[str, ...] = (),
        types: tuple[str, ...] = (),
        containers: tuple[str, ...] = (),
        since: str | None = None,
        until: str | None = None,
        grep: str | None = None,
        json: bool = False,
        summary: bool = False,
        follow: bool = False,
        limit: int = 50,
        all: bool = False,  # noqa: A002 - named after --all
    ) -> None:
        """Take every option by keyword; each has the default of its flag."""
        self.files = files
        self.users = users
        self.types = types
        self.containers = containers
        self.since = since
        self.until = until
        self.grep = grep
        self.json = json
        self.summary = summary
        self.follow = follow
        self.limit = limit
        self.all = all

    def __eq__(self, other: object) -> bool:
        """Compare option by option (tests compare parsed requests)."""
        if not isinstance(other, QueryRequest):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show every option, for test failures."""
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"QueryRequest({fields})"


class Streams:
    """Where output goes, and the environment that shapes it."""

    __slots__ = ("environ", "err", "local", "out")

    def __init__(
        self, out: TextIO, err: TextIO, environ: Mapping[str, str], local: tzinfo | None = None
    ) -> None:
        """Bundle the output streams, the environment and the local zone (None: TZ)."""
        self.out = out
        self.err = err
        self.environ = environ
        self.local = local


def default_streams() -> Streams:
    """Return the process's own stdout, stderr and environment."""
    return Streams(sys.stdout, sys.stderr, os.environ)


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


def _write_json(lines: Iterable[bytes], out: TextIO) -> None:
    binary = _binary(out)
    for line in lines:
        if binary is not None:
            binary.write(line + b"\n")
        else:
            out.write(line.decode("utf-8", "replace") + "\n")
    out.flush()


def _write_table(events: list[search.Match], streams: Streams) -> None:
    import shutil  # noqa: PLC0415 - only the table needs the terminal size

    from ds01_query.cli import render  # noqa: PLC0415 - only the table needs it

    colour = render.use_colour(streams.out, streams.environ)
    width = shutil.get_terminal_size().columns if colour else 0
    if events:
        objs = [m.event for m in events]
        streams.out.write(render.table(objs, colour=colour, local=streams.local, width=width))
        streams.out.write("\n")
    else:
        streams.err.write("ds01-events: no matching events\n")
    streams.out.flush()


def run_query(request: QueryRequest, streams: Streams, now: datetime | None = None) -> int:
    """Run one query; the exit status. Raises UserError for what the admin must fix."""
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
    elif request.all:
        matched = search.iter_matches(files, filters, stats, book=book)
        if request.json:
            _write_json((m.line for m in matched), streams.out)
        else:
            _write_table(list(matched), streams)
    else:
        last = search.last_matches(files, filters, max(request.limit, 0), stats=stats, book=book)
        if request.json:
            _write_json((m.line for m in last), streams.out)
        else:
            _write_table(last, streams)
    _report(stats, streams.err)
    return 0


def _follow(
    files: list[str],
    filters: Filters,
    request: QueryRequest,
    *,
    streams: Streams,
    stats: search.ScanStats,
    book: OrderBook,
) -> int:
    from ds01_query.cli import render  # noqa: PLC0415 - only the table needs it
    from ds01_query.engine.follow import follow_lines  # noqa: PLC0415 - only --follow needs it

    live = files[-1]
    start = os.stat(live).st_size
    last = search.last_matches(
        files, filters, max(request.limit, 0), stats=stats, live_end=start, book=book
    )
    book.save()  # --follow runs until stopped
    colour = render.use_colour(streams.out, streams.environ)
    if request.json:
        _write_json((m.line for m in last), streams.out)
    elif last:
        _write_table(last, streams)
    _report(stats, streams.err)
    for batch in follow_lines(live, start):
        found: list[search.Match] = []
        for line in batch:
            event = search.decode_event(line)
            if event is None:
                streams.err.write("ds01-events: skipped a malformed line\n")
            elif matches(event, filters, line):
                found.append(search.Match(line, event))
        if request.json:
            _write_json((m.line for m in found), streams.out)
        elif found:
            text = render.table([m.event for m in found], colour=colour, local=streams.local)
            streams.out.write("\n".join(text.split("\n")[1:]) + "\n")
            streams.out.flush()
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
