"""``--summary``: total, time range, counts by type, by user and per local day.

Users are counted apart by what vouches for them: ``by_user`` holds the names the
watcher (or root) attests, and the sender's own; ``claimed`` the names a sender gave
for someone else (``alice (sent by bob)``), never counted as fact (`claimed_user`).

With no filters, lines are decoded a chunk at a time into a small Struct (only the
fields counted) and counted with C-level Counter updates; otherwise the matching
events from the engine are counted one by one. Both give the same numbers.
"""

from __future__ import annotations

import functools
import pwd
from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import msgspec

from ds01_query.engine import reader
from ds01_query.engine.dates import date, datetime, timezone, tzinfo
from ds01_query.engine.query import Obj, claimed_user, event_type, event_user, parse_event_time
from ds01_query.scan.search import ScanStats, decode_event

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ds01_query.engine.reader import StrPath

NO_USER = "(none)"
NO_TYPE = "(none)"


class _Counted(msgspec.Struct):
    """The fields a summary counts; anything else in the line is skipped unread."""

    timestamp: Any = None
    ts: Any = None
    event_type: Any = None
    event: Any = None
    user: Any = None
    origin: Any = None


@functools.lru_cache(maxsize=1024)
def account_name(uid: int) -> str:
    """The login name of ``uid`` (``uid N`` when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return f"uid {uid}"


def _claim_key(user: str, sender: str) -> str:
    return f"{user} (sent by {sender})"


_one_decoder = msgspec.json.Decoder(_Counted)
_HOUR = 13  # len("2026-11-22T02")
_MINUTE = 16  # len("2026-11-22T02:54")
_BATCH = 65536
_GROUP = 128  # lines decoded together once a chunk holds a malformed line
_FIXED = 27  # len("2026-11-22T02:54:43.774116Z")


@dataclass
class Summary:
    """Counts over the matching events. Buckets are UTC hour (or minute) prefixes."""

    total: int = 0
    first: datetime | None = None
    last: datetime | None = None
    by_type: Counter[str] = field(default_factory=Counter)
    by_user: Counter[str] = field(default_factory=Counter)
    claimed: Counter[str] = field(default_factory=Counter)
    buckets: Counter[str] = field(default_factory=Counter)
    untimed: int = 0

    def per_day(self, local: tzinfo | None) -> dict[date, int]:
        """Events per local calendar day."""
        days: Counter[date] = Counter()
        for bucket, count in self.buckets.items():
            start = datetime.fromisoformat(bucket if len(bucket) > _HOUR else bucket + ":00")
            when = start.replace(tzinfo=timezone.utc).astimezone(local)
            days[when.date()] += count
        return dict(sorted(days.items()))


def _bucket_width(local: tzinfo | None) -> int:
    offset = datetime.now(timezone.utc).astimezone(local).utcoffset()
    whole_hours = offset is None or offset.total_seconds() % 3600 == 0
    return _HOUR if whole_hours else _MINUTE


def _add_times(summary: Summary, stamps: Iterable[Any], width: int) -> None:
    fixed: list[str] = []
    for stamp in stamps:
        if isinstance(stamp, str) and len(stamp) == _FIXED and stamp.endswith("Z"):
            fixed.append(stamp)
            continue
        when = parse_event_time(stamp)
        if when is None:
            summary.untimed += 1
            continue
        _widen(summary, when)
        summary.buckets[when.strftime("%Y-%m-%dT%H:%M")[:width]] += 1
    if fixed:
        summary.buckets.update(map(itemgetter(slice(0, width)), fixed))
        _widen(summary, parse_event_time(min(fixed)))
        _widen(summary, parse_event_time(max(fixed)))


def _widen(summary: Summary, when: datetime | None) -> None:
    if when is None:
        return
    if summary.first is None or when < summary.first:
        summary.first = when
    if summary.last is None or when > summary.last:
        summary.last = when


def summarize_events(events: Iterable[Obj], local: tzinfo | None = None) -> Summary:
    """Count already matched events (the filtered path)."""
    summary = Summary()
    width = _bucket_width(local)
    stamps: list[Any] = []
    for obj in events:
        summary.total += 1
        summary.by_type[event_type(obj) or NO_TYPE] += 1
        claim = claimed_user(obj, account_name)
        if claim is None:
            summary.by_user[event_user(obj) or NO_USER] += 1
        else:
            summary.claimed[_claim_key(*claim)] += 1
        stamp = obj.get("timestamp")
        stamps.append(stamp if stamp is not None else obj.get("ts"))
        if len(stamps) >= _BATCH:
            _add_times(summary, stamps, width)
            stamps.clear()
    _add_times(summary, stamps, width)
    return summary


def _decode_chunk(chunk: bytes, path: StrPath, stats: ScanStats) -> list[_Counted]:
    lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    try:
        batch = _one_decoder.decode_lines(chunk)
        if len(batch) == lines:
            return batch
    except Exception:  # noqa: S110 - any line it cannot take: counted line by line below
        pass
    # Some line is not one object. Decode groups of lines; only a group holding such a
    # line is counted line by line, as the filtered path does, so a few malformed
    # lines in every chunk do not send the whole file down the slow path.
    rows = chunk.split(b"\n")
    if rows and not rows[-1]:
        rows.pop()
    good: list[_Counted] = []
    for first in range(0, len(rows), _GROUP):
        group = rows[first : first + _GROUP]
        try:
            batch = _one_decoder.decode_lines(b"\n".join(group))
        except Exception:
            batch = []
        if len(batch) == len(group):
            good.extend(batch)
        else:
            good.extend(_one_by_one(group, path, stats))
    return good


def _one_by_one(group: list[bytes], path: StrPath, stats: ScanStats) -> list[_Counted]:
    """Decode lines one at a time, as the filtered path does; count the malformed."""
    good: list[_Counted] = []
    for line in group:
        if not line.strip():
            continue
        if decode_event(line) is None:
            stats.note_malformed(path)
            continue
        try:
            good.append(_one_decoder.decode(line))
        except Exception:
            stats.note_malformed(path)
    return good


def summarize_files(
    files: Sequence[StrPath], stats: ScanStats, local: tzinfo | None = None
) -> Summary:
    """Count every event in ``files`` (the unfiltered fast path)."""
    summary = Summary()
    width = _bucket_width(local)
    for path in files:
        for chunk in reader.iter_chunks(path):
            batch = _decode_chunk(chunk, path, stats)
            summary.total += len(batch)
            types = Counter(map(attrgetter("event_type"), batch))
            users = Counter(map(attrgetter("user"), batch))
            for name, count in types.items():
                if isinstance(name, str):
                    summary.by_type[name] += count
            for name, count in users.items():
                summary.by_user[name if isinstance(name, str) and name else NO_USER] += count
            if len(types) != sum(isinstance(n, str) for n in types):
                for item in batch:
                    if not isinstance(item.event_type, str):
                        kind = item.event if isinstance(item.event, str) else NO_TYPE
                        summary.by_type[kind] += 1
            if any(map(attrgetter("origin"), batch)):  # a C loop: most chunks have no sender
                _move_claims(summary, [i for i in batch if i.origin])
            stamps = [i.timestamp if i.timestamp is not None else i.ts for i in batch]
            _add_times(summary, stamps, width)
    summary.by_user = +summary.by_user  # drop the names every count of which was a claim
    return summary


def _move_claims(summary: Summary, sent: list[_Counted]) -> None:
    """Move the users that senders only claim from ``by_user`` to ``claimed``."""
    for item in sent:
        claim = claimed_user({"user": item.user, "origin": item.origin}, account_name)
        if claim is not None:
            summary.by_user[claim[0]] -= 1
            summary.claimed[_claim_key(*claim)] += 1
