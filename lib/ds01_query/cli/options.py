"""The one table of ds01-events query options, read by the fast path and the Typer app.

Both parsers take names, value kinds and help from here, so they cannot drift apart;
tests/unit/test_events_grammar.py checks that they build equal requests for any argv.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

FLAG = "flag"  # takes no value
TEXT = "text"  # one value; the last one given wins
MANY = "many"  # repeatable; the values are ORed
COUNT = "count"  # a whole number


class Option:
    """One query option: the request field it sets, its spellings, its value and its help."""

    __slots__ = ("field", "help", "kind", "metavar", "names")

    def __init__(
        self,
        field: str,
        names: tuple[str, ...],
        kind: str,
        metavar: str,
        help: str,  # noqa: A002 - what Typer and click call it
    ) -> None:
        """Describe the option; ``names`` start with the long one."""
        self.field = field
        self.names = names
        self.kind = kind
        self.metavar = metavar
        self.help = help


QUERY_OPTIONS = (
    Option("users", ("--user", "-u"), MANY, "USER", "User (exact)."),
    Option("types", ("--type", "-t"), MANY, "TYPE", "Type prefix, or glob with *."),
    Option("containers", ("--container", "-c"), MANY, "NAME", "Name or container_id prefix."),
    Option("since", ("--since",), TEXT, "TIMESPEC", "From TIMESPEC (e.g. '1 hour ago')."),
    Option("until", ("--until",), TEXT, "TIMESPEC", "Before TIMESPEC."),
    Option("grep", ("--grep",), TEXT, "TEXT", "Text in the raw line."),
    Option(
        "errors",
        ("--errors",),
        FLAG,
        "",
        "Failures: denied, rejected, failed, OOM, non-zero exits.",
    ),
    Option("json", ("--json",), FLAG, "", "JSONL only on stdout (every match)."),
    Option("summary", ("--summary",), FLAG, "", "Counts, not events."),
    Option("follow", ("--follow", "-f"), FLAG, "", "Keep printing new."),
    Option(
        "limit",
        ("--limit", "-n"),
        COUNT,
        "N",
        "Show the last N (default 50 at a terminal, else all).",
    ),
    Option("all", ("--all",), FLAG, "", "Every match, also at a terminal."),
    Option("wide", ("--wide",), FLAG, "", "Table: every detail, no cutting."),
    Option("files", ("--file",), MANY, "PATH", "Log file (default $DS01_EVENTS_FILE)."),
)
BY_NAME = {name: option for option in QUERY_OPTIONS for name in option.names}
BY_FIELD = {option.field: option for option in QUERY_OPTIONS}
# Flags only the Typer app handles: they print help or ask questions, never query.
TYPER_ONLY = ("--info", "--concepts", "--guided", "--help")

# Pairs that ask for two outputs at once; refused rather than one silently dropped.
CONFLICTS = (
    ("json", "summary", "--summary prints counts, --json prints events"),
    ("follow", "summary", "--summary counts what is there, --follow waits for more"),
    ("wide", "json", "--wide shapes the table, --json prints no table"),
    ("wide", "summary", "--wide shapes the table, --summary prints no table"),
    ("all", "limit", "--all shows every match, --limit N only the last N"),
    ("all", "follow", "--follow shows the last N (--limit N), then new ones"),
)


def parse(args: Sequence[str]) -> dict[str, object] | None:
    """The request fields ``args`` set if every word is a query option as written, else None.

    None sends the words to the Typer app, which either builds the same request or
    says what is wrong: this parser never accepts a line the Typer app reads otherwise.
    """
    fields: dict[str, object] = {}
    rest = list(args)
    while rest:
        word = rest.pop(0)
        name, sep, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        option = BY_NAME.get(name)
        if option is None:
            return None
        if option.kind == FLAG:
            if sep:
                return None  # click refuses a value for a flag; let it say so
            fields[option.field] = True
            continue
        if sep:
            value = inline
        elif rest:
            value = rest.pop(0)
        else:
            return None
        if option.kind == MANY:
            fields[option.field] = (*fields.get(option.field, ()), value)  # type: ignore[misc]
        elif option.kind == COUNT:
            if not (value.isascii() and value.isdigit()):
                return None
            fields[option.field] = int(value)
        else:
            fields[option.field] = value
    return fields
