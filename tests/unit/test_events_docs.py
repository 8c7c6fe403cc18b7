"""Every ds01-events option and older form is documented in --info and the docs page.

The options are read from the real Typer app, so an option added there and not
documented fails here, whichever parser it was added to.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import typer

from ds01_query.cli import options
from ds01_query.cli.help_text import INFO
from ds01_query.cli.main import _NO_ARG, _ONE_ARG, COMMANDS
from ds01_query.cli.streams import Streams
from ds01_query.cli.typer_app import make_apps

DOC = (Path(__file__).resolve().parents[2] / "docs" / "ds01-events.md").read_text()
APPS = make_apps(lambda _r: 0, lambda _f: 0, Streams(io.StringIO(), io.StringIO(), {}))


def _long_options(app: typer.Typer) -> list[str]:
    command = typer.main.get_command(app)
    names = {o for p in command.params for o in p.opts if o.startswith("--")}
    return sorted(names - {"--help"})


OPTIONS = _long_options(APPS.query)
FORMS = sorted({*_ONE_ARG, *_NO_ARG, "tail", *COMMANDS})


def test_the_app_has_the_table_options() -> None:
    """The Typer app offers every option of the shared table, under the same names."""
    command = typer.main.get_command(APPS.query)
    spelled = {o for p in command.params for o in p.opts}
    assert {n for o in options.QUERY_OPTIONS for n in o.names} <= spelled


@pytest.mark.parametrize("option", OPTIONS)
def test_option_documented(option: str) -> None:
    """The option appears in the --info reference and in docs/ds01-events.md."""
    assert option in INFO
    assert f"`{option}" in DOC


@pytest.mark.parametrize("option", _long_options(APPS.verify))
def test_verify_option_documented(option: str) -> None:
    """Each option of `verify` appears in the docs page."""
    assert f"`{option}" in DOC


@pytest.mark.parametrize("form", FORMS)
def test_older_form_documented(form: str) -> None:
    """The command or older form appears in the --info reference and the docs page."""
    assert form in INFO
    assert f"`{form}" in DOC or f"events {form}`" in DOC


@pytest.mark.parametrize("columns", [80, 200])
def test_docs_show_the_table_at_a_terminal(columns: int) -> None:
    """The docs page holds a terminal capture of the default table at 80 and 200 columns."""
    block = DOC.split(f"{columns} columns:\n\n```text\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    assert lines[0].startswith("TIME (CET)")
    assert all(len(line) <= columns for line in lines)
    assert any("exit_code=137" in line for line in lines)
