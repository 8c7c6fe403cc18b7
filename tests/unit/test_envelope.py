"""The envelope: field rules, fixed-width timestamps, the 4096-byte line bound."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ds01_events.envelope import (
    MAX_LINE_BYTES,
    InvalidEvent,
    decode_client_line,
    decode_line,
    encode_line,
    make_event,
    nesting_exceeds,
    parse_timestamp,
    strip_logger_header,
    to_dict,
    utc_timestamp,
)

_leaves = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text()
# Detail values nest at most four levels (MAX_NESTING counts the envelope and details).
json_values = _leaves
for _ in range(4):
    json_values = (
        _leaves
        | st.lists(json_values, max_size=3)
        | st.dictionaries(st.text(max_size=8), json_values, max_size=3)
    )
names = st.text(min_size=1, max_size=40)
types = st.from_regex(r"[a-z0-9_]{1,8}(\.[a-z0-9_]{1,8}){1,2}", fullmatch=True)


@settings(max_examples=300)
@given(
    types,
    st.none() | names,
    st.none() | names,
    st.dictionaries(st.text(max_size=20), json_values, max_size=6),
)
def test_round_trip(event_type, user, source, details):
    """Any valid event decodes back to the same fields, and json agrees with msgspec."""
    event = make_event(event_type, user=user, source=source, details=details)
    line = encode_line(event)
    assert line.endswith(b"\n")
    assert len(line) <= MAX_LINE_BYTES
    assert b"\n" not in line[:-1]
    back = decode_line(line)
    if "_truncated" not in back.details:
        assert back == event
    assert json.loads(line) == to_dict(back)


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.text(max_size=10), st.text(min_size=500, max_size=3000), min_size=1, max_size=8
    )
)
def test_oversize_lines_are_shortened_not_dropped(details):
    """Over 4096 bytes: largest values shortened, _truncated set, envelope intact."""
    event = make_event("container.create", user="alice", details=details)
    line = encode_line(event)
    assert len(line) <= MAX_LINE_BYTES
    back = decode_line(line)
    assert (back.event_type, back.user, back.id) == ("container.create", "alice", event.id)
    raw = len(msgspec.json.encode(event)) + 1
    assert ("_truncated" in back.details) == (raw > MAX_LINE_BYTES)


def test_multibyte_values_are_cut_on_character_boundaries():
    """Truncating text of 3- and 4-byte characters leaves valid UTF-8."""
    event = make_event("a.b", details={"cmd": "漢🎉" * 2000})
    line = encode_line(event)
    assert len(line) <= MAX_LINE_BYTES
    assert decode_line(line).details["_truncated"] is True
    line.decode("utf-8")


def test_timestamp_has_six_digits_at_zero_microseconds():
    """A time at exactly 0 µs still has .000000Z (isoformat would drop it)."""
    whole = datetime(2026, 11, 22, 2, 54, 43, tzinfo=timezone.utc)
    assert utc_timestamp(whole) == "2026-11-22T02:54:43.000000Z"
    assert utc_timestamp(0.0) == "1970-01-01T00:00:00.000000Z"
    assert parse_timestamp(utc_timestamp(whole)) == whole


def test_now_is_fixed_width_utc():
    """The default timestamp is UTC, 27 characters, and sorts as text."""
    first, second = utc_timestamp(), utc_timestamp()
    assert len(first) == 27
    assert first.endswith("Z")
    assert first <= second


def test_naive_datetime_is_refused():
    """A timezone-less datetime is an error, never silently local time."""
    with pytest.raises(InvalidEvent, match="timezone"):
        utc_timestamp(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize("bad", ["Container.start", "start", "a..b", "a.b-c", "", None, 3])
def test_bad_event_types_are_refused(bad):
    """event_type must be lower-case category.action."""
    with pytest.raises(InvalidEvent, match=r"category\.action"):
        make_event(bad)


def test_empty_fields_are_omitted_and_strings_stay_strings():
    """user/source/details vanish when empty; a numeric user stays text."""
    line = encode_line(make_event("a.b", user="", source=None))
    obj = json.loads(line)
    assert set(obj) == {"timestamp", "event_type", "schema_version", "host", "id"}
    obj = json.loads(encode_line(make_event("a.b", user=248835, details={"slot": "1.10"})))
    assert obj["user"] == "248835"
    assert obj["details"]["slot"] == "1.10"


def test_non_json_values_become_strings():
    """Paths, bytes and other objects are stored as text; tuples as lists."""
    from pathlib import Path

    obj = json.loads(
        encode_line(make_event("a.b", details={"p": Path("/x"), "b": b"\xffok", "t": (1, 2)}))
    )
    assert obj["details"] == {"p": "/x", "b": "\ufffdok", "t": [1, 2]}


def test_field_order_matches_the_design():
    """Lines start with timestamp and event_type, end with host and id."""
    keys = list(json.loads(encode_line(make_event("a.b", user="u", source="s", details={"k": 1}))))
    assert keys == [
        "timestamp",
        "event_type",
        "schema_version",
        "user",
        "source",
        "details",
        "host",
        "id",
    ]


def test_client_cannot_claim_an_origin():
    """A datagram's origin is dropped; only the watcher stamps it."""
    line = encode_line(make_event("a.b")).strip()
    forged = line[:-1] + b',"origin":{"uid":0,"pid":1}}'
    assert decode_client_line(forged).origin is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff",
        b"[]",
        b'{"event_type":"a.b"}',
        b'{"timestamp":"x","event_type":"a.b","schema_version":"1","host":"h","id":"0"}',
    ],
)
def test_client_garbage_is_rejected_with_a_reason(data):
    """Anything that is not a full schema-1 envelope raises InvalidEvent."""
    with pytest.raises(InvalidEvent):
        decode_client_line(data)


def test_logger_header_is_stripped_only_when_well_formed():
    """logger(1)'s syslog header is removed; other bytes are left alone."""
    body = b'{"a":1}'
    assert strip_logger_header(b"<13>Nov 22 03:20:23 root: " + body) == body
    assert strip_logger_header(body) == body
    assert strip_logger_header(b"<13>no json here") == b"<13>no json here"


@pytest.mark.parametrize("depth", [5, 990, 1000, 100_000])
def test_deep_nesting_is_refused_before_decoding(depth):
    """A details value nested deeper than 4 levels is an InvalidEvent, never RecursionError."""
    line = encode_line(make_event("a.b")).strip()
    deep = b"[" * depth + b"]" * depth
    data = line.replace(b'"host"', b'"details":{"a":' + deep + b'},"host"')
    with pytest.raises(InvalidEvent) as caught:
        decode_client_line(data)
    assert caught.value.reason == "too_deep"


def test_four_levels_and_brackets_in_strings_are_fine():
    """Four levels inside a detail, and any number of brackets inside strings, decode."""
    event = make_event("a.b", details={"a": [[[{"b": 1}]]], "s": "[{" * 100})
    assert decode_client_line(encode_line(event).strip()).details == event.details


def test_make_event_refuses_what_the_watcher_would():
    """A caller nesting a detail 5 levels deep hears about it at the call."""
    with pytest.raises(InvalidEvent, match="nests deeper"):
        make_event("a.b", details={"a": [[[[[1]]]]]})


def _depth(value):
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300)
@given(
    st.recursive(
        st.none() | st.integers() | st.text(alphabet='[]{}"\\ab'),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=20,
    )
)
def test_the_nesting_scan_agrees_with_the_real_depth(value):
    """Whatever brackets and quotes hide in strings, the scan measures the real nesting."""
    data = json.dumps(value).encode()
    for limit in (1, 3, 6):
        assert nesting_exceeds(data, limit) == (_depth(value) > limit)
