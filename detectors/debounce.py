"""Which GPU sightings become events, and when: pure, state persisted between polls.

A *subject* is one thing worth an event, on one device: a host process (identity
(pid, starttime), so a reused PID is a new process), an unmanaged container, or a
container computing outside its configuration. The rules:

- a subject is reported once it is seen in two consecutive successful polls, so a
  one-poll blip is never reported;
- a reported host process that a successful poll no longer shows on its device has
  exited (one exit each); a container subject stays reported while the container
  runs, so it is flagged once, not at every pause of its job;
- a failed or timed-out poll (no snapshot, or ``error`` set) changes nothing, and a
  GPU whose part of the poll is void (``failed``, ``lost``, or missing from the
  snapshot) neither advances nor ends anything on it: no exit storms;
- a GPU lost (until reboot) is reported once per boot;
- the state survives a watcher restart (`save_state`/`load_state`), so what was
  reported is not reported again; sightings not yet reported start over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

import msgspec
from msgspec.structs import replace

from detectors.atomic_file import replace_file
from detectors.classify import ClassifiedProcess  # noqa: TC001 - msgspec needs it at run time

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from pathlib import Path

    from detectors.snapshot import Gpu, NvmlSnapshot

SubjectKind = Literal["host", "unmanaged", "mismatch"]
STATE_FILE = "gpu-detections.json"
# Bound on what is remembered: on a runaway (thousands of short-lived processes) the
# oldest sightings not yet reported go first.
MAX_TRACKED = 4096


class Subject(NamedTuple):
    """One sighting in this poll; ``started_at`` is the process's start (Unix), if known."""

    key: str
    kind: SubjectKind
    process: ClassifiedProcess
    started_at: float | None = None


class Tracked(msgspec.Struct, frozen=True, kw_only=True):
    """A subject across polls."""

    kind: SubjectKind
    process: ClassifiedProcess
    seen: int
    reported: bool
    first_seen: float
    last_seen: float
    started_at: float | None = None

    @property
    def ran_s(self) -> float:
        """How long it ran, as far as the polls saw (start to the last poll that saw it)."""
        start = self.started_at if self.started_at is not None else self.first_seen
        return round(max(0.0, self.last_seen - start), 3)


class DebounceState(msgspec.Struct, kw_only=True):
    """What persists between polls (and watcher restarts)."""

    version: int = 1
    boot_id: str | None = None
    tracked: dict[str, Tracked] = msgspec.field(default_factory=dict)
    lost_gpus: list[str] = msgspec.field(default_factory=list)


class Outcome(NamedTuple):
    """One step: the next state, and what to report now."""

    state: DebounceState
    appeared: list[Tracked]
    exited: list[Tracked]
    lost: list[Gpu]


def subjects_of(
    processes: Iterable[ClassifiedProcess],
    started_at: dict[int, float | None] | None = None,
    *,
    flagged: Collection[str] = (),
) -> list[Subject]:
    """The subjects a poll's classified processes give, one per key, first kept.

    ``flagged``: containers already flagged as unmanaged elsewhere (the Docker side,
    from their configuration): no second unmanaged flag for them.
    """
    found: dict[str, Subject] = {}
    starts = started_at or {}
    for process in processes:
        where = f"{process.gpu_uuid}:{process.mig_uuid or ''}"
        keys: list[tuple[str, SubjectKind]] = []
        if process.klass == "host_process" and process.starttime is not None:
            keys.append((f"host:{process.pid}:{process.starttime}:{where}", "host"))
        if process.container_id is not None:
            if process.klass == "unmanaged_container" and process.container_id not in flagged:
                keys.append((f"unmanaged:{process.container_id}:{where}", "unmanaged"))
            if process.outside_config and process.klass != "infrastructure":
                keys.append((f"mismatch:{process.container_id}:{where}", "mismatch"))
        for key, kind in keys:
            if key not in found:
                found[key] = Subject(key, kind, process, starts.get(process.pid))
    return list(found.values())


def step(
    state: DebounceState,
    snapshot: NvmlSnapshot | None,
    subjects: Iterable[Subject],
    now: float,
    *,
    running_containers: Collection[str] | None = None,
) -> Outcome:
    """Advance by one poll. Pure, never raises.

    ``snapshot`` None is a timed-out poll. ``running_containers`` (full ids) says
    which containers still run; None when Docker could not be asked (then no
    container subject is forgotten).
    """
    if snapshot is None or snapshot.error is not None:
        return Outcome(state, [], [], [])
    visible = {gpu.uuid for gpu in snapshot.gpus if gpu.failed is None and not gpu.lost}
    lost = [gpu for gpu in snapshot.gpus if gpu.lost and gpu.uuid not in state.lost_gpus]
    tracked: dict[str, Tracked] = {}
    appeared: list[Tracked] = []
    for subject in subjects:
        if subject.process.gpu_uuid not in visible or subject.key in tracked:
            continue
        before = state.tracked.get(subject.key)
        seen = min(2, (before.seen if before is not None else 0) + 1)
        was_reported = before is not None and before.reported
        now_tracked = Tracked(
            kind=subject.kind,
            process=subject.process,
            seen=seen,
            reported=was_reported or seen >= 2,  # noqa: PLR2004
            first_seen=before.first_seen if before is not None else now,
            last_seen=now,
            started_at=subject.started_at,
        )
        tracked[subject.key] = now_tracked
        if now_tracked.reported and not was_reported:
            appeared.append(now_tracked)
    exited = _not_seen(state.tracked, tracked, visible, running_containers)
    next_state = DebounceState(
        boot_id=state.boot_id,
        tracked=_bounded(tracked),
        lost_gpus=[*state.lost_gpus, *(gpu.uuid for gpu in lost)],
    )
    return Outcome(next_state, appeared, exited, lost)


def _not_seen(
    before_all: dict[str, Tracked],
    tracked: dict[str, Tracked],
    visible: set[str],
    running_containers: Collection[str] | None,
) -> list[Tracked]:
    """Carry over or end what this poll did not show; returns the exited host processes."""
    exited: list[Tracked] = []
    for key, before in before_all.items():
        if key in tracked:
            continue
        if before.process.gpu_uuid not in visible:
            tracked[key] = before  # void part of the poll: nothing concluded
        elif not before.reported:
            continue  # a blip: forgotten
        elif before.kind == "host":
            exited.append(before)
        elif running_containers is None or before.process.container_id in running_containers:
            tracked[key] = replace(before, seen=0)
    return exited


def _bounded(tracked: dict[str, Tracked]) -> dict[str, Tracked]:
    if len(tracked) <= MAX_TRACKED:
        return tracked
    order = sorted(tracked, key=lambda k: (tracked[k].reported, tracked[k].last_seen))
    for key in order[: len(tracked) - MAX_TRACKED]:
        del tracked[key]
    return tracked


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(DebounceState)


def save_state(path: Path, state: DebounceState) -> None:
    """Write the state atomically (temporary file, fsync, rename). Raises OSError."""
    replace_file(path, _ENCODER.encode(state), mode=0o600)


def load_state(path: Path, boot_id: str | None) -> tuple[DebounceState, str | None]:
    """The saved state, or a fresh one and one line saying why. Never raises.

    Sightings not yet reported start over. After a reboot the lost GPUs are
    forgotten (a lost GPU is lost until reboot).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return DebounceState(boot_id=boot_id), None
    except OSError as exc:
        return DebounceState(boot_id=boot_id), f"cannot read {path}: {exc.strerror}; starting over"
    try:
        state = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = f"{path} is not readable state ({exc}); starting over"
        return DebounceState(boot_id=boot_id), problem
    kept = {key: t for key, t in state.tracked.items() if t.reported}
    lost = state.lost_gpus if boot_id is None or state.boot_id == boot_id else []
    return DebounceState(boot_id=boot_id, tracked=kept, lost_gpus=list(lost)), None
