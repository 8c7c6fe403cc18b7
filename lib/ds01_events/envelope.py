"""The one event envelope (schema_version "1"): build, encode to one line, decode.

A line is compact UTF-8 JSON of at most ``MAX_LINE_BYTES`` including the newline.
Field order on disk: timestamp, event_type, schema_version, user, source, details,
host, id, origin. ``user``, ``source``, ``details`` and ``origin`` are omitted when
empty. ``origin`` is stamped by the watcher from kernel-attested credentials only:
`make_event` does not take it and `decode_client_line` drops it.
"""

from __future__ import annotations

import os
import re
import socket
import time
from datetime import datetime, timezone
from typing import Any

import msgspec

SCHEMA_VERSION = "1"
MAX_LINE_BYTES = 4096
# user and source are short names; bounding them guarantees truncation of details
# alone can always bring a line under MAX_LINE_BYTES.
MAX_NAME_CHARS = 256

_EVENT_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_ID = re.compile(r"[0-9a-f]{32}")
# logger(1): "<13>Nov 22 03:20:00 host tag: " (RFC 3164) or "<13>1 2026-... - - [sd] "
# (RFC 5424). A header is printable ASCII without "{"; the JSON starts at the first "{".
_LOGGER_HEADER = re.compile(rb"<\d{1,3}>[\x20-\x7a\x7c-\x7e]{0,512}(?=\{)")
_JSON_TYPES = (str, int, float, bool, type(None), list, dict)
# The envelope object, its details object and four levels inside a detail value: all
# a real event needs. Deeper input is refused before decoding, whose recursion would
# otherwise end the thread that reads it (RecursionError near 1000 levels).
MAX_NESTING = 6
# A JSON string (escapes included) and the bytes that are neither brackets nor quotes.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: 4x faster
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# The name of the detail that keeps a client's own time when the watcher stamps its own.
CLIENT_TIMESTAMP = "client_timestamp"
# The detail that keeps a client's id when it reused one already in the log.
CLIENT_ID = "client_id"


class InvalidEvent(ValueError):
    """An event that cannot be recorded as given; the message says what to fix.

    ``reason`` is the short name the watcher counts it under.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class Origin(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who really sent an event, as the kernel reported it to the watcher."""

    uid: int
    gid: int | None = None
    pid: int | None = None


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One audit event. Build with `make_event`; encode with `encode_line`."""

    timestamp: str
    event_type: str
    schema_version: str
    user: str | None = None
    source: str | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    host: str
    id: str
    origin: Origin | None = None


_encoder = msgspec.json.Encoder(enc_hook=str)
_decoder = msgspec.json.Decoder(Event)


def utc_timestamp(when: datetime | float | None = None) -> str:
    """UTC, always 6 fractional digits and ``Z`` (fixed width: sorts as text).

    ``datetime.isoformat()`` drops the fraction when microseconds are 0, so the
    format is spelled out.
    """
    if when is None:
        ns = time.time_ns()
        secs, micros = divmod(ns // 1000, 1_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{micros:06d}Z"
    if isinstance(when, datetime):
        if when.tzinfo is None:
            msg = "naive datetime: give a timezone-aware time so it can be stored as UTC"
            raise InvalidEvent(msg)
        return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime:
    """The aware UTC datetime of an envelope timestamp (also accepts offsets)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


_HOST = socket.gethostname()


def new_id() -> str:
    """32 hex digits, unique enough for de-duplication in a central store."""
    return os.urandom(16).hex()


def check_event_type(event_type: object) -> str:
    """Return ``event_type`` if it is ``category.action``; raise InvalidEvent if not."""
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        msg = (
            f"event type {event_type!r} is not category.action: use lower-case"
            " [a-z0-9_] parts joined by dots, e.g. container.start"
        )
        raise InvalidEvent(msg)
    return event_type


def _check_name(field: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        # A numeric user name (uid-like "248835") must stay text, never a number.
        value = str(value)
    if len(value) > MAX_NAME_CHARS:
        msg = f"{field} is {len(value)} characters; at most {MAX_NAME_CHARS} are allowed"
        raise InvalidEvent(msg)
    return value


def _plain(value: object) -> object:
    """A detail value as JSON can hold it: JSON types kept, anything else as text."""
    if isinstance(value, _JSON_TYPES):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _nests_within(value: object, levels: int) -> bool:
    if isinstance(value, dict):
        return levels > 0 and all(_nests_within(v, levels - 1) for v in value.values())
    if isinstance(value, list):
        return levels > 0 and all(_nests_within(v, levels - 1) for v in value)
    return True


def make_event(
    event_type: str,
    *,
    user: object = None,
    source: object = None,
    details: dict[str, Any] | None = None,
    timestamp: str | None = None,
    host: str | None = None,
    event_id: str | None = None,
) -> Event:
    """Build a validated event; raise InvalidEvent with a one-line reason if it is not."""
    check_event_type(event_type)
    clean: dict[str, Any] = {}
    for key, value in (details or {}).items():
        clean[str(key)] = _plain(value)
        # The watcher refuses deeper values: say so here, where the call can be fixed.
        if not _nests_within(clean[str(key)], MAX_NESTING - 2):
            msg = f"detail {key!r} nests deeper than {MAX_NESTING - 2} levels of lists/objects"
            raise InvalidEvent(msg, reason="too_deep")
    if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):
        msg = f"timestamp {timestamp!r} is not UTC with 6 fractional digits and Z"
        raise InvalidEvent(msg)
    return Event(
        timestamp=timestamp or utc_timestamp(),
        event_type=event_type,
        schema_version=SCHEMA_VERSION,
        user=_check_name("user", user),
        source=_check_name("source", source),
        details=clean,
        host=host or _HOST,
        id=event_id or new_id(),
    )


def _shorten(value: object, excess: int) -> str:
    """Cut ``value``'s text by at least ``excess`` encoded bytes, on a character boundary."""
    text = value if isinstance(value, str) else _encoder.encode(value).decode()
    raw = text.encode()
    # Escapes can make the JSON form longer than the raw text: cut generously.
    keep = max(0, len(raw) - excess - 16)
    return raw[:keep].decode("utf-8", "ignore") + "…"


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _valid(value: Any) -> Any:
    if isinstance(value, str):
        return _replace_surrogates(value)
    if isinstance(value, dict):
        return {_replace_surrogates(str(k)): _valid(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid(v) for v in value]
    return value


def valid_text(event: Event) -> Event:
    """The event with every surrogate in its text replaced by U+FFFD (one per byte).

    Text read from a command line, a file name or the environment holds the bytes that
    are not UTF-8 as lone surrogates (Python's surrogateescape), which UTF-8 cannot
    encode: replacing them keeps the event (and a valid line) instead of losing it.
    """
    return msgspec.structs.replace(
        event,
        user=None if event.user is None else _replace_surrogates(event.user),
        source=None if event.source is None else _replace_surrogates(event.source),
        details=_valid(event.details),
    )


def encode_line(event: Event) -> bytes:
    """The event as one line, newline included, never over MAX_LINE_BYTES.

    Oversized events keep their envelope: the largest detail values are shortened
    and ``details["_truncated"]`` is set.
    """
    try:
        line = _encoder.encode(event)
    except UnicodeEncodeError:
        event = valid_text(event)
        line = _encoder.encode(event)
    if len(line) < MAX_LINE_BYTES:
        return line + b"\n"
    details = dict(event.details)
    details["_truncated"] = True
    while True:
        candidate = msgspec.structs.replace(event, details=details)
        line = _encoder.encode(candidate)
        excess = len(line) + 1 - MAX_LINE_BYTES
        if excess <= 0:
            return line + b"\n"
        sizes = {k: len(_encoder.encode(v)) for k, v in details.items() if k != "_truncated"}
        if not sizes:  # unreachable while names are bounded; never emit an oversize line
            msg = "event envelope alone exceeds the line limit"
            raise InvalidEvent(msg)
        largest = max(sizes, key=sizes.__getitem__)
        if sizes[largest] <= excess + 8:
            details[largest] = "…"
            if sizes[largest] <= 5:  # noqa: PLR2004 - already minimal: drop the key
                del details[largest]
        else:
            details[largest] = _shorten(details[largest], excess)


def decode_line(line: bytes | str) -> Event:
    """Decode one stored line (schema 1). Raises msgspec.DecodeError/ValidationError."""
    return _decoder.decode(line)


def nesting_exceeds(data: bytes, limit: int = MAX_NESTING) -> bool:
    """Tell whether brackets in ``data`` (outside JSON strings) nest deeper than ``limit``.

    Cheap for ordinary lines: few brackets cannot nest deeply, so most lines need no
    scan at all. Unbalanced input may be reported as too deep; it is not JSON anyway.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    skeleton = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    # Each round removes the innermost pairs, so an empty skeleton after ``limit``
    # rounds means nothing nests deeper than that.
    for _ in range(limit):
        skeleton = _INNERMOST.sub(b"", skeleton)
        if not skeleton:
            return False
    return True


def decode_client_line(data: bytes) -> Event:
    """Decode and validate an event a client sent; its ``origin`` claim is discarded.

    Raises InvalidEvent with a one-line reason, and nothing else, whatever ``data`` is.
    """
    if nesting_exceeds(data):
        msg = f"nested deeper than {MAX_NESTING} levels; details values may nest 4 levels"
        raise InvalidEvent(msg, reason="too_deep")
    try:
        event = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        msg = f"not a schema 1 envelope: {exc}"
        raise InvalidEvent(msg) from exc
    except Exception as exc:
        msg = f"cannot decode: {exc!r}"
        raise InvalidEvent(msg) from exc
    check_event_type(event.event_type)
    if event.schema_version != SCHEMA_VERSION:
        msg = f"schema_version {event.schema_version!r} is not {SCHEMA_VERSION!r}"
        raise InvalidEvent(msg)
    if not _TIMESTAMP.fullmatch(event.timestamp):
        msg = f"timestamp {event.timestamp!r} is not UTC with 6 fractional digits and Z"
        raise InvalidEvent(msg)
    if not _ID.fullmatch(event.id):
        msg = f"id {event.id!r} is not 32 lower-case hex digits"
        raise InvalidEvent(msg)
    _check_name("user", event.user)
    _check_name("source", event.source)
    event.origin = None
    return event


def strip_logger_header(data: bytes) -> bytes:
    """The envelope inside a datagram that logger(1) framed (Bash scripts send so).

    Anything that does not start with a well-formed syslog header is returned as is.
    """
    if data[:1] != b"<":
        return data
    match = _LOGGER_HEADER.match(data)
    return data[match.end() :] if match else data


def to_dict(event: Event) -> dict[str, Any]:
    """The event as the plain dict its line decodes to."""
    result: dict[str, Any] = msgspec.json.decode(_encoder.encode(event))
    return result
