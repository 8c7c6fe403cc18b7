"""``ds01-watcher gpus``: one NVML poll of its own, attributed, printed. No watcher needed.

Container facts come from Docker when it answers (else the table says so and
containers show by id). NVML missing or hung is one line and exit status 1.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

from detectors import procfs
from detectors.classify import classify
from watcher.gpu.directory import ContainerDirectory
from watcher.gpu.monitor import user_by_uid
from watcher.gpu.table import gpu_view, render_table
from watcher.gpu.wiring import docker_inspect, make_poller

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import Settings
    from watcher.gpu.monitor import Poller


def docker_reachable(docker_host: str | None) -> str | None:
    """None when Docker answers a ping; else the one line saying it does not."""
    try:
        import docker  # noqa: PLC0415 - only for this command

        docker.APIClient(base_url=docker_host, timeout=5).ping()
    except Exception as exc:
        return (
            f"Docker not reachable at {docker_host} ({type(exc).__name__}):"
            " containers show by id, users unknown"
        )
    return None


def show_gpus(
    settings: Settings,
    *,
    as_json: bool = False,
    out: TextIO | None = None,
    poller: Poller | None = None,
    docker_check: Callable[[str | None], str | None] = docker_reachable,
    proc: str = procfs.PROC,
) -> int:
    """Poll, classify and print; returns the exit status. Never raises."""
    out = out or sys.stdout
    if poller is None:
        poller, problem = make_poller(settings.gpu_timeout_seconds)
        if poller is None:
            return _fail(out, as_json, "unavailable", problem or "NVML unavailable")
    answer = poller.poll()
    snapshot = answer.snapshot
    if answer.state == "hung":
        return _fail(out, as_json, "hung", answer.reason or "NVML did not answer")
    if answer.state != "ok" or snapshot is None or snapshot.error is not None:
        reason = answer.reason or (snapshot.error if snapshot else None) or "no answer"
        return _fail(out, as_json, "unavailable", f"NVML unavailable: {reason}")
    docker_problem = docker_check(settings.docker_host)
    inspect = docker_inspect(settings.docker_host) if docker_problem is None else None
    processes = procfs.read_processes([p.pid for p in snapshot.processes], proc)
    wanted = {i.container_id for i in processes.values() if i and i.container_id}
    facts, _running = ContainerDirectory(None, inspect, user_by_uid=user_by_uid).facts(wanted)
    classified = classify(snapshot, processes, facts, user_by_uid=user_by_uid)
    view = gpu_view(snapshot, classified)
    if as_json:
        view = {"nvml": "ok", "docker": docker_problem or "ok", **view}
        out.write(json.dumps(view, indent=2) + "\n")
    else:
        out.write(render_table(view, [docker_problem] if docker_problem else []))
    return 0


def _fail(out: TextIO, as_json: bool, state: str, line: str) -> int:
    if as_json:
        out.write(json.dumps({"nvml": state, "reason": line, "gpus": []}) + "\n")
    sys.stderr.write(f"ds01-watcher gpus: {line}\n")
    return 1
