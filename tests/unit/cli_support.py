"""Run ds01-events in this process: argv in, (status, stdout, stderr) out."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ds01_query.cli.main import main
from ds01_query.cli.streams import Streams

if TYPE_CHECKING:
    from pathlib import Path


class Terminal(io.StringIO):
    """An in-memory stdout that says it is a terminal."""

    def isatty(self) -> bool:
        """Claim to be a terminal."""
        return True


class Result:
    """What one run printed and returned."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        """Keep the exit status and both outputs."""
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(
    log: Path,
    *args: str,
    stdin: str = "",
    tz: str = "Asia/Tokyo",
    tty: bool = False,
    columns: int | None = None,
    **env: str,
) -> Result:
    """Run ``ds01-events ARGS`` against ``log`` in-process, as at a terminal if ``tty``."""
    out: io.StringIO = Terminal() if tty else io.StringIO()
    err = io.StringIO()
    environ = {"DS01_EVENTS_FILE": str(log), "TZ": tz, "NO_COLOR": "1", **env}
    if columns is not None:
        environ["COLUMNS"] = str(columns)
    streams = Streams(out, err, environ, local=ZoneInfo(tz), inp=io.StringIO(stdin))
    code = main(list(args), streams)
    return Result(code, out.getvalue(), err.getvalue())
