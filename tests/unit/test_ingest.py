"""Datagram validation, logger(1) framing and the rejection report, without a server."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ds01_events.envelope import Event, Origin, encode_line, make_event, strip_logger_header
from watcher.intake.ingest import RejectCounter, RejectedError, parse_datagram

ORIGIN = Origin(uid=1001, gid=1001, pid=4242)


def _line(**kwargs: object) -> bytes:
    return encode_line(make_event("test.ingest", **kwargs))  # type: ignore[arg-type]


def test_origin_comes_from_the_kernel_not_the_claim() -> None:
    """A claimed origin is replaced; a claimed user is kept beside the real origin."""
    event = make_event("test.forged", user="alice")
    event.origin = Origin(uid=0, gid=0, pid=1)
    parsed = parse_datagram(encode_line(event), ORIGIN)
    assert parsed.origin == ORIGIN
    assert parsed.user == "alice"


@pytest.mark.parametrize(
    "header",
    [
        b"<13>Nov 22 03:20:38 vm ds01: ",  # logger --rfc3164 -t ds01
        b"<13>Nov 22 03:20:38 root: ",  # logger's local format
        b'<13>1 2026-11-22T03:20:38.082070+00:00 vm root - - [timeQuality tzKnown="1"] ',
    ],
)
def test_logger_headers_are_stripped(header: bytes) -> None:
    """The syslog headers logger(1) puts before the JSON are removed."""
    line = _line(user="bob")
    assert parse_datagram(header + line.rstrip(b"\n"), ORIGIN).user == "bob"


def test_only_a_well_formed_header_is_stripped() -> None:
    """Text before the JSON without a <PRI> start is invalid, not silently skipped."""
    assert strip_logger_header(b'junk {"a":1}') == b'junk {"a":1}'
    assert strip_logger_header(b'<13x>{"a":1}') == b'<13x>{"a":1}'
    with pytest.raises(RejectedError) as caught:
        parse_datagram(b"junk " + _line(), ORIGIN)
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe\x00binary", "binary"),
        (b'{"event_type":"x"\x00}', "binary"),
        (b"not json at all", "invalid"),
        (b'{"event_type":"Bad Type","timestamp":"x"}', "invalid"),
        (b"{" + b" " * 5000 + b"}", "oversize"),
    ],
)
def test_bad_datagrams_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    """Binary, invalid and oversize input each raise RejectedError with their reason."""
    with pytest.raises(RejectedError) as caught:
        parse_datagram(data, ORIGIN)
    assert caught.value.reason == reason


@given(st.binary(max_size=5000))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    """Whatever arrives, parse_datagram returns an event or raises RejectedError."""
    try:
        event = parse_datagram(data, ORIGIN)
    except RejectedError:
        return
    assert event.origin == ORIGIN


def test_one_report_per_window_with_counts_and_uids() -> None:
    """Rejections in a window become one ingest.rejected event with counts and uids."""
    now = [0.0]
    sent: list[Event] = []
    counter = RejectCounter(lambda e: sent.append(e) is None, 60.0, clock=lambda: now[0])
    counter.add("binary", 1001)
    counter.add("binary", 1002)
    counter.add("oversize", 1001)
    assert not counter.tick()
    now[0] = 61.0
    assert counter.tick()
    assert not counter.tick(force=True)  # nothing new
    assert len(sent) == 1
    details = msgspec.to_builtins(sent[0])["details"]
    assert details == {
        "window_seconds": 61.0,
        "counts": {"binary": 2, "oversize": 1},
        "uids": {"1001": 2, "1002": 1},
    }
    assert sent[0].event_type == "ingest.rejected"


def test_a_datagram_nesting_1000_deep_is_rejected_not_raised() -> None:
    """The 2.2 KB `[`x1000 datagram is a too_deep reject, not a RecursionError."""
    line = _line().rstrip(b"\n")
    data = line.replace(b'"host"', b'"details":{"a":' + b"[" * 1000 + b"]" * 1000 + b'},"host"')
    with pytest.raises(RejectedError) as caught:
        parse_datagram(data, ORIGIN)
    assert caught.value.reason == "too_deep"


@pytest.mark.parametrize(
    ("event_type", "source", "reason"),
    [
        ("watcher.start", None, "reserved_type"),
        ("watcher.stop", "ds01-watcher", "reserved_type"),
        ("container.start", "mallory.sh", "reserved_type"),
        ("detection.host_gpu_process", None, "reserved_type"),
        ("monitoring.dcgm_restart", None, "reserved_type"),
        ("ingest.rejected", None, "reserved_type"),
        ("resource.oom_kill", None, "reserved_type"),
        ("maintenance.cleanup", "ds01-watcher", "reserved_source"),
        ("maintenance.cleanup", " DS01-Watcher\t", "reserved_source"),
    ],
)
def test_watcher_only_types_and_source_are_refused(
    event_type: str, source: str | None, reason: str
) -> None:
    """Nothing a client sends may pose as the watcher's own record."""
    data = encode_line(make_event(event_type, source=source))
    with pytest.raises(RejectedError) as caught:
        parse_datagram(data, ORIGIN)
    assert caught.value.reason == reason


def test_scripts_keep_gpu_allocate_under_their_own_source() -> None:
    """An allocator script's gpu.allocate is taken, with its source and the real origin."""
    event = parse_datagram(encode_line(make_event("gpu.allocate", source="alloc.sh")), ORIGIN)
    assert (event.event_type, event.source, event.origin) == ("gpu.allocate", "alloc.sh", ORIGIN)


@pytest.mark.parametrize(
    ("claimed", "kept"),
    [
        (" " * 200 + "alice", "alice"),
        ("alice" + " " * 200, "alice"),
        ("al\x1b[31mice\u202e", "al[31mice"),
        ("a" * 250, "a" * 64),
        ("\t\n\u200b", None),
        ("bob smith", "bob smith"),
    ],
)
def test_a_claimed_user_is_trimmed_and_bounded(claimed: str, kept: str | None) -> None:
    """Whitespace and control/format characters go; at most 64 characters stay."""
    event = parse_datagram(encode_line(make_event("test.x", user=claimed)), ORIGIN)
    assert event.user == kept


def test_a_claimed_client_timestamp_detail_is_dropped() -> None:
    """Only the watcher writes details.client_timestamp."""
    data = encode_line(make_event("test.x", details={"client_timestamp": "2020"}))
    assert "client_timestamp" not in parse_datagram(data, ORIGIN).details
