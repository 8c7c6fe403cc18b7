"""The Typer commands of ds01-events: help tiers, options, types, verify (thin over `runner`)."""

from __future__ import annotations

from typing import Annotated

import typer

from ds01_query.cli import runner
from ds01_query.cli.help_text import CONCEPTS, INFO
from ds01_query.engine.reader import LogUnreadableError

Many = list[str] | None
query_app = typer.Typer(add_completion=False, rich_markup_mode=None)
types_app = typer.Typer(add_completion=False, rich_markup_mode=None)
verify_app = typer.Typer(add_completion=False, rich_markup_mode=None)


def _fail(exc: Exception, code: int) -> None:
    typer.echo(f"ds01-events: {exc}", err=True)
    raise typer.Exit(code)


@query_app.command(
    help="Query the ds01 audit trail. More: --info (reference), --concepts, --guided.",
    epilog="Older forms: user U, type T, container C, today, errors, gpu, tail [N], json, "
    "stats. Commands: types, verify.",
)
def query(  # noqa: PLR0917 - Typer maps each parameter to one option
    user: Annotated[
        Many, typer.Option("--user", "-u", metavar="USER", help="User (exact).")
    ] = None,
    type_: Annotated[
        Many, typer.Option("--type", "-t", metavar="TYPE", help="Type prefix, or glob with *.")
    ] = None,
    container: Annotated[
        Many, typer.Option("--container", "-c", metavar="NAME", help="Name or container_id prefix.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="TIMESPEC", help="From TIMESPEC (e.g. '1 hour ago').")
    ] = None,
    until: Annotated[str | None, typer.Option(metavar="TIMESPEC", help="Before TIMESPEC.")] = None,
    grep: Annotated[str | None, typer.Option(metavar="TEXT", help="Text in the raw line.")] = None,
    json: Annotated[bool, typer.Option("--json", help="JSONL only on stdout.")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Counts, not events.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", help="Show the last N.")] = 50,
    all_: Annotated[bool, typer.Option("--all", help="Every match, not the last N.")] = False,
    file: Annotated[
        Many, typer.Option("--file", metavar="PATH", help="Log file (default $DS01_EVENTS_FILE).")
    ] = None,
    info: Annotated[bool, typer.Option("--info", help="Full reference.")] = False,
    concepts: Annotated[bool, typer.Option("--concepts", help="What events are.")] = False,
    guided: Annotated[bool, typer.Option("--guided", help="Ask, build, run.")] = False,
) -> None:
    """Run one query: filters are ANDed, a repeated filter is ORed."""
    if info or concepts:
        typer.echo(INFO if info else CONCEPTS)
        return
    if guided:
        from ds01_query.cli.guided import build_args  # noqa: PLC0415 - interactive only

        args = build_args(input, typer.echo)
        typer.echo("ds01-events " + " ".join(_quote(a) for a in args))
        from ds01_query.cli.main import main  # noqa: PLC0415 - the entry point runs it

        raise typer.Exit(main(args))
    request = runner.QueryRequest(
        files=tuple(file or ()),
        users=tuple(user or ()),
        types=tuple(type_ or ()),
        containers=tuple(container or ()),
        since=since,
        until=until,
        grep=grep,
        json=json,
        summary=summary,
        follow=follow,
        limit=limit,
        all=all_,
    )
    try:
        code = runner.run_query(request, runner.default_streams())
    except runner.UserError as exc:
        _fail(exc, exc.code)
    except LogUnreadableError as exc:
        _fail(exc, runner.EXIT_PROBLEM)
    except BrokenPipeError:
        code = 0
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


def _quote(arg: str) -> str:
    import shlex  # noqa: PLC0415 - only for --guided

    return shlex.quote(arg)


@types_app.command(help="List the event catalogue and each type's detail keys.")
def types() -> None:
    """Print the catalogue."""
    raise typer.Exit(runner.run_types(runner.default_streams()))


@verify_app.command(help="Check every line of every file; problems as file:line, exit 1.")
def verify(
    file: Annotated[Many, typer.Option("--file", metavar="PATH", help="Log file.")] = None,
) -> None:
    """Check the logs."""
    try:
        code = runner.run_verify(tuple(file or ()), runner.default_streams())
    except (runner.UserError, LogUnreadableError) as exc:
        _fail(exc, runner.EXIT_PROBLEM)
    raise typer.Exit(code)
