"""What a client may send: the rules applied to every event from the socket or the spool.

Pure: takes a decoded event and the attested origin, returns the reason to refuse it
or cleans it in place. Types and the source that only the watcher writes are refused,
so nothing a user sends can look like the watcher's own record. (An id that
reuses one already in the log is replaced by the sink, which sees every id.) A
claimed user or source is a claim: trimmed of whitespace
and control characters and bounded, so it cannot push other columns off a screen.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from ds01_events.envelope import CLIENT_ID, CLIENT_TIMESTAMP

if TYPE_CHECKING:
    from ds01_events.envelope import Event, Origin

WATCHER_SOURCE = "ds01-watcher"
# Categories whose every event comes from the watcher's own observation.
RESERVED_CATEGORIES = ("watcher", "container", "detection", "monitoring", "ingest")
# Single types the watcher derives from Docker; scripts keep gpu.allocate/release
# (an allocator script reports them), under their own source.
RESERVED_TYPES = frozenset({"resource.oom_kill"})
MAX_CLAIM_CHARS = 64
MAX_SOURCE_CHARS = 128
# Control, format (bidi overrides, zero-width), separators other than space, and
# unassigned/private code points: none belongs in a user or program name.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
REASONS = ("reserved_type", "reserved_source")


def refusal(event: Event) -> str | None:
    """Return why a client may not send ``event`` (a REASONS name), or None."""
    category = event.event_type.split(".", 1)[0]
    if category in RESERVED_CATEGORIES or event.event_type in RESERVED_TYPES:
        return "reserved_type"
    source = clean_claim(event.source, MAX_SOURCE_CHARS)
    if source is not None and source.lower().startswith(WATCHER_SOURCE):
        return "reserved_source"
    return None


def clean_claim(value: str | None, limit: int = MAX_CLAIM_CHARS) -> str | None:
    """A claimed name without control/format characters, trimmed, at most ``limit`` chars.

    Whitespace inside is folded to one space; an empty result is None.
    """
    if value is None:
        return None
    if value.isascii() and value.isprintable() and len(value) <= limit and value.strip() == value:
        return value or None  # the common case costs one pass
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in value
        if ch.isspace() or unicodedata.category(ch) not in _DROP_CATEGORIES
    )
    text = " ".join(kept.split())[:limit].rstrip()
    return text or None


def admit(event: Event, origin: Origin) -> str | None:
    """Stamp ``origin`` and clean ``event`` in place; return a refusal reason instead, if any.

    The client's ``timestamp`` stays for the sink, which moves it to
    ``details.client_timestamp`` when it stamps its own; a client cannot claim
    that detail (nor ``client_id``) itself.
    """
    reason = refusal(event)
    if reason is not None:
        return reason
    event.origin = origin
    event.user = clean_claim(event.user)
    event.source = clean_claim(event.source, MAX_SOURCE_CHARS)
    event.details.pop(CLIENT_TIMESTAMP, None)
    event.details.pop(CLIENT_ID, None)
    return None
