"""The Typer commands of ds01-events: help tiers, options, types, verify (thin over `runner`).

The apps are built by `make_apps` around the callables that run a request and the
guided dialogue, so this module imports nothing of the entry point (no import circle)
and a test can build the app with a callable that only records the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ds01_query.cli import runner
from ds01_query.cli.help_text import CONCEPTS, INFO
from ds01_query.cli.options import BY_FIELD

if TYPE_CHECKING:
    from collections.abc import Callable

Many = list[str] | None


def _option(field: str) -> typer.models.OptionInfo:
    """The Typer option for one row of the shared table (names, metavar, help)."""
    row = BY_FIELD[field]
    result: typer.models.OptionInfo = typer.Option(
        *row.names, metavar=row.metavar or None, help=row.help
    )
    return result


class Apps:
    """The three Typer apps ds01-events dispatches to."""

    def __init__(self, query: typer.Typer, types: typer.Typer, verify: typer.Typer) -> None:
        """Bundle the query app and the two commands."""
        self.query = query
        self.types = types
        self.verify = verify


def make_apps(
    execute: Callable[[runner.QueryRequest], int],
    guided: Callable[[tuple[str, ...]], int],
    streams: runner.Streams,
) -> Apps:
    """Build the apps: ``execute`` runs a parsed request, ``guided`` the dialogue (its --file)."""
    query_app = typer.Typer(add_completion=False, rich_markup_mode=None)
    types_app = typer.Typer(add_completion=False, rich_markup_mode=None)
    verify_app = typer.Typer(add_completion=False, rich_markup_mode=None)

    @query_app.command(
        help="Query the ds01 audit trail. More: --info (reference), --concepts, --guided.",
        epilog="Older forms: user U, type T, container C, today, errors, gpu, tail [N], json, "
        "stats. Commands: types, verify (anywhere on the line).",
    )
    def query(  # noqa: PLR0917 - Typer maps each parameter to one option
        user: Annotated[Many, _option("users")] = None,
        type_: Annotated[Many, _option("types")] = None,
        container: Annotated[Many, _option("containers")] = None,
        since: Annotated[str | None, _option("since")] = None,
        until: Annotated[str | None, _option("until")] = None,
        grep: Annotated[str | None, _option("grep")] = None,
        errors: Annotated[bool, _option("errors")] = False,
        json: Annotated[bool, _option("json")] = False,
        summary: Annotated[bool, _option("summary")] = False,
        follow: Annotated[bool, _option("follow")] = False,
        limit: Annotated[int | None, _option("limit")] = None,
        all_: Annotated[bool, _option("all")] = False,
        wide: Annotated[bool, _option("wide")] = False,
        file: Annotated[Many, _option("files")] = None,
        info: Annotated[bool, typer.Option("--info", help="Full reference.")] = False,
        concepts: Annotated[bool, typer.Option("--concepts", help="What events are.")] = False,
        guided_: Annotated[bool, typer.Option("--guided", help="Ask, build, run.")] = False,
    ) -> None:
        """Run one query: filters are ANDed, a repeated filter is ORed."""
        if info or concepts:
            streams.out.write((INFO if info else CONCEPTS) + "\n")
            return
        if guided_:
            raise typer.Exit(guided(tuple(file or ())))
        request = runner.QueryRequest(
            files=tuple(file or ()),
            users=tuple(user or ()),
            types=tuple(type_ or ()),
            containers=tuple(container or ()),
            since=since,
            until=until,
            grep=grep,
            errors=errors,
            json=json,
            summary=summary,
            follow=follow,
            limit=limit,
            all=all_,
            wide=wide,
        )
        raise typer.Exit(execute(request))

    @types_app.command(help="List the event catalogue and each type's detail keys.")
    def types() -> None:
        """Print the catalogue."""
        raise typer.Exit(runner.run_types(streams))

    @verify_app.command(help="Check every line of every file; problems as file:line, exit 1.")
    def verify(file: Annotated[Many, _option("files")] = None) -> None:
        """Check the logs."""
        raise typer.Exit(runner.run_verify(tuple(file or ()), streams))

    del query, types, verify  # registered on the apps
    return Apps(query_app, types_app, verify_app)
