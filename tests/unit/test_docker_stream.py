"""Event-stream parsing from byte chunks, keys, since and de-duplication."""

from __future__ import annotations

import json
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from watcher.docker.stream import (
    ChunkDecoder,
    EventKey,
    SeenKeys,
    base_action,
    event_key,
    since_arg,
)

EVENTS = [
    {
        "Type": "container",
        "Action": "create",
        "Actor": {"ID": "a" * 64, "Attributes": {}},
        "time": 1,
        "timeNano": 1_000_000_001,
    },
    {
        "Type": "container",
        "Action": "exec_start: sh -c 'echo é'",
        "Actor": {"ID": "b" * 64, "Attributes": {"name": "ü"}},
        "timeNano": 1_000_000_002,
    },
]
STREAM = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in EVENTS)


def test_whole_events_in_one_chunk():
    """Several events in one chunk all come out, in order."""
    assert ChunkDecoder().feed(STREAM) == EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=8))
def test_any_split_gives_the_same_events(cuts):
    """However the HTTP layer cuts the stream (even inside a UTF-8 character), the events match."""
    bounds = sorted({0, len(STREAM), *cuts})
    decoder = ChunkDecoder()
    got = []
    for start, end in pairwise(bounds):
        got.extend(decoder.feed(STREAM[start:end]))
    assert got == EVENTS


def test_garbage_line_is_skipped_and_counted():
    """A line that is not a JSON object is skipped and counted; the next event survives."""
    decoder = ChunkDecoder()
    got = decoder.feed(b"not json\n[1]\n" + STREAM)
    assert got == EVENTS
    assert decoder.skipped == 2


def test_key_and_base_action():
    """The key is (timeNano, Actor.ID, Action); text after a colon is not part of the action."""
    assert event_key(EVENTS[0]) == EventKey(1_000_000_001, "a" * 64, "create")
    assert base_action(EVENTS[1]["Action"]) == "exec_start"
    assert event_key({"Action": "x"}) is None


def test_since_keeps_nanoseconds():
    """The since argument is "sec.nanos" with 9 digits, never rounded to seconds."""
    assert since_arg(1_795_317_630_000_000_042) == "1795317630.000000042"


def test_seen_keys_bounded():
    """A repeated key is refused; the oldest keys are forgotten beyond the bound."""
    seen = SeenKeys(limit=2)
    first = EventKey(1, "a", "start")
    assert seen.add(first)
    assert not seen.add(first)
    seen.add(EventKey(2, "a", "die"))
    seen.add(EventKey(3, "a", "destroy"))
    assert first not in seen
    assert len(seen) == 2
