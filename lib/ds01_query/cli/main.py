"""ds01-events entry point: older command forms, a quick path for plain queries, then Typer.

One grammar: the option table in `options`. A line made only of query options as that
table spells them is parsed here and run at once (the Typer layer costs more to import
and build than a bisected ``--since`` query takes); anything else (help, ``--guided``,
``-n5``, a typo) goes to the Typer app, which builds the same request or says what is
wrong. ``types`` and ``verify`` are commands wherever they stand on the line.
"""

from __future__ import annotations

import os
import sys

from ds01_query.cli import options, runner
from ds01_query.engine.reader import LogUnreadableError

TYPE_CHECKING = False  # typing itself costs more to import than a bisected query takes

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

COMMANDS = ("types", "verify")
_ONE_ARG = {"user": "--user", "type": "--type", "container": "--container"}
_NO_ARG = {
    "today": ["--since", "today"],
    "errors": ["--errors"],
    "gpu": ["--type", "gpu"],
    "json": ["--json"],
    "stats": ["--summary"],
}
_SUGGEST_CUTOFF = 0.75  # "--sinse" finds --since; "--bogus" finds nothing


def _takes_value(word: str) -> bool:
    option = options.BY_NAME.get(word)
    return option is not None and option.kind != options.FLAG


def split_command(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """Find ``types``/``verify`` anywhere on the line (never an option's value); the rest."""
    rest = list(args)
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == "--":
            break
        if word in COMMANDS:
            return word, rest[:index] + rest[index + 1 :]
        skip = _takes_value(word) or (word in _ONE_ARG)
        index += 2 if skip else 1
    return None, rest


def expand_aliases(args: Sequence[str]) -> list[str]:
    """Rewrite the older command forms (``user U``, ``tail 20``, ``errors``...) as options."""
    out: list[str] = []
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if _takes_value(word) and rest:
            out += [word, rest.pop(0)]  # an option's value is never an alias
        elif word in _ONE_ARG and rest:
            out += [_ONE_ARG[word], rest.pop(0)]
        elif word in _NO_ARG:
            out += _NO_ARG[word]
        elif word == "tail":
            count = rest.pop(0) if rest and rest[0].isascii() and rest[0].isdigit() else "50"
            out += ["--limit", count]
        else:
            out.append(word)
    return out


def plain_request(args: Sequence[str]) -> runner.QueryRequest | None:
    """The query ``args`` describe if they hold only query options, else None (see Typer)."""
    fields = options.parse(args)
    return None if fields is None else runner.QueryRequest(**fields)


def execute(request: runner.QueryRequest, streams: runner.Streams) -> int:
    """Run a parsed request; problems the admin can fix end in one line on stderr."""
    try:
        return runner.run_query(request, streams)
    except runner.UserError as exc:
        streams.err.write(f"ds01-events: {exc}\n")
        return exc.code
    except LogUnreadableError as exc:
        streams.err.write(f"ds01-events: {exc}\n")
        return runner.EXIT_PROBLEM
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


def _guided(streams: runner.Streams, files: Sequence[str] = ()) -> int:
    """Ask, print the command built, then run it as if typed (the only re-entry of main).

    ``--file`` given beside ``--guided`` is kept in the command built.
    """
    from ds01_query.cli.guided import GuidedEnd, build_args, quoted  # noqa: PLC0415 - interactive

    def say(text: str) -> None:
        streams.out.write(text + "\n")
        streams.out.flush()

    try:
        args = build_args(streams.ask, say)
    except KeyboardInterrupt:
        streams.out.write("\n")
        return 130
    except GuidedEnd as end:
        streams.out.write("\n")  # end the unanswered prompt's line
        streams.out.flush()
        streams.err.write(f"ds01-events: {end}\n")
        return end.code
    for path in files:
        args += ["--file", path]
    say("ds01-events " + quoted(args))
    return main(args, streams)


def suggestion(word: str) -> str:
    """The option, command or older form closest to a mistyped ``word``, or "" if none is close."""
    import difflib  # noqa: PLC0415 - only for a mistyped word

    if word.startswith("-"):
        names = {o.names[0] for o in options.QUERY_OPTIONS} | set(options.TYPER_ONLY)
    else:
        names = {*COMMANDS, *_ONE_ARG, *_NO_ARG, "tail"}
    bare = {name.lstrip("-"): name for name in sorted(names)}
    found = difflib.get_close_matches(word.lstrip("-"), bare, n=1, cutoff=_SUGGEST_CUTOFF)
    return bare[found[0]] if found else ""


def _usage_message(exc: Exception) -> str:
    """One line for a click usage error, with our own suggestion for an unknown option.

    click's own "Possible options" takes any match above 0.6, so ``--bogus`` got
    ``--user``. Typer may bundle its own click, so the error is known by its name.
    """
    option = getattr(exc, "option_name", None)
    if type(exc).__name__ == "NoSuchOption" and isinstance(option, str):
        near = suggestion(option)
        hint = f"; did you mean {near}?" if near else ""
        return f"no such option: {option}{hint}"
    formatter = getattr(exc, "format_message", None)
    message = formatter() if callable(formatter) else str(exc)
    extra = message.partition("unexpected extra argument")[2]
    if extra:  # "(s) (verfy types2)": the first stray word may be a mistyped command
        words = extra.rpartition(" (")[2].rpartition(")")[0].split()
        near = suggestion(words[0]) if words else ""
        if near:
            return f"{message}; did you mean {near}?"
    return message


def _run_typer(command: str | None, args: list[str], streams: runner.Streams) -> int:
    import typer  # noqa: PLC0415 - slow to import; only help, --guided, commands, errors

    from ds01_query.cli import typer_app as cli_typer  # noqa: PLC0415 - same reason

    apps = cli_typer.make_apps(
        lambda request: execute(request, streams),
        lambda files: _guided(streams, files),
        streams,
    )
    app = {"types": apps.types, "verify": apps.verify}.get(command or "", apps.query)
    try:
        # Without standalone mode click returns the exit code of typer.Exit.
        result = app(args=args, prog_name="ds01-events", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code or 0)
    except (runner.UserError, LogUnreadableError) as exc:
        streams.err.write(f"ds01-events: {exc}\n")
        return getattr(exc, "code", runner.EXIT_PROBLEM)
    except Exception as exc:  # click usage errors: one line, exit 2
        streams.err.write(f"ds01-events: {_usage_message(exc)} (see ds01-events --help)\n")
        return runner.EXIT_USAGE
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None, streams: runner.Streams | None = None) -> int:
    """Entry point: dispatch ``types``/``verify``, expand older forms, run the query."""
    streams = streams or runner.default_streams()
    command, args = split_command(sys.argv[1:] if argv is None else argv)
    if command is None:
        args = expand_aliases(args)
        request = plain_request(args)
        if request is not None:
            return execute(request, streams)
    return _run_typer(command, args, streams)


def run() -> NoReturn:
    """Run ``ds01-events`` and end the process without the interpreter's teardown.

    Freeing every module and object at exit takes ~2 ms here, an eighth of a bisected
    query, and there is nothing to clean up: the log is only read, and the remembered
    file orders are saved before `main` returns. What is left is the output, flushed here; a reader
    that went away (``| head``) is no error.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib is not loaded, and costs more than this
            stream.flush()
        except (BrokenPipeError, ValueError):  # reader gone, or stream already closed
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
