"""What an unprivileged user can send or plant must never switch the watcher off or pose as it."""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING

import pytest
from trust_support import (
    NOBODY,
    as_nobody,
    of_type,
    open_root,
    reachable_watcher,
    rejected,
    send_as_nobody,
)
from watcher_support import needs_root, read_events, wait_for

from ds01_events.envelope import encode_line, make_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from watcher_support import Watcher

pytestmark = [pytest.mark.integration, needs_root]
__all__ = ["open_root"]  # the fixture


# What the library's spool route does: write under a temporary name, then rename.
SPOOL = """
import os, sys
base = os.path.join(sys.argv[1], f"{os.getpid()}-live")
with open(base + ".tmp", "wb") as handle:
    handle.write(bytes.fromhex(sys.argv[2]))
os.rename(base + ".tmp", base + ".json")
"""


def _deep(depth: int = 1000) -> bytes:
    """The 2.2 KB datagram nesting `[` ``depth`` deep inside details."""
    line = encode_line(make_event("test.deep")).rstrip(b"\n")
    return line.replace(b'"host"', b'"details":{"a":' + b"[" * depth + b"]" * depth + b'},"host"')


def test_a_datagram_nested_1000_deep_is_counted_and_ingest_goes_on(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """As nobody: the deep datagram is one too_deep reject; the next event is still logged."""
    watcher = reachable_watcher(make_watcher, open_root, reject_window_seconds=1).start()
    after = make_event("test.after_deep")
    send_as_nobody(watcher, _deep(), _deep(990), encode_line(after))
    assert wait_for(lambda: watcher.logged(after.id)), watcher.stderr()
    assert wait_for(lambda: rejected(watcher)[0].get("too_deep") == 2)
    assert rejected(watcher)[1] == {str(NOBODY): 2}
    assert not of_type(watcher, "test.deep")
    assert watcher.stop() == 0


def test_a_deep_spool_file_neither_kills_the_start_nor_stays(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """The same bytes as a spool file: the watcher starts, counts it, and drains the rest."""
    watcher = reachable_watcher(make_watcher, open_root, reject_window_seconds=1)
    (watcher.spool / "1-deep.json").write_bytes(_deep() + b"\n")
    os.chown(watcher.spool / "1-deep.json", NOBODY, NOBODY)
    good = make_event("test.spooled_after")
    (watcher.spool / "2-good.json").write_bytes(encode_line(good))
    watcher.start()
    assert wait_for(lambda: watcher.logged(good.id)), watcher.stderr()
    assert wait_for(lambda: rejected(watcher)[0].get("too_deep") == 1)
    assert list(watcher.spool.iterdir()) == []
    assert watcher.stop() == 0


@pytest.mark.parametrize("run", range(2))
def test_a_file_dropped_into_a_running_watchers_spool_is_logged_within_two_intervals(
    make_watcher: Callable[..., Watcher], open_root: Path, run: int
) -> None:
    """The periodic drain runs: a file spooled by nobody is in the log within 2 x 1 s."""
    del run
    watcher = reachable_watcher(make_watcher, open_root, spool_interval_seconds=1).start()
    time.sleep(1.5)  # well past the first drain at start
    event = make_event("test.spooled_live")
    began = time.monotonic()
    as_nobody("/usr/bin/python3", "-c", SPOOL, str(watcher.spool), encode_line(event).hex())
    event_id = event.id
    assert wait_for(lambda: watcher.logged(event_id), timeout=2.0 - (time.monotonic() - began))
    logged = next(e for e in read_events(watcher.events_file) if e["id"] == event_id)
    assert logged["origin"]["uid"] == NOBODY
    assert watcher.stop() == 0


def test_a_spool_file_of_100000_lines_is_set_aside_not_a_wall(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """The wall goes to quarantine, reported once with its owner; later files drain."""
    watcher = reachable_watcher(make_watcher, open_root, spool_interval_seconds=0.5).start()
    # Written and given away under a .tmp name, as the library does: the drain is live.
    wall = watcher.spool / "0-wall.tmp"
    wall.write_bytes(b"{}\n" * 100_000)
    os.chown(wall, NOBODY, NOBODY)
    wall.rename(watcher.spool / "0-wall.json")
    (watcher.spool / "0-dir").mkdir()
    (watcher.spool / "0-dir" / "inside").write_bytes(b"x")
    (watcher.spool / "0-dir").rename(watcher.spool / "0-dir.json")
    good = make_event("test.behind_the_wall")
    (watcher.spool / "1-good.tmp").write_bytes(encode_line(good))
    (watcher.spool / "1-good.tmp").rename(watcher.spool / "1-good.json")
    assert wait_for(lambda: watcher.logged(good.id), timeout=10), watcher.stderr()
    time.sleep(1.5)  # three more passes: still one report each
    reports = of_type(watcher, "ingest.quarantined")
    assert sorted((r["details"]["reason"], r["details"]["uid"]) for r in reports) == [
        ("not_regular", 0),
        ("too_many_lines", NOBODY),
    ]
    quarantine = open_root / "spool.quarantine"
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700
    assert len(list(quarantine.iterdir())) == 2
    assert list(watcher.spool.iterdir()) == []
    assert watcher.stop() == 0


def test_a_hard_link_to_a_root_file_never_arrives_as_uid_0(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """Nobody links root's world-writable file into the spool; root removes the original."""
    victims = open_root / "victims"
    victims.mkdir(mode=0o755)
    planted = make_event("test.planted_as_root")
    for name in ("removed", "kept"):
        (victims / name).write_bytes(b"")
        (victims / name).chmod(0o666)
    watcher = reachable_watcher(make_watcher, open_root, reject_window_seconds=1)
    for name in ("removed", "kept"):
        (victims / name).write_bytes(encode_line(planted))  # what nobody could write there
        as_nobody("ln", str(victims / name), str(watcher.spool / f"{name}.json"))
    (victims / "removed").unlink()  # root cleans up its file: the link is all that is left
    watcher.start()
    assert wait_for(lambda: sum(rejected(watcher)[0].values()) == 2), watcher.stderr()
    assert rejected(watcher) == ({"writable_by_others": 1, "hardlink": 1}, {"0": 2})
    assert not of_type(watcher, "test.planted_as_root")
    assert all(e.get("origin", {}).get("uid") != 0 for e in read_events(watcher.events_file))
    assert (victims / "kept").read_bytes() == encode_line(planted)
    assert watcher.stop() == 0


def test_clients_cannot_pose_as_the_watcher_or_shadow_its_ids(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """Watcher-only types and source are refused; a reused id is replaced; claims trimmed."""
    watcher = reachable_watcher(make_watcher, open_root, reject_window_seconds=1).start()
    start_id = of_type(watcher, "watcher.start")[0]["id"]
    forged = [
        make_event("watcher.stop", source="ds01-watcher"),
        make_event("watcher.start", source="ds01-watcher"),
        make_event("container.start", user="alice", details={"container": "x"}),
        make_event("maintenance.cleanup", source="ds01-watcher"),
    ]
    shadow = make_event("test.shadow", user=" " * 200 + "mallory\x1b[2J", event_id=start_id)
    allocator = make_event("gpu.allocate", source="allocator.sh", user="alice")
    send_as_nobody(watcher, *(encode_line(e) for e in [*forged, shadow, allocator]))
    assert wait_for(lambda: bool(of_type(watcher, "gpu.allocate")))
    assert wait_for(lambda: sum(rejected(watcher)[0].values()) == 4)
    assert rejected(watcher) == ({"reserved_type": 3, "reserved_source": 1}, {str(NOBODY): 4})
    (logged,) = of_type(watcher, "test.shadow")
    assert logged["id"] != start_id
    assert logged["details"]["client_id"] == start_id
    assert logged["user"] == "mallory[2J"
    assert logged["origin"]["uid"] == NOBODY
    assert [e["event_type"] for e in read_events(watcher.events_file)].count("watcher.start") == 1
    assert of_type(watcher, "gpu.allocate")[0]["source"] == "allocator.sh"
    assert watcher.stop() == 0


def test_the_log_is_in_time_order_whatever_clients_claim(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """Backdated and future-dated datagrams get the writer's time; their claim is kept apart."""
    watcher = reachable_watcher(make_watcher, open_root, spool_interval_seconds=0.5).start()
    claims = ["2020-01-01T00:00:00.000000Z", "2099-12-31T23:59:59.999999Z"]
    sent = [make_event("test.dated", timestamp=claim) for claim in claims * 50]
    send_as_nobody(watcher, *(encode_line(e) for e in sent))
    spooled = watcher.spool / "9-dated.tmp"  # renamed once dated: the drain is live
    spooled.write_bytes(encode_line(make_event("test.spooled_dated", timestamp=claims[0])))
    os.utime(spooled, (1_800_000_000.5, 1_800_000_000.5))
    spooled.rename(watcher.spool / "9-dated.json")
    assert wait_for(lambda: len(of_type(watcher, "test.dated")) == 100)
    assert wait_for(lambda: bool(of_type(watcher, "test.spooled_dated")))
    assert watcher.stop() == 0
    events = read_events(watcher.events_file)
    stamps = [e["timestamp"] for e in events if e.get("origin")]
    assert stamps == sorted(stamps)
    dated = of_type(watcher, "test.dated")
    assert {e["details"]["client_timestamp"] for e in dated} == set(claims)
    assert all("2026" <= e["timestamp"] < "2099" for e in dated)
    (spool_event,) = of_type(watcher, "test.spooled_dated")
    assert spool_event["details"]["client_timestamp"] == "2027-01-15T08:00:00.500000Z"


def test_a_log_file_planted_by_a_user_is_moved_aside(
    make_watcher: Callable[..., Watcher], open_root: Path
) -> None:
    """A world-writable log owned by nobody is kept as .foreign-<epoch>; the watcher makes its own."""
    watcher = reachable_watcher(make_watcher, open_root)
    watcher.events_file.parent.mkdir(mode=0o755)
    watcher.events_file.write_bytes(b'{"event_type":"test.planted"}\n')
    watcher.events_file.chmod(0o666)
    os.chown(watcher.events_file, NOBODY, NOBODY)
    watcher.start()
    (aside,) = watcher.events_file.parent.glob("events.jsonl.foreign-*")
    assert aside.read_bytes() == b'{"event_type":"test.planted"}\n'
    info = watcher.events_file.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o640)
    assert read_events(watcher.events_file)[0]["event_type"] == "watcher.start"
    assert watcher.stderr().count("foreign") == 1
    assert watcher.stop() == 0
