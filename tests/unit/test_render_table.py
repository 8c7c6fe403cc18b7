"""The event table at a real terminal's width, and escaping for the terminal."""

from __future__ import annotations

import io
import json
import sys
import unicodedata
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from cli_support import Terminal, run

from ds01_query.cli.render import escape, escape_json
from ds01_query.cli.streams import Streams
from ds01_query.cli.table import TableWriter

if TYPE_CHECKING:
    from pathlib import Path

CID = "f" * 64
IMAGE = "registry.example/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"
STOP = {
    "timestamp": "2026-11-22T02:00:00.000000Z",
    "event_type": "container.stop",
    "user": "alice",
    "source": "ds01-watcher",
    "details": {
        "container": "train-resnet._.1001",
        "container_id": CID,
        "image": IMAGE,
        "attributed_by": "label:ds01.user",
        "exit_code": 137,
        "oom": True,
        "signal": 9,
        "reason": "oom",
        "ran_s": 5025.0,
        "gpu_devices": ["0", "1"],
    },
}


def _table(events: list[dict[str, object]], columns: int, *, wide: bool = False) -> str:
    out = Terminal()
    streams = Streams(
        out, io.StringIO(), {"COLUMNS": str(columns), "NO_COLOR": ""}, local=ZoneInfo("UTC")
    )
    TableWriter(streams, wide=wide).write(events)
    return out.getvalue()


@pytest.mark.parametrize("columns", [80, 200])
def test_what_an_admin_looks_for_is_never_cut(columns: int) -> None:
    """At 80 and 200 columns exit code, OOM, signal, reason, run time and GPUs all show."""
    text = _table([STOP], columns)
    assert all(len(line) <= columns for line in text.splitlines())
    for shown in ("exit_code=137", "oom=true", "signal=9", "reason=oom", "ran=1h23m45s"):
        assert shown in text
    assert "gpu_devices=0,1" in text
    assert CID not in text
    assert "id=" + CID[:12] in text


def test_the_first_details_are_about_the_event_not_bookkeeping() -> None:
    """On one wide line the exit code comes before the id, image and attribution."""
    line = _table([STOP], 200).splitlines()[1]
    assert line.index("exit_code") < line.index("id=") < line.index("image=")
    assert "train-resnet._.1001" in line


def test_at_80_columns_details_get_room() -> None:
    """At 80 columns the details are not one character wide: they get a line of their own."""
    lines = _table([STOP], 80).splitlines()
    assert lines[1].strip() == "DETAILS"
    assert lines[2].rstrip().endswith("train-resnet._.1001")
    assert lines[3].lstrip().startswith("exit_code=137")


def test_wide_shows_everything() -> None:
    """--wide shows the whole id, the image and every key, uncut."""
    text = _table([STOP], 80, wide=True)
    assert CID in text
    assert IMAGE in text
    assert "attributed_by=label:ds01.user" in text


def test_header_names_the_zone(log_dir: Path) -> None:
    """The TIME column says which zone its times are in."""
    log = log_dir / "events.jsonl"
    log.write_text(json.dumps(STOP) + "\n")
    assert run(log, tz="Europe/Berlin").stdout.startswith("TIME (CET)")
    assert run(log, tz="UTC").stdout.startswith("TIME (UTC)")


def test_follow_batches_keep_their_columns() -> None:
    """A later batch with longer names lines up under the first batch's columns."""
    out = Terminal()
    writer = TableWriter(
        Streams(out, io.StringIO(), {"COLUMNS": "160", "NO_COLOR": ""}, local=ZoneInfo("UTC"))
    )
    short = {"timestamp": "2026-11-22T01:00:00Z", "event_type": "gpu.allocate", "user": "al"}
    writer.write([short])
    longer = {
        **STOP,
        "user": "someone-with-a-long-name",
        "event_type": "detection.unmanaged_container",
    }
    writer.write([longer, short])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("TIME")
    assert sum(line.startswith("TIME") for line in lines) == 1
    for column in ("TYPE", "USER", "CONTAINER"):
        at = lines[0].index(column)
        assert all(row[at - 1] == " " != row[at] for row in lines[1:]), column


def test_padded_claim_keeps_the_marker_and_the_columns() -> None:
    """A claimed user padded with 200 spaces: marker whole, container and details on screen."""
    event = {
        "timestamp": "2026-11-22T01:00:00Z",
        "event_type": "auth.denied",
        "user": "alice" + " " * 200 + "x",
        "origin": {"uid": 65534},
        "details": {"container": "job-7", "reason": "quota"},
    }
    text = _table([event], 120)
    assert "? (sent by nobody)" in text
    assert "job-7" in text
    assert "reason=quota" in text
    assert all(len(line) <= 120 for line in text.splitlines())


def test_forged_watcher_event_is_marked_in_the_table() -> None:
    """A container.start a user sent says "sent by uid N", unlike the watcher's own."""
    own = {"timestamp": "2026-11-22T01:00:00Z", "event_type": "container.start", "user": "bob"}
    forged = {**own, "source": "ds01-watcher", "origin": {"uid": 4242}}
    lines = _table([own, forged], 120).splitlines()
    assert "sent by" not in lines[1]
    assert "sent by uid 4242" in lines[2]


@pytest.mark.parametrize(
    "char", ["\u061c", "\U000e0041", "\U000e0001", "\u00ad", "\u2066", "\u2028"]
)
def test_table_escapes_invisible_characters(char: str) -> None:
    """U+061C, tag characters, soft hyphen, isolates and line separators are shown escaped."""
    assert char not in escape(f"a{char}b")
    assert f"{ord(char):x}" in escape(f"a{char}b")


def test_every_format_character_is_escaped() -> None:
    """Every character of Unicode category Cf (this Python's tables) is escaped."""
    raw = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert all(escape(c) != c for c in raw)
    assert escape("plain ascii, ünïcödé, 中文") == "plain ascii, ünïcödé, 中文"


def test_json_at_a_terminal_is_escaped_and_still_the_same_json(log_dir: Path) -> None:
    r"""--json at a terminal escapes C1 and bidi controls as \\u escapes; into a pipe, raw."""
    event = {
        "timestamp": "2026-11-22T01:00:00Z",
        "event_type": "auth.denied",
        "user": "a\u009b\u009d\u202e\U000e0041b",
    }
    log = log_dir / "events.jsonl"
    log.write_text(json.dumps(event, ensure_ascii=False) + "\n")
    shown = run(log, "--json", tty=True).stdout
    assert all(c not in shown for c in "\u009b\u009d\u202e\U000e0041")
    assert json.loads(shown) == event
    assert "\u009b" in run(log, "--json").stdout
    assert json.loads(escape_json(json.dumps(event, ensure_ascii=False))) == event


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


def test_into_a_pipe_nothing_is_cut(log_dir: Path) -> None:
    """Without a terminal (and no COLUMNS) names and values stay whole, for grep."""
    long_name = "a-very-long-container-name-for-grep._.1001"
    command = "python train.py " + "--flag " * 20
    event = {**STOP, "details": {**STOP["details"], "container": long_name, "command": command}}
    log = log_dir / "events.jsonl"
    log.write_text(json.dumps(event) + "\n")
    out = run(log).stdout
    assert long_name in out
    assert command.strip() in out
    assert CID not in out


def test_wide_characters_count_as_two_columns() -> None:
    """A CJK user name takes two columns a character: lines still fit and columns line up."""

    def cells(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    rows = [
        {**STOP, "user": "田中太郎"},
        {**STOP, "user": "bob", "details": {**STOP["details"], "container": "コンテナ._.1001"}},
    ]
    text = _table(rows, 80)
    lines = text.splitlines()
    assert all(cells(line) <= 80 for line in lines)
    at = cells(lines[0][: lines[0].index("CONTAINER")])
    starts = {
        cells(line[: line.index(c)]) for line in lines for c in ("train", "コンテナ") if c in line
    }
    assert starts == {at}
