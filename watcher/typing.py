"""Contracts between the watcher's parts, so each can be built and tested alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ds01_events.envelope import Event


class Submit(Protocol):
    """Hand one finished event to the sink. Never blocks; False if it had to refuse."""

    def __call__(self, event: Event, /) -> bool:
        """Queue ``event`` for the log."""


class EventLog(Protocol):
    """The sink as the other parts see it."""

    def submit(self, event: Event, /) -> bool:
        """Queue ``event`` for the log; never blocks, False if it had to refuse."""

    def wait_durable(self, timeout: float) -> bool:
        """Wait until what was submitted so far is on disk; False on timeout."""


class Component(Protocol):
    """A long-running part of the service (event source, ingest server, ...)."""

    name: str

    def start(self) -> None:
        """Start its own thread(s) and return at once."""

    def stop(self, timeout: float) -> None:
        """Stop within ``timeout`` seconds; everything it accepted is submitted."""

    def healthy(self) -> bool:
        """True while it is making progress (feeds the systemd watchdog)."""
