"""ds01-events entry point: older command forms, a quick path for plain queries, then Typer.

A plain query (only filter and output options) is parsed here and run at once: the
Typer layer costs more to import and build than a bisected ``--since`` query takes,
so it is loaded only for help, ``--guided``, ``types``, ``verify`` and errors.
"""

from __future__ import annotations

import os
import sys

from ds01_query.cli import runner
from ds01_query.engine.reader import LogUnreadableError

TYPE_CHECKING = False  # typing itself costs more to import than a bisected query takes

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

ERROR_TYPES = ("*.denied", "*.reject", "*fail*", "*oom*")
_ONE_ARG = {"user": "--user", "type": "--type", "container": "--container"}
_NO_ARG = {
    "today": ["--since", "today"],
    "errors": [x for t in ERROR_TYPES for x in ("--type", t)],
    "gpu": ["--type", "gpu"],
    "json": ["--json"],
    "stats": ["--summary"],
}
_VALUE_FIELDS = {
    "--user": "users",
    "-u": "users",
    "--type": "types",
    "-t": "types",
    "--container": "containers",
    "-c": "containers",
    "--file": "files",
    "--since": "since",
    "--until": "until",
    "--grep": "grep",
    "--limit": "limit",
    "-n": "limit",
}
_FLAG_FIELDS = {
    "--json": "json",
    "--summary": "summary",
    "--follow": "follow",
    "-f": "follow",
    "--all": "all",
}
_REPEATED = frozenset({"users", "types", "containers", "files"})


def expand_aliases(args: Sequence[str]) -> list[str]:
    """Rewrite the older command forms (``user U``, ``tail 20``, ``errors``...) as options."""
    out: list[str] = []
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in _VALUE_FIELDS and rest:
            out += [word, rest.pop(0)]  # an option's value is never an alias
        elif word in _ONE_ARG and rest:
            out += [_ONE_ARG[word], rest.pop(0)]
        elif word in _NO_ARG:
            out += _NO_ARG[word]
        elif word == "tail":
            count = rest.pop(0) if rest and rest[0].isdigit() else "50"
            out += ["--limit", count]
        else:
            out.append(word)
    return out


def plain_request(args: Sequence[str]) -> runner.QueryRequest | None:
    """Build the query ``args`` describe if they hold only filter/output options, else None."""
    fields: dict[str, object] = {}
    rest = list(args)
    while rest:
        word = rest.pop(0)
        name, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in _FLAG_FIELDS and not inline:
            fields[_FLAG_FIELDS[name]] = True
            continue
        field = _VALUE_FIELDS.get(name)
        if field is None or (not inline and not rest):
            return None
        value = inline or rest.pop(0)
        if field in _REPEATED:
            fields[field] = (*fields.get(field, ()), value)  # type: ignore[misc]
        elif field == "limit":
            if not value.isdigit():
                return None
            fields[field] = int(value)
        else:
            fields[field] = value
    return runner.QueryRequest(**fields)  # type: ignore[arg-type]


def _run_plain(request: runner.QueryRequest) -> int:
    try:
        return runner.run_query(request, runner.default_streams())
    except runner.UserError as exc:
        sys.stderr.write(f"ds01-events: {exc}\n")
        return exc.code
    except LogUnreadableError as exc:
        sys.stderr.write(f"ds01-events: {exc}\n")
        return runner.EXIT_PROBLEM
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: dispatch ``types``/``verify``, expand older forms, run the query."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and args[0] in {"types", "verify"} else None
    if command is None:
        args = expand_aliases(args)
        request = plain_request(args)
        if request is not None:
            return _run_plain(request)
    else:
        args = args[1:]
    import typer  # noqa: PLC0415 - slow to import; only help, --guided, commands, errors

    from ds01_query.cli import typer_app as cli_typer  # noqa: PLC0415 - same reason

    apps = {"types": cli_typer.types_app, "verify": cli_typer.verify_app}
    app = apps.get(command or "", cli_typer.query_app)
    try:
        # Without standalone mode click returns the exit code of typer.Exit.
        result = app(args=args, prog_name="ds01-events", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors: one line, exit 2
        formatter = getattr(exc, "format_message", None)
        message = formatter() if callable(formatter) else str(exc)
        sys.stderr.write(f"ds01-events: {message} (see ds01-events --help)\n")
        return runner.EXIT_USAGE
    return result if isinstance(result, int) else 0


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
