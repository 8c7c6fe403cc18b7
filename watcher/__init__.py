"""ds01-watcher: the unattended service that is the single writer of the event log."""

from __future__ import annotations

__version__ = "0.1.0"
