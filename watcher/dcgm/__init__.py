"""The DCGM exporter watchdog: probe /metrics, judge it, restart it gracefully, log it.

`probe` fetches with a hard deadline, `metrics` reads the answer with prometheus-client's
parser, `watchdog` is the pure state machine, `restart` the systemd and Docker paths, and
`job` ties them into one scheduler job (`dcgm_probe_from_settings`).
"""

from __future__ import annotations
