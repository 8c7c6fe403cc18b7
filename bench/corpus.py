r"""Deterministic event corpora for the query benchmark and the exactness tests.

Stdlib only. ``variety`` mixes in what the reader must handle exactly: the legacy
schema, ``\\u``-escaped values and keys, duplicate keys (the last one wins),
non-compact spacing, unicode and control characters, and slight time disorder.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

USERS = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "józef",
    "田中",
    "248835",
    "1.10",
    "ann-marie",
    *[f"user{i:03d}" for i in range(190)],
]
TYPES = [
    "container.create",
    "container.start",
    "container.stop",
    "container.remove",
    "gpu.allocate",
    "gpu.release",
    "gpu.reject",
    "auth.denied",
    "resource.oom_kill",
    "detection.host_gpu_process",
    "detection.unmanaged_container",
    "maintenance.cleanup",
    "monitoring.scrape_failure",
    "monitoring.dcgm_restart",
    "watcher.start",
]
COMMANDS = [
    "python train.py --lr 0.1",
    'bash -c "echo hi"',
    "jupyter lab",
    "C:\\temp\\x",
    "naïve ✓",
]
START = datetime(2025, 11, 22, tzinfo=timezone.utc)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(rng: random.Random, when: datetime, index: int) -> dict[str, object]:
    user = rng.choice(USERS)
    kind = rng.choice(TYPES)
    uid = 1000 + USERS.index(user)
    details: dict[str, object] = {
        "container": f"{user}-job{rng.randrange(40)}._.{uid}",
        "container_id": f"{rng.getrandbits(64):016x}{index:08x}",
    }
    if kind.startswith("gpu"):
        details["gpu_devices"] = [f"GPU-{rng.getrandbits(32):08x}", f"MIG-{rng.randrange(7)}"]
    if kind.startswith("detection"):
        details["command"] = rng.choice(COMMANDS)
    return {
        "timestamp": _stamp(when),
        "event_type": kind,
        "schema_version": "1",
        "user": user,
        "source": "ds01-watcher",
        "details": details,
        "host": "gpu01",
        "id": f"{rng.getrandbits(128):032x}",
    }


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if c.isalpha() and ord(c) < 0x10000 else c for c in text)


def _variant(rng: random.Random, event: dict[str, object]) -> str:
    """One line for ``event``, in one of the encodings a reader must treat alike."""
    pick = rng.random()
    if pick < 0.04:  # legacy flat schema
        legacy = {
            "ts": str(event["timestamp"]).replace(".000000", "")[:19] + "Z",
            "event": event["event_type"],
            "user": event["user"],
            "container": event["details"]["container"],  # type: ignore[index]
        }
        return json.dumps(legacy)
    if pick < 0.08:  # every non-ASCII character escaped
        return json.dumps(event, ensure_ascii=True, separators=(",", ":"))
    if pick < 0.11:  # letters of the user name and a key \u-escaped
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        user = json.dumps(event["user"], ensure_ascii=False)
        return line.replace(f'"user":{user}', f'"us\\u0065r":"{_escaped(str(event["user"]))}"')
    if pick < 0.14:  # duplicate key: the first value is overridden by the last
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        return '{"user":"alice","event_type":"gpu.allocate",' + line[1:]
    if pick < 0.16:  # spaced, non-compact
        return json.dumps(event, ensure_ascii=False)
    if pick < 0.17:  # a control character and an ANSI sequence in a value
        event["details"]["command"] = "evil\x1b[31mred\x07"  # type: ignore[index]
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def generate(
    count: int,
    *,
    seed: int = 1,
    start: datetime = START,
    span: timedelta = timedelta(days=365),
    variety: bool = False,
    disorder: timedelta = timedelta(seconds=0),
) -> Iterator[str]:
    """``count`` lines (no newline), time-ordered within ``disorder``."""
    rng = random.Random(seed)
    step = span / max(count, 1)
    for index in range(count):
        when = start + step * index
        if disorder and rng.random() < 0.05:
            when -= disorder * rng.random()
        event = _event(rng, when, index)
        yield (
            _variant(rng, event)
            if variety
            else json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        )


def write(path: str, count: int, **options: object) -> None:
    """Write a corpus file (UTF-8, one line per event)."""
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in generate(count, **options))
