"""One grammar: the fast path and the Typer app read every command line the same way."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ds01_query.cli import options
from ds01_query.cli.main import plain_request, split_command, suggestion
from ds01_query.cli.runner import QueryRequest
from ds01_query.cli.streams import Streams
from ds01_query.cli.typer_app import make_apps

VALUES = ["", "5", "05", "-5", "0", "alice", "a b", "--json", "-", "--", "today", "٣", "x=y"]


def typer_request(args: list[str]) -> QueryRequest | str:
    """The request the Typer app builds for ``args``, or the name of the error it raises."""
    built: list[QueryRequest] = []

    def keep(request: QueryRequest) -> int:
        built.append(request)
        return 0

    apps = make_apps(keep, lambda _f: 0, Streams(io.StringIO(), io.StringIO(), {}))
    try:
        apps.query(args=args, prog_name="ds01-events", standalone_mode=False)
    except Exception as exc:
        if not built:
            return type(exc).__name__
    return built[0] if built else "no request"


def _word() -> st.SearchStrategy[list[str]]:
    names = sorted(options.BY_NAME)
    with_value = st.tuples(st.sampled_from(names), st.sampled_from(VALUES)).map(list)
    inline = st.tuples(st.sampled_from(names), st.sampled_from(VALUES)).map(
        lambda p: [f"{p[0]}={p[1]}"]
    )
    bare = st.sampled_from(names).map(lambda n: [n])
    stray = st.sampled_from(["-n5", "--bogus", "extra", "--help"]).map(lambda w: [w])
    return st.one_of(with_value, inline, bare, bare, stray)


@settings(max_examples=400, deadline=None)
@given(st.lists(_word(), max_size=6).map(lambda ws: [w for word in ws for w in word]))
def test_both_parsers_build_equal_requests(args: list[str]) -> None:
    """Wherever the fast path builds a request, the Typer app builds the same one."""
    fast = plain_request(args)
    if fast is not None:
        assert typer_request(args) == fast


@pytest.mark.parametrize(
    "args",
    [
        ["--since=", "--json"],
        ["--user=", "--limit", "3"],
        ["-u", "bob", "-t", "gpu", "-c", "job", "-n", "7", "-f", "--wide"],
        ["--file", "/tmp/x", "--file=/tmp/y", "--until", "now", "--grep", "--json"],
        ["--errors", "--all", "--summary"],
    ],
)
def test_known_lines_agree(args: list[str]) -> None:
    """Lines that once parsed differently (``--since= --json``) give one request in both."""
    fast = plain_request(args)
    assert fast is not None
    assert typer_request(args) == fast


def test_since_empty_is_a_request_for_both() -> None:
    """``--since= --json``: both read an empty TIMESPEC and --json (refused when run)."""
    assert plain_request(["--since=", "--json"]) == QueryRequest(since="", json=True)


@pytest.mark.parametrize(
    ("args", "command", "rest"),
    [
        (["verify"], "verify", []),
        (["--file", "x", "verify"], "verify", ["--file", "x"]),
        (["--file", "verify"], None, ["--file", "verify"]),
        (["user", "verify"], None, ["user", "verify"]),
        (["types", "--file", "x"], "types", ["--file", "x"]),
    ],
)
def test_commands_stand_anywhere(args: list[str], command: str | None, rest: list[str]) -> None:
    """``verify``/``types`` are found wherever they stand, but never as an option's value."""
    assert split_command(args) == (command, rest)


@pytest.mark.parametrize(
    ("typed", "near"),
    [
        ("--bogus", ""),
        ("--sinse", "--since"),
        ("--usr", "--user"),
        ("--jsno", "--json"),
        ("--x", ""),
    ],
)
def test_suggestion_is_near_or_none(typed: str, near: str) -> None:
    """A mistyped option suggests the option it is close to, and a far one none."""
    assert suggestion(typed) == near


def test_the_typer_app_does_not_import_the_entry_point() -> None:
    """No import circle: typer_app and guided import nothing of cli.main (--guided is a callback)."""
    import ast
    from pathlib import Path

    cli = Path(__file__).resolve().parents[2] / "lib" / "ds01_query" / "cli"
    for name in ("typer_app.py", "guided.py", "options.py", "runner.py"):
        tree = ast.parse((cli / name).read_text())
        imported = {
            getattr(node, "module", None) or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert "ds01_query.cli.main" not in imported, name
        assert not any(
            isinstance(n, ast.ImportFrom)
            and n.module == "ds01_query.cli"
            and any(a.name == "main" for a in n.names)
            for n in ast.walk(tree)
        ), name
