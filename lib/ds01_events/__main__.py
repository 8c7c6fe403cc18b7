"""``python -m ds01_events log ...``: the same as ``ds01-log ...``."""

from __future__ import annotations

import sys

from ds01_events.cli_log import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["log"]:
        args = args[1:]
    sys.exit(main(args))
