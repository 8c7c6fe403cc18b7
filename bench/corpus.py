r"""Deterministic event corpora for the query benchmark and the exactness tests.

Stdlib only. Plain lines look like the watcher's: compact envelopes of about 200 bytes,
container details (name, short id) on container and GPU events, a small reason on
the others. ``variety`` mixes in what the reader must handle exactly: the legacy
schema, ``\\u``-escaped values and keys, duplicate keys (the last one wins),
non-compact spacing, unicode and control characters, and slight time disorder.
``exotic`` is the share of such lines: the tests use a heavy mix, the benchmark a
realistic few percent. ``malformed`` adds truncated lines (a writer cut off).
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


# How often each type occurs: periodic host-level checks dominate a real log.
TYPE_WEIGHTS = [4, 4, 4, 3, 5, 5, 2, 6, 1, 1, 1, 6, 30, 10, 2]
_CONTAINER_KINDS = ("container", "gpu", "resource", "detection")
_HOST_KINDS = ("maintenance", "monitoring", "watcher")
REASONS = ["startup", "scrape timeout", "idle 72h", "dcgm restarted", "disk 91%"]


# A busy day: the users' own events only (each of 40 users then has 1/40 = 2.5% of the lines).
USER_WEIGHTS = [
    0 if kind.startswith(_HOST_KINDS) else w for kind, w in zip(TYPES, TYPE_WEIGHTS, strict=True)
]


def _event(rng: random.Random, when: datetime, users: int, weights: list[int]) -> dict[str, object]:
    user = rng.choice(USERS[:users])
    kind = rng.choices(TYPES, weights)[0]
    uid = 1000 + USERS.index(user)
    details: dict[str, object]
    if kind.startswith(_CONTAINER_KINDS):
        details = {
            "container": f"{user}-{rng.randrange(40)}._.{uid}",
            "container_id": f"{rng.getrandbits(48):012x}",
        }
    elif rng.random() < 0.2:  # a few host-level events say why
        details = {"reason": rng.choice(REASONS)}
    else:
        details = {}
    if kind.startswith("gpu"):
        details["gpu_devices"] = [f"MIG-{rng.randrange(7)}"]
    if kind.startswith("detection"):
        details["command"] = rng.choice(COMMANDS)
    event: dict[str, object] = {
        "timestamp": _stamp(when),
        "event_type": kind,
        "schema_version": "1",
        "user": user,
        "source": "watcher",
        "details": details,
        "host": "gpu01",
        "id": f"{rng.getrandbits(128):032x}",
    }
    if not details:  # the envelope omits an empty details and a missing user
        del event["details"]
    if kind.startswith(_HOST_KINDS):
        del event["user"]
    return event


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if c.isalpha() and ord(c) < 0x10000 else c for c in text)


# The exotic encodings, each with its share of the exotic lines.
_EXOTIC = (
    ("legacy", 0.25),
    ("ascii", 0.2),
    ("escaped_user", 0.15),
    ("duplicate_key", 0.2),
    ("spaced", 0.1),
    ("control", 0.1),
)


def _exotic(rng: random.Random, event: dict[str, object]) -> str:
    """One line for ``event`` in an encoding a reader must treat like the plain one."""
    pick = rng.random()
    for name, share in _EXOTIC:  # noqa: B007 - the loop leaves ``name`` set
        if pick < share:
            break
        pick -= share
    if name == "legacy":  # legacy flat schema
        legacy = {
            "ts": str(event["timestamp"]).replace(".000000", "")[:19] + "Z",
            "event": event["event_type"],
            "user": event.get("user", "root"),
            "container": event.get("details", {}).get("container", "host"),  # type: ignore[attr-defined]
        }
        return json.dumps(legacy)
    if name == "ascii":  # every non-ASCII character escaped
        return json.dumps(event, ensure_ascii=True, separators=(",", ":"))
    line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if name == "escaped_user" and "user" in event:  # letters of the user name and a key \u-escaped
        user = json.dumps(event["user"], ensure_ascii=False)
        return line.replace(f'"user":{user}', f'"us\\u0065r":"{_escaped(str(event["user"]))}"')
    if name == "duplicate_key":  # the first value is overridden by the last
        return '{"user":"alice","event_type":"gpu.allocate",' + line[1:]
    if name == "spaced":  # non-compact
        return json.dumps(event, ensure_ascii=False)
    # a control character and an ANSI sequence in a value
    event.setdefault("details", {})["command"] = "evil\x1b[31mred\x07"  # type: ignore[index]
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def generate(
    count: int,
    *,
    seed: int = 1,
    start: datetime = START,
    span: timedelta = timedelta(days=365),
    variety: bool = False,
    disorder: timedelta = timedelta(seconds=0),
    exotic: float = 0.17,
    malformed: float = 0.0,
    users: int = len(USERS),
    host_events: bool = True,
) -> Iterator[str]:
    """``count`` lines (no newline), time-ordered within ``disorder``.

    With ``variety``, a share ``exotic`` of the lines use an unusual encoding and a
    share ``malformed`` are cut off mid-line (those are extra lines, not events).
    ``users``: how many of `USERS` the events are spread over (the first ones).
    Without ``host_events``, every event is a user's (no watcher or monitoring lines).
    """
    weights = TYPE_WEIGHTS if host_events else USER_WEIGHTS
    rng = random.Random(seed)
    step = span / max(count, 1)
    for index in range(count):
        when = start + step * index
        if disorder and rng.random() < 0.05:  # 5% of lines were written late
            when -= disorder * rng.random()
        event = _event(rng, when, users, weights)
        if variety and rng.random() < exotic:
            yield _exotic(rng, event)
            continue
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        if variety and malformed and rng.random() < malformed:
            yield line[: rng.randrange(1, len(line) - 1)]
        yield line


def write(path: str, count: int, **options: object) -> None:
    """Write a corpus file (UTF-8, one line per event)."""
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in generate(count, **options))
