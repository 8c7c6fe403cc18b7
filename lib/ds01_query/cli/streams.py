"""Where a query's output goes and its answers come from: one bundle, passed down."""

from __future__ import annotations

TYPE_CHECKING = False  # the query tool's start-up rule: no typing import on the fast path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import tzinfo
    from typing import TextIO


class Streams:
    """Where output goes, where answers come from, and the environment that shapes them."""

    __slots__ = ("environ", "err", "inp", "local", "out")

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        environ: Mapping[str, str],
        local: tzinfo | None = None,
        inp: TextIO | None = None,
    ) -> None:
        """Bundle the streams, the environment and the local zone (None: TZ)."""
        self.out = out
        self.err = err
        self.environ = environ
        self.local = local
        self.inp = inp

    def ask(self, prompt: str) -> str:
        """Write ``prompt`` and read one answer; EOFError at end of input."""
        self.out.write(prompt)
        self.out.flush()
        line = self.inp.readline() if self.inp is not None else ""
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def is_terminal(self) -> bool:
        """Whether stdout is a terminal (an admin reading, not a pipe into jq)."""
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())
