"""Lines no reader can be made to die on, and claims --summary never counts as fact."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from ds01_query.cli import runner
from ds01_query.engine import decoding
from ds01_query.engine.decoding import EventDecoder

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
GOOD = [
    '{"timestamp":"2026-12-01T11:00:00.000000Z","event_type":"container.start","user":"a"}',
    '{"timestamp":"2026-12-01T11:30:00.000000Z","event_type":"container.stop","user":"a"}',
]
# What a user could have sent through the old watcher: accepted and logged, 990 deep.
DEEP = (
    '{"timestamp":"2026-12-01T11:10:00.000000Z","event_type":"user.note","user":"a",'
    '"details":{"k":' + "[" * 990 + "]" * 990 + "}}"
)
DEEPER = '{"user":"a","x":' + "[" * 5000 + "]" * 5000 + "}"

MODES = [
    pytest.param({}, id="default-view"),
    pytest.param({"json": True, "all": True}, id="json-all"),
    pytest.param({"users": ("a",), "all": True}, id="user-table"),
    pytest.param({"users": ("a",), "json": True, "all": True}, id="user-json"),
    pytest.param({"since": "2 hours ago", "json": True, "all": True}, id="since"),
    pytest.param({"since": "2 hours ago"}, id="since-default-view"),
    pytest.param({"grep": "user", "json": True, "all": True}, id="grep"),
    pytest.param({"summary": True}, id="summary"),
    pytest.param({"summary": True, "users": ("a",)}, id="summary-user"),
]


@pytest.fixture(params=["live", "rotated-gz", "rotated-plain"])
def deep_log(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A log whose deep lines sit in the live file or in a rotated copy."""
    body = "\n".join([GOOD[0], DEEP, DEEPER, GOOD[1]]) + "\n"
    live = tmp_path / "events.jsonl"
    if request.param == "live":
        live.write_text(body, encoding="utf-8")
    else:
        if request.param == "rotated-gz":
            with gzip.open(tmp_path / "events.jsonl.1.gz", "wt", encoding="utf-8") as out:
                out.write(body)
        else:
            (tmp_path / "events.jsonl.1").write_text(body, encoding="utf-8")
        live.write_text("", encoding="utf-8")
    return live


@pytest.mark.parametrize("options", MODES)
def test_deep_lines_are_malformed_in_every_mode(deep_log: Path, options: dict[str, object]) -> None:
    """A line nested 990 (or 5,000) deep is skipped and counted, never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    request = runner.QueryRequest(files=(str(deep_log),), **options)  # type: ignore[arg-type]
    streams = runner.Streams(out, err, {"HOME": str(deep_log.parent / "home")}, timezone.utc)
    assert runner.run_query(request, streams, now=NOW) == 0
    if options.get("summary"):
        assert "total: 3" in out.getvalue() or "total: 2" in out.getvalue()
        return
    assert "skipped 2 malformed line(s)" in err.getvalue()
    if options.get("json"):
        assert [json.loads(x)["timestamp"] for x in out.getvalue().splitlines()] == [
            json.loads(g)["timestamp"] for g in GOOD
        ]


def test_verify_names_a_deep_line(deep_log: Path) -> None:
    """Verify reports each deep line as a problem and finishes."""
    out, err = io.StringIO(), io.StringIO()
    streams = runner.Streams(out, err, {}, timezone.utc)
    assert runner.run_verify([str(deep_log)], streams) == 1
    assert out.getvalue().count("nested too deep") == 2


def test_nesting_is_counted_outside_strings_only() -> None:
    """Brackets inside strings, escaped quotes included, do not count as nesting."""
    nesting_exceeds, limit = decoding.nesting_exceeds, decoding.MAX_NESTING
    inside = '{"a":"' + "[" * 500 + '\\"' + "{" * 500 + '"}'
    assert not nesting_exceeds(inside.encode())
    at_limit = "[" * limit + "]" * limit
    assert not nesting_exceeds(at_limit.encode())
    assert nesting_exceeds(("[" + at_limit + "]").encode())
    inner = "[" * (limit - 1) + "]" * (limit - 1)  # in an object: at the limit
    assert EventDecoder()(('{"a":' + inner + "}").encode()) == {"a": json.loads(inner)}
    assert EventDecoder()(('{"a":' + at_limit + "}").encode()) is None


def test_every_decoder_refuses_deep_and_long_lines() -> None:
    """Both decoders give None for a line too deep or too long, whatever else it holds."""
    long_line = ('{"a":"' + "x" * (70 << 10) + '"}').encode()
    for decoder in (EventDecoder(), EventDecoder(cheap_lines=0)):
        assert decoder(DEEP.encode()) is None
        assert decoder(DEEPER.encode()) is None
        assert decoder(long_line) is None
        assert decoder(GOOD[0].encode()) is not None


CLAIMS = [
    # nobody (65534) claims to be alice: a claim, never a fact
    {"event_type": "job.submit", "user": "alice", "origin": {"uid": 65534}},
    # nobody under its own name: the kernel vouches for it
    {"event_type": "job.submit", "user": "nobody", "origin": {"uid": 65534}},
    # the watcher's own event, and one from root's wrapper acting for carol
    {"event_type": "container.start", "user": "bob"},
    {"event_type": "job.submit", "user": "carol", "origin": {"uid": 0}},
    {"event_type": "job.submit", "user": "alice", "origin": {"uid": 65534}},
]


@pytest.mark.parametrize("options", [{}, {"types": ("job", "container")}], ids=["fast", "filtered"])
def test_summary_counts_claimed_users_apart(tmp_path: Path, options: dict[str, object]) -> None:
    """A user only claimed by a sender is counted under the claims, not by user."""
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"timestamp": f"2026-12-01T11:0{i}:00.000000Z", **event})
        for i, event in enumerate(CLAIMS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    request = runner.QueryRequest(files=(str(path),), summary=True, **options)  # type: ignore[arg-type]
    streams = runner.Streams(out, err, {"HOME": str(tmp_path / "home")}, timezone.utc)
    assert runner.run_query(request, streams, now=NOW) == 0
    text = out.getvalue()
    by_user = text.split("by user:\n", 1)[1].split("claimed by the sender, not attested:\n")
    attested, claimed = by_user[0], by_user[1].split("per day:")[0]
    assert sorted(attested.split()) == sorted(["1", "bob", "1", "carol", "1", "nobody"])
    assert claimed.split() == ["2", "alice", "(sent", "by", "nobody)"]
