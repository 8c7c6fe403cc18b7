"""Query filters over decoded events (pure), and the byte needles that pre-select lines.

An event is the dict a line decodes to (last duplicate key wins, as in jq). Both
schemas are read: ``timestamp``/``event_type``/``details.container`` and the legacy
``ts``/``event``/top-level ``container``. Filters are ANDed; repeats of one filter ORed.
"""

from __future__ import annotations

from ds01_query.engine.dates import datetime, timezone

# Kept off the import path of a plain query (dataclasses, typing, re, fnmatch): a
# bisected --since query takes less time than importing them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar

Obj = dict[str, "Any"]


# dataclasses imports inspect and re, which cost more than a bisected query takes; a
# subclass names its fields and defaults once in ``FIELDS`` and gets keyword-only
# construction, equality and a repr from here. Shared with the command line's
# `QueryRequest`, so that there is one definition.
class Record:
    """Keyword-only fields with defaults (``FIELDS``); compared and shown field by field."""

    __slots__ = ()
    FIELDS: ClassVar[dict[str, object]] = {}

    def __init__(self, **given: object) -> None:
        """Set every field: the given value, else its default. Unknown names: TypeError."""
        unknown = [name for name in given if name not in self.FIELDS]
        if unknown:
            msg = f"{type(self).__name__} has no field {unknown[0]!r}"
            raise TypeError(msg)
        for name, default in self.FIELDS.items():
            setattr(self, name, given.get(name, default))

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class and every field is equal."""
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show every field, for test failures."""
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELDS)
        return f"{type(self).__name__}({fields})"


class Filters(Record):
    """What the admin asked for. Empty tuples and None mean "no constraint"."""

    FIELDS: ClassVar[dict[str, object]] = {
        "users": (),
        "types": (),
        "containers": (),
        "since": None,
        "until": None,
        "grep": None,
        "errors": False,
    }
    __slots__ = tuple(FIELDS)
    users: tuple[str, ...]
    types: tuple[str, ...]
    containers: tuple[str, ...]
    since: datetime | None
    until: datetime | None
    grep: str | None
    errors: bool

    def is_empty(self) -> bool:
        """Tell whether every event matches."""
        return not (self.users or self.types or self.containers or self.grep or self.errors) and (
            self.since is None and self.until is None
        )


def event_type(obj: Obj) -> str | None:
    """``event_type``, or the legacy ``event``; None when neither is text."""
    value = obj.get("event_type")
    if not isinstance(value, str):
        value = obj.get("event")
    return value if isinstance(value, str) else None


def event_user(obj: Obj) -> str | None:
    """Return the user name, only when it is text (a number is never a user name match)."""
    value = obj.get("user")
    return value if isinstance(value, str) else None


def sender_uid(obj: Obj) -> int | None:
    """The uid the kernel says sent a script's event (``origin.uid``), unless root's.

    None for the watcher's own events (no ``origin``) and for root's wrappers, which
    speak for the users they act for: only then is ``user`` the watcher's word.
    """
    origin = obj.get("origin")
    uid = origin.get("uid") if isinstance(origin, dict) else None
    if not isinstance(uid, int) or isinstance(uid, bool) or uid == 0:
        return None
    return uid


def claimed_user(obj: Obj, account: Callable[[int], str]) -> tuple[str, str] | None:
    """``(user, sender)`` when the event names a user its sender merely claims to be.

    ``account`` names a uid. None when the user is attested: the watcher's or root's
    word, or the sender's own name.
    """
    user = event_user(obj)
    uid = sender_uid(obj)
    if not user or uid is None:
        return None
    sender = account(uid)
    return None if sender == user else (user, sender)


def event_container(obj: Obj) -> str | None:
    """``details.container``, or the legacy top-level ``container``."""
    details = obj.get("details")
    if isinstance(details, dict) and isinstance(details.get("container"), str):
        return str(details["container"])
    value = obj.get("container")
    return value if isinstance(value, str) else None


def event_container_id(obj: Obj) -> str | None:
    """``details.container_id`` (or a legacy top-level one) when it is text."""
    details = obj.get("details")
    value = details.get("container_id") if isinstance(details, dict) else None
    if value is None:
        value = obj.get("container_id")
    return value if isinstance(value, str) else None


def event_timestamp_text(obj: Obj) -> str | None:
    """Return the raw ``timestamp`` (or legacy ``ts``) text."""
    value = obj.get("timestamp")
    if not isinstance(value, str):
        value = obj.get("ts")
    return value if isinstance(value, str) else None


def parse_event_time(value: object) -> datetime | None:  # noqa: PLR0911 - one exit per kind
    """Read an event's time as aware UTC; legacy zone-less times are taken as UTC.

    Numbers are epoch seconds. None when the value is not a time.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def event_time(obj: Obj) -> datetime | None:
    """Return the event's time (``timestamp``, else ``ts``) as aware UTC, or None."""
    value = obj.get("timestamp")
    return parse_event_time(value if value is not None else obj.get("ts"))


def type_matches(actual: str, wanted: str) -> bool:
    """Match as a glob when ``wanted`` holds ``*``, else as a prefix (``gpu``: ``gpu.x``)."""
    if "*" in wanted:
        import fnmatch  # noqa: PLC0415 - globs are rare; keep it off the plain path

        return fnmatch.fnmatchcase(actual, wanted)
    return actual.startswith(wanted)


def matches(obj: Obj, filters: Filters, raw: bytes | None = None) -> bool:  # noqa: C901, PLR0911
    """Tell whether the decoded event passes every filter (``raw``: the line, for grep)."""
    if filters.grep is not None and (raw is None or filters.grep.encode() not in raw):
        return False
    if filters.users and event_user(obj) not in filters.users:
        return False
    if filters.types:
        kind = event_type(obj)
        if kind is None or not any(type_matches(kind, t) for t in filters.types):
            return False
    if filters.containers and not _container_matches(obj, filters.containers):
        return False
    if filters.errors and not is_error(obj):
        return False
    if filters.since is not None or filters.until is not None:
        when = event_time(obj)
        if when is None:
            return False
        if filters.since is not None and when < filters.since:
            return False
        if filters.until is not None and when >= filters.until:
            return False
    return True


ERROR_TYPES = ("*.denied", "*.reject", "*fail*", "*oom*")


def is_error(obj: Obj) -> bool:
    """A failure an admin looks for: a refusal, a failure, an OOM kill, a non-zero exit."""
    kind = event_type(obj) or ""
    if any(type_matches(kind, glob) for glob in ERROR_TYPES):
        return True
    details = obj.get("details")
    if kind != "container.stop" or not isinstance(details, dict):
        return False
    code = details.get("exit_code")
    failed = isinstance(code, int) and not isinstance(code, bool) and code != 0
    return failed or details.get("oom") is True


def _container_matches(obj: Obj, wanted: tuple[str, ...]) -> bool:
    name = event_container(obj)
    if name is not None and name in wanted:
        return True
    legacy = obj.get("container")
    if isinstance(legacy, str) and legacy in wanted:
        return True
    cid = event_container_id(obj)
    return cid is not None and any(w and cid.startswith(w) for w in wanted)


_FIRST_PRINTABLE = 0x20  # JSON must escape every byte below this
# Characters JSON may write as a two-character escape (\/ \" \\ \b \f \n \r \t).
_SHORT_ESCAPED = frozenset(b'/"\\\b\f\n\r\t')


def _literal_of(value: str) -> bytes:
    """Return the longest piece of ``value`` that any matching line holds byte for byte."""
    if "*" in value:
        import re  # noqa: PLC0415 - globs are rare; keep it off the plain path

        pieces: list[str] = re.findall(r"[^*?\[\]]+", value)
    else:
        pieces = [value]
    if not pieces:
        return b""
    return max(pieces, key=len).encode()


def _escape_starts(text: str) -> set[bytes]:
    r"""The first five bytes of every ``\uXXXX`` escape a character of ``text`` can be written as.

    Hex digits may be either case, so ``ó`` (U+00F3) gives ``\u00f`` and ``\u00F``; a
    character beyond U+FFFF is a surrogate pair, whose escape starts ``\ud`` or ``\uD``.
    """
    starts: set[bytes] = set()
    for char in set(text):
        code = ord(char)
        if code > 0xFFFF:  # noqa: PLR2004 - the last character one escape holds
            starts |= {b"\\ud", b"\\uD"}
            continue
        spellings = [b"\\u"]
        for digit in f"{code:04x}"[:3]:
            cases = {digit, digit.upper()}
            spellings = [s + c.encode() for s in spellings for c in sorted(cases)]
        starts.update(spellings)
    return starts


def needles(filters: Filters) -> tuple[bytes, ...] | None:
    r"""Byte strings at least one of which every matching line contains; None: no such set.

    A JSON string value either appears raw (its UTF-8 bytes) or holds an escape of one
    of its characters. Letters, digits and most punctuation can only be escaped as
    ``\uXXXX``, so such a value is paired with the starts of its characters' escapes
    (`_escape_starts`: ``alice`` gives ``\u006``); escaping the key (``\u0075ser``)
    changes nothing, as the value is still raw or escaped. A value holding ``/`` or a
    character JSON must escape (quote, backslash, control characters) gets ``b"\\"``
    and, for the latter, nothing else. ``--grep`` is a raw substring, so it is its own
    exact needle and preferred. `candidate_lines` looks for every needle that starts
    with a backslash in one pass.
    """
    if filters.grep:
        return (filters.grep.encode(),)
    # The quote marks bound a raw value: an exact user is b'"U"', a type prefix b'"T'.
    groups = ((filters.users, "both"), (filters.containers, ""), (filters.types, "open"))
    for group, quote in groups:
        if not group:
            continue
        found: set[bytes] = set()
        escapes: set[bytes] = set()
        for value in group:
            literal = _literal_of(value)
            if not literal:
                return None
            escapes |= _escape_starts(literal.decode())
            if any(c in _SHORT_ESCAPED for c in literal):
                escapes.add(b"\\")
            if any(c < _FIRST_PRINTABLE or c in b'"\\' for c in literal):
                continue
            if quote and "*" not in value:
                literal = b'"' + literal + (b'"' if quote == "both" else b"")
            found.add(literal)
        if b"\\" in escapes:
            escapes = {b"\\"}  # every line with a backslash: the others are among them
        return tuple(sorted(found | escapes))
    return None
