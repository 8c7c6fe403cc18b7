"""Shared fixtures: subprocesses import this checkout, not an installed copy."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "lib"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)
