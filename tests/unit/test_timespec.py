"""TIMESPEC parsing: every accepted form, in a zone that is not UTC."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ds01_query.engine.timespec import TimespecError, parse_timespec

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-07-15 00:30 in Berlin (UTC+2 in summer) is still the 14th in UTC.
NOW = datetime(2026, 7, 14, 22, 30, tzinfo=timezone.utc)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("today", utc(2026, 7, 14, 22)),
        ("yesterday", utc(2026, 7, 13, 22)),
        ("tomorrow", utc(2026, 7, 15, 22)),
        ("now", NOW),
        ("-1h", utc(2026, 7, 14, 21, 30)),
        ("1h", utc(2026, 7, 14, 21, 30)),
        ("30min ago", utc(2026, 7, 14, 22, 0)),
        ("2 days ago", utc(2026, 7, 12, 22, 30)),
        ("1 week ago", utc(2026, 7, 7, 22, 30)),
        ("@0", utc(1970, 1, 1)),
        ("2026-07-01T12:00:00Z", utc(2026, 7, 1, 12)),
        ("2026-07-01 12:00", utc(2026, 7, 1, 10)),
        ("2026-07-01T12:00:00+05:30", utc(2026, 7, 1, 6, 30)),
        ("2026-01-01", utc(2025, 12, 31, 23)),
    ],
)
def test_forms_in_local_zone(spec: str, expected: datetime) -> None:
    """Each accepted form names the right UTC instant when local time is Berlin."""
    assert parse_timespec(spec, NOW, BERLIN) == expected


def test_today_across_dst_uses_the_days_own_offset() -> None:
    """Local midnight after a DST change takes that day's offset, not now's."""
    now = datetime(2026, 3, 29, 12, tzinfo=timezone.utc)  # Berlin switched to +2 at 01:00 UTC
    assert parse_timespec("today", now, BERLIN) == utc(2026, 3, 28, 23)


@pytest.mark.parametrize(
    "spec",
    [
        "bogus",
        "5 fortnights",
        "2026-13-01",
        "",
        "@x",
        "@1e5",
        "1_0h",
        "@99999999999999",
        "99999999999 weeks",
    ],
)
def test_bad_spec_lists_forms(spec: str) -> None:
    """An unreadable spec raises one message that lists the accepted forms."""
    with pytest.raises(TimespecError) as caught:
        parse_timespec(spec, NOW, BERLIN)
    assert "accepted forms" in str(caught.value)
    assert "\n" not in str(caught.value)


# The grammar of the relative and epoch forms, as regular expressions (ASCII digits).
RELATIVE = re.compile(r"-?\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)(?:\s+ago)?")
EPOCH = re.compile(r"@(-?[0-9]+(?:\.[0-9]+)?)")
UNIT_SECONDS = {"s": 1, "min": 60, "h": 3600, "hours": 3600, "days": 86400, "week": 604800}


def _is_iso(text: str) -> bool:
    # "30530305" is ISO 8601's basic form of 3053-03-05: the absolute forms' own test.
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@given(
    st.lists(
        st.sampled_from(
            [
                "-",
                "@",
                " ",
                "\t",
                "1",
                "30",
                ".",
                "5",
                "h",
                "min",
                "hours",
                "days",
                "week",
                "ago",
                "x",
            ]
        ),
        max_size=7,
    ).map("".join)
)
def test_relative_and_epoch_forms_follow_their_grammar(spec: str) -> None:
    """Whatever the admin types, the hand-written reader agrees with the grammar above."""
    text = spec.strip().lower()
    relative, epoch = RELATIVE.fullmatch(text), EPOCH.fullmatch(text)
    try:
        got: datetime | None = parse_timespec(spec, NOW, BERLIN)
    except TimespecError:
        got = None
    if epoch:
        assert got == datetime.fromtimestamp(float(epoch.group(1)), tz=timezone.utc)
    elif relative and relative.group(2) in UNIT_SECONDS:
        seconds = float(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
        try:
            expected = NOW - timedelta(seconds=seconds)
        except OverflowError:  # before year 1: refused as out of range
            expected = None
        assert got == expected
    elif text not in {"now", "today"} and not _is_iso(text):
        assert got is None
