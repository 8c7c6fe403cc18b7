"""Which parts of the watcher run in this version: the one place to flip when one lands.

The catalogue (`ds01-events types`), `ds01-events --concepts` and `ds01-watcher --help`
read these, so none of them describes as running what is not built yet. No imports:
`ds01-watcher --help` reads it too.
"""

from __future__ import annotations

GPU_POLL_RUNS = True  # the NVML poll (host GPU processes, watcher/gpu)
DCGM_WATCHDOG_RUNS = True  # the DCGM exporter probe and restarts (watcher/dcgm)
RUNS = {"gpu-poll": GPU_POLL_RUNS, "dcgm-watchdog": DCGM_WATCHDOG_RUNS}
NOT_YET = {
    "gpu-poll": "not written yet: the watcher's NVML poll is still being built",
    "dcgm-watchdog": "not written yet: the watcher's DCGM watchdog is still being built",
}
