"""``python -m watcher ...``: the same as ``ds01-watcher ...``."""

from __future__ import annotations

import sys

from watcher.entry import main

sys.exit(main())
