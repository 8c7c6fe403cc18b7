"""The GPU poll as a scheduler job: NVML, /proc, classification, debounce, events, inventory.

One `GpuMonitor.poll_once` per interval (``service.Job``, never concurrent with
itself). The NVML poll runs where a hang can be abandoned (the poller's daemon
thread, with a deadline), so this job always returns: a stuck poll is reported once
(``monitoring.nvml_unresponsive``) and the service keeps writing every other event.
NVML missing (no driver, no library) is one line, said once per reason.
"""

from __future__ import annotations

import pwd
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from detectors import procfs
from detectors.classify import classify
from detectors.debounce import STATE_FILE, load_state, save_state, step, subjects_of
from detectors.gpu_events import nvml_unresponsive_event, outcome_events
from detectors.inventory import build_inventory, read_inventory, write_inventory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from detectors.classify import ClassifiedProcess, ContainerFacts
    from detectors.snapshot import NvmlSnapshot
    from ds01_events.envelope import Event
    from watcher.gpu.directory import ContainerDirectory, DeviceDirectory
    from watcher.typing import Submit


class PollAnswer(Protocol):
    """What one NVML poll answered (detectors.poller.PollResult)."""

    @property
    def state(self) -> str:
        """ok, unavailable, hung or busy."""

    @property
    def snapshot(self) -> NvmlSnapshot | None:
        """The snapshot (ok; unavailable carries its error), else None."""

    @property
    def report(self) -> bool:
        """True the first time a state (or reason) is seen: say it once."""

    @property
    def reason(self) -> str | None:
        """Why there is no snapshot."""


class Poller(Protocol):
    """Polls NVML with a deadline; never raises, never blocks past its timeout."""

    timeout_s: float

    def poll(self) -> PollAnswer:
        """One poll."""


def user_by_uid(uid: int) -> str | None:
    """The account name of ``uid``, or None."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


class GpuMonitor:
    """The job's state between polls; `poll_once` is the job. Never raises."""

    def __init__(
        self,
        poller: Poller,
        submit: Submit,
        *,
        state_dir: Path,
        inventory_file: Path | None,
        containers: ContainerDirectory,
        devices: DeviceDirectory,
        say: Callable[[str], None],
        proc: str = procfs.PROC,
        clock: Callable[[], float] = time.time,
        lookup_user: Callable[[int], str | None] | None = user_by_uid,
    ) -> None:
        self._poller = poller
        self._submit = submit
        self._state_path = Path(state_dir) / STATE_FILE
        self._inventory_file = inventory_file
        self._containers = containers
        self._devices = devices
        self._say = say
        self._proc = proc
        self._clock = clock
        self._user_by_uid = lookup_user
        self._btime = procfs.boot_time(proc)
        self._ticks = procfs.clock_ticks()
        self._state, problem = load_state(self._state_path, procfs.boot_id(proc))
        if problem:
            say(problem)
        self._previous = read_inventory(inventory_file) if inventory_file else None
        self._save_problem: str | None = None
        self._inventory_problem: str | None = None
        self._poll_problem: str | None = None
        self.polls = 0
        self.last_state: str | None = None
        self.last_classified: list[ClassifiedProcess] = []

    def status(self) -> str | None:
        """A few words for systemd's STATUS=: what the last poll saw, or why none did."""
        if self.last_state is None:
            return None
        if self.last_state in ("hung", "busy"):
            return "GPU: NVML poll stuck"
        if self.last_state != "ok":
            return "GPU: NVML unavailable"
        hosts = sum(1 for p in self.last_classified if p.klass == "host_process")
        count = len(self.last_classified)
        return f"GPU: {count} process{'' if count == 1 else 'es'} ({hosts} on the host)"

    def gpu_process_counts(self) -> dict[str, int]:
        """Processes on GPUs at the last successful poll, by class (the metrics hook).

        A process on several devices counts once.
        """
        classes = ("managed_container", "unmanaged_container", "host_process", "infrastructure")
        pids: dict[str, set[int]] = {klass: set() for klass in classes}
        for process in self.last_classified:
            if process.klass in pids:
                pids[process.klass].add(process.pid)
        return {klass: len(found) for klass, found in pids.items()}

    def poll_once(self) -> None:
        """One poll: events for what changed, then the inventory. Never raises."""
        try:
            self._poll()
        except Exception as exc:  # one bad poll must not end GPU polling
            problem = f"GPU poll failed: {exc!r}"
            if problem != self._poll_problem:  # the same failure each poll is said once
                self._say(problem)
            self._poll_problem = problem
            return
        self._poll_problem = None

    def _poll(self) -> None:
        answer = self._poller.poll()
        self.last_state = answer.state
        if answer.state == "hung":
            if answer.report:
                self._emit([nvml_unresponsive_event(self._poller.timeout_s)])
                self._say(f"{answer.reason or 'NVML poll hung'}; left running, polls paused")
            return
        snapshot = answer.snapshot
        if answer.state != "ok" or snapshot is None or snapshot.error is not None:
            if answer.report:
                reason = answer.reason or (snapshot.error if snapshot else None) or "no answer"
                self._say(f"GPU polling: NVML unavailable: {reason}; retrying with backoff")
            return
        self._observe(snapshot)

    def _observe(self, snapshot: NvmlSnapshot) -> None:
        self.polls += 1
        self._devices.update(snapshot)
        processes = procfs.read_processes([p.pid for p in snapshot.processes], self._proc)
        wanted = {i.container_id for i in processes.values() if i and i.container_id}
        facts, running = self._containers.facts(wanted)
        classified = classify(snapshot, processes, facts, user_by_uid=self._user_by_uid)
        self.last_classified = classified
        started = {
            pid: procfs.started_at(info.starttime, self._btime, self._ticks)
            for pid, info in processes.items()
            if info is not None
        }
        now = self._clock()
        flagged = {cid for cid, f in facts.items() if f.flagged_unmanaged}
        subjects = subjects_of(classified, started, flagged=flagged)
        outcome = step(self._state, snapshot, subjects, now, running_containers=running)
        self._state = outcome.state
        self._emit(outcome_events(outcome))
        self._save_state()
        if self._inventory_file is not None:
            self._write_inventory(now, facts.values(), classified, complete=running is not None)

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self._submit(event)

    def _save_state(self) -> None:
        try:
            save_state(self._state_path, self._state)
        except OSError as exc:
            problem = f"cannot save GPU detection state in {self._state_path}: {exc.strerror}"
            if problem != self._save_problem:
                self._say(problem)
            self._save_problem = problem
            return
        self._save_problem = None

    def _write_inventory(
        self,
        now: float,
        facts: Iterable[ContainerFacts],
        classified: list[ClassifiedProcess],
        *,
        complete: bool,
    ) -> None:
        reported = [
            t.process for t in self._state.tracked.values() if t.kind == "host" and t.reported
        ]
        computing = {p.container_id for p in classified if p.container_id is not None}
        inventory = build_inventory(
            now,
            facts,
            reported,
            computing=computing,
            previous=self._previous,
            containers_complete=complete,
        )
        path = self._inventory_file
        if path is None:
            return
        try:
            write_inventory(path, inventory)
        except OSError as exc:
            problem = f"cannot write the workload inventory {path}: {exc.strerror}"
            if problem != self._inventory_problem:
                self._say(problem)
            self._inventory_problem = problem
            return
        self._inventory_problem = None
        self._previous = inventory
