"""Real logrotate with the shipped config, under concurrent load: nothing lost, nothing twice."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest
from watcher_support import Watcher, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "logrotate" / "ds01"
# Sends paced events until the stop file appears, then prints how many it sent.
SENDER = """
import os, socket, sys, time
sys.path[:0] = sys.argv[4:]
from ds01_events.envelope import encode_line, make_event
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n = 0
while not os.path.exists(sys.argv[2]):
    for _ in range(50):
        event = make_event("test.rotate", details={"s": sys.argv[3], "n": n})
        sock.sendto(encode_line(event), sys.argv[1])
        n += 1
    time.sleep(0.01)
print(n)
"""

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("logrotate") is None, reason="needs logrotate"),
]


def _all_lines(directory: Path) -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted(directory.iterdir()):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines.extend(data.splitlines())
    return lines


def test_rename_nocreate_rotation_under_load_loses_nothing(
    make_watcher: Callable[..., Watcher], tmp_path: Path
) -> None:
    """8 forced rotations by the shipped config under 4 senders, no SIGHUP: every event once."""
    log_dir = tmp_path / "log"
    watcher = make_watcher(log_dir=log_dir).start()
    config = CONFIG.read_text().replace("/var/log/ds01/events.jsonl", str(watcher.events_file))
    config = config.replace("systemctl --no-block reload", "true || systemctl --no-block reload")
    assert "nocreate" in config
    assert "dateformat -%Y%m%d-%s" in config
    conf = tmp_path / "logrotate.conf"
    conf.write_text(config)
    conf.chmod(0o644)
    stop_file = tmp_path / "stop"
    lib_paths = [p for p in sys.path if p]
    senders = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, str(watcher.socket), str(stop_file), str(s), *lib_paths],
            stdout=subprocess.PIPE,
            text=True,
        )
        for s in range(4)
    ]
    rotations = 0
    while rotations < 8:
        time.sleep(1.05)  # dateformat has one-second resolution
        result = subprocess.run(
            ["logrotate", "-f", "-s", str(tmp_path / "logrotate.status"), str(conf)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        rotations += 1
    stop_file.touch()
    total = sum(int(sender.communicate(timeout=120)[0]) for sender in senders)
    assert all(sender.returncode == 0 for sender in senders)
    assert wait_for(
        lambda: sum(b'"test.rotate"' in line for line in _all_lines(log_dir)) >= total, 60
    )
    assert watcher.stop() == 0
    lines = _all_lines(log_dir)
    events = [msgspec.json.decode(line) for line in lines]  # every line whole
    seen = Counter(
        (e["details"]["s"], e["details"]["n"]) for e in events if e["event_type"] == "test.rotate"
    )
    assert len(seen) == total
    assert set(seen.values()) == {1}
    rotated = [p.name for p in log_dir.iterdir() if p.name != "events.jsonl"]
    assert len(rotated) >= 7, rotated
    assert any(name.endswith(".gz") for name in rotated)
    assert (watcher.events_file.stat().st_mode & 0o777) == 0o640
