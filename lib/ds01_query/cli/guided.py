"""``--guided``: ask the admin what they want and build the ds01-events arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_GOALS = {
    "1": ("recent events", []),
    "2": ("one user's events", ["--user"]),
    "3": ("one container's events", ["--container"]),
    "4": ("errors (denied, rejected, failed, OOM)", ["errors"]),
    "5": ("GPU allocations and releases", ["--type", "gpu"]),
    "6": ("a summary (counts by type, user, day)", ["--summary"]),
}


def build_args(ask: Callable[[str], str], say: Callable[[str], None]) -> list[str]:
    """Arguments for the query the answers describe (never raises on odd input)."""
    say("What do you want to see?")
    for key, (label, _) in _GOALS.items():
        say(f"  {key}) {label}")
    choice = ask("choice [1]: ").strip() or "1"
    _, base = _GOALS.get(choice, _GOALS["1"])
    args = list(base)
    if args and args[-1] in {"--user", "--container"}:
        noun = "user name" if args[-1] == "--user" else "container name or id prefix"
        args.append(ask(f"{noun}: ").strip())
    since = ask("since when? (e.g. today, '2 days ago', 2026-11-01; empty = any time): ")
    if since.strip():
        args += ["--since", since.strip()]
    if "--summary" not in args:
        fmt = ask("as a table or JSON lines? [table]: ").strip().lower()
        if fmt.startswith("j"):
            args.append("--json")
    return args
