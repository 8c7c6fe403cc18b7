"""``python -m ds01_events log ...``: the old module's command line (see `legacy.main`)."""

from __future__ import annotations

import sys

from ds01_events.legacy import main

if __name__ == "__main__":
    sys.exit(main())
