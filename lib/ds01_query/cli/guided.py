"""``--guided``: ask the admin what they want and build the ds01-events arguments.

Every answer is checked where it is given: a choice outside the menu, an empty name or
a time that is no TIMESPEC is asked again, so the command built always runs. End of
input ends the dialogue with one line and nothing run.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from ds01_query.engine.dates import datetime, timezone
from ds01_query.engine.timespec import TimespecError, parse_timespec

if TYPE_CHECKING:
    from collections.abc import Callable

_GOALS = {
    "1": ("recent events", []),
    "2": ("one user's events", ["--user"]),
    "3": ("one container's events", ["--container"]),
    "4": ("errors (denied, rejected, failed, OOM, non-zero exits)", ["--errors"]),
    "5": ("GPU allocations and releases", ["--type", "gpu"]),
    "6": ("a summary (counts by type, user, day)", ["--summary"]),
}
MAX_TRIES = 5  # then the admin is plainly not answering this question


class GuidedEnd(Exception):
    """The dialogue ended without a query (end of input, or no usable answer); ``code``: exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def quoted(args: list[str]) -> str:
    """The arguments as one shell line an admin can copy."""
    return " ".join(shlex.quote(a) for a in args)


def _asker(ask: Callable[[str], str], say: Callable[[str], None]) -> Callable[..., str]:
    def question(prompt: str, check: Callable[[str], str | None]) -> str:
        for _ in range(MAX_TRIES):
            try:
                answer = ask(prompt).strip()
            except EOFError:
                msg = "--guided: input ended before the query was complete; nothing was run"
                raise GuidedEnd(msg) from None
            problem = check(answer)
            if problem is None:
                return answer
            say(f"  {problem}")
        msg = f"--guided: no usable answer after {MAX_TRIES} tries; nothing was run"
        raise GuidedEnd(msg)

    return question


def _choice(answer: str) -> str | None:
    return None if answer in {"", *_GOALS} else f"please answer 1 to {len(_GOALS)}"


def _name(answer: str) -> str | None:
    return None if answer else "please give a name (empty is not one)"


def _time(answer: str) -> str | None:
    if not answer:
        return None
    try:
        parse_timespec(answer, datetime.now(timezone.utc), None)
    except TimespecError as exc:
        return str(exc)
    return None


def _format(answer: str) -> str | None:
    ok = {"", "t", "table", "j", "json", "jsonl", "json lines"}
    return None if answer.lower() in ok else "please answer table or json"


def build_args(ask: Callable[[str], str], say: Callable[[str], None]) -> list[str]:
    """Arguments for the query the answers describe. Raises GuidedEnd, nothing else."""
    question = _asker(ask, say)
    say("What do you want to see?")
    for key, (label, _) in _GOALS.items():
        say(f"  {key}) {label}")
    choice = question("choice [1]: ", _choice) or "1"
    args = list(_GOALS[choice][1])
    if args and args[-1] in {"--user", "--container"}:
        noun = "user name" if args[-1] == "--user" else "container name or id prefix"
        args.append(question(f"{noun}: ", _name))
    since = question(
        "since when? (e.g. today, '2 days ago', 2026-11-01; empty = any time): ", _time
    )
    if since:
        args += ["--since", since]
    if "--summary" not in args:
        fmt = question("as a table or JSON lines? [table]: ", _format)
        if fmt.lower().startswith("j"):
            args.append("--json")
    return args
