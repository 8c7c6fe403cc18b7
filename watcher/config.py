"""The watcher's settings: /etc/ds01/watcher.toml, then DS01_* variables, then flags.

Built once by `load_settings` and passed down; nothing reads the environment later.
Defaults suit the systemd unit (root). Run as another user, or where /var is not
writable, the paths nobody set fall back to one local directory, and the notes say
where.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import tomllib

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_CONFIG = "/etc/ds01/watcher.toml"
PATH_FIELDS = ("events_file", "state_dir", "socket", "spool_dir")
SYSTEM_PATHS = {
    "events_file": "/var/log/ds01/events.jsonl",
    "state_dir": "/var/lib/ds01",
    "socket": "/run/ds01/events.sock",
    "spool_dir": "/var/spool/ds01/events",
}
LOCAL_NAMES = {
    "events_file": "events.jsonl",
    "state_dir": "state",
    "socket": "events.sock",
    "spool_dir": "spool",
}


class ConfigError(ValueError):
    """Settings that cannot be used; the message says which and what to do."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the service needs to know, with defaults for the systemd unit."""

    events_file: str = SYSTEM_PATHS["events_file"]
    state_dir: str = SYSTEM_PATHS["state_dir"]
    socket: str = SYSTEM_PATHS["socket"]
    spool_dir: str = SYSTEM_PATHS["spool_dir"]
    docker_host: str = "unix:///var/run/docker.sock"
    gpu: Literal["auto", "off"] = "auto"
    # Seconds between NVML polls, and how long one may take before it counts as hung.
    gpu_interval_seconds: float = 30.0
    gpu_timeout_seconds: float = 10.0
    # The workload inventory dashboards read; empty: <state_dir>/workload-inventory.json.
    inventory_file: str = ""
    dcgm_url: str | None = "http://127.0.0.1:9400/metrics"
    # The DCGM exporter watchdog (seconds unless said otherwise); docs/watcher.md.
    dcgm_interval: float = 30.0  # between probes
    dcgm_timeout: float = 10.0  # for the whole answer, connect to last byte
    dcgm_collect_interval: float = 30.0  # the exporter's own -c, in seconds
    dcgm_slow: float = 5.0  # a whole answer slower than this is "slow" (logged only)
    dcgm_hung_after: int = 3  # probes in a row without a whole answer
    dcgm_unit: str = "ds01-dcgm-exporter.service"
    dcgm_container: str = "ds01-dcgm-exporter"
    dcgm_restarts_per_hour: int = 4
    dcgm_grace: float = 60.0  # after a restart; also the first backoff step
    dcgm_backoff_max: float = 1800.0
    dcgm_stable: float = 600.0  # healthy this long forgets the backoff and the hour's count
    dcgm_stop_timeout: float = 20.0  # graceful stop before the engine kills
    # The log file's group (0640); unused when the group does not exist.
    log_group: str = "adm"
    queue_size: int = 65_536
    batch_max: int = 4096
    # Per-uid token bucket for the ingest socket; uids listed are not limited.
    rate_per_second: float = 200.0
    rate_burst: float = 2000.0
    rate_exempt_uids: tuple[int, ...] = (0,)
    reject_window_seconds: float = 60.0
    # Short: the library spools whenever the socket queue is full, and those events
    # should reach the log about as soon as the others.
    spool_interval_seconds: float = 2.0
    spool_max_bytes: int = 1_048_576
    # A spool file of more lines is set aside (the library writes one event a file).
    spool_max_lines: int = 10_000
    stop_timeout_seconds: float = 20.0
    # Prometheus endpoint on 127.0.0.1:<port>; off (None) until configured.
    metrics_port: int | None = None
    # A loop (writer, socket reader, main) that did not turn for this long is logged
    # as watcher.stall when it turns again.
    stall_report_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.queue_size < 1 or self.batch_max < 1:
            msg = "queue_size and batch_max must be at least 1"
            raise ConfigError(msg)
        if self.rate_per_second < 0 or self.rate_burst < 1:
            msg = "rate_per_second must be >= 0 and rate_burst >= 1"
            raise ConfigError(msg)
        for field in (
            "reject_window_seconds",
            "spool_interval_seconds",
            "stop_timeout_seconds",
            "gpu_interval_seconds",
            "gpu_timeout_seconds",
            "stall_report_seconds",
            "spool_max_lines",
        ):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{field} must be greater than 0")
        self._check_dcgm()
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:  # noqa: PLR2004
            raise ConfigError(f"metrics_port {self.metrics_port} is not a TCP port (1-65535)")
        if len(self.socket.encode()) > 107:  # noqa: PLR2004 - sun_path holds 108 bytes
            raise ConfigError(f"socket path {self.socket!r} is longer than 107 bytes")

    def _check_dcgm(self) -> None:
        for field in ("dcgm_interval", "dcgm_timeout", "dcgm_collect_interval", "dcgm_slow"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{field} must be greater than 0")
        for field in ("dcgm_grace", "dcgm_backoff_max", "dcgm_stable", "dcgm_stop_timeout"):
            if getattr(self, field) < 0:
                raise ConfigError(f"{field} must be 0 or more")
        if self.dcgm_hung_after < 1:
            msg = "dcgm_hung_after must be at least 1"
            raise ConfigError(msg)
        if self.dcgm_restarts_per_hour < 0:
            msg = "dcgm_restarts_per_hour must be 0 (never restart) or more"
            raise ConfigError(msg)
        if self.dcgm_url is not None:
            from watcher.dcgm.probe import parse_metrics_url  # noqa: PLC0415 - only when set

            try:
                parse_metrics_url(self.dcgm_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None

    def summary(self) -> dict[str, Any]:
        """Return the settings as plain data, for ``watcher.start``."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


ENV_VARS = {
    "DS01_EVENTS_FILE": "events_file",
    "DS01_STATE_DIR": "state_dir",
    "DS01_EVENTS_SOCKET": "socket",
    "DS01_EVENTS_SPOOL": "spool_dir",
    "DS01_DOCKER_HOST": "docker_host",
    "DS01_GPU": "gpu",
    "DS01_GPU_INTERVAL": "gpu_interval_seconds",
    "DS01_INVENTORY_FILE": "inventory_file",
    "DS01_DCGM_URL": "dcgm_url",
    "DS01_LOG_GROUP": "log_group",
    "DS01_METRICS_PORT": "metrics_port",
}


def _flag_value(field: str, value: str) -> object:
    if field in ("dcgm_url", "metrics_port") and value.lower() == "off":
        return None
    return value


def local_base(env: Mapping[str, str], cwd: str) -> str:
    """Return where an unprivileged watcher keeps everything: $XDG_STATE_HOME/ds01 or ./.ds01."""
    xdg = env.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return str(Path(xdg) / "ds01")
    return str(Path(cwd) / ".ds01")


def system_paths_usable(euid: int, writable: Callable[[str], bool]) -> bool:
    """Tell whether we are root on a machine whose /var and /run can be written."""
    return euid == 0 and writable("/var") and writable("/run")


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    euid: int | None = None,
    writable: Callable[[str], bool] | None = None,
    cwd: str | None = None,
) -> tuple[Settings, list[str]]:
    """Merge the config file, then ``env``, then ``flags``; return settings and notes.

    ``flags`` maps a field name (or ``config``) to its value; None means not given.
    Raises ConfigError with one line saying what to fix.
    """
    flags = dict(flags or {})
    env = os.environ if env is None else env
    config_path = flags.pop("config", None) or env.get("DS01_WATCHER_CONFIG") or None
    values = _read_config(config_path)
    for var, field in ENV_VARS.items():
        if env.get(var):
            values[field] = _flag_value(field, env[var])
    for field, value in flags.items():
        if value is not None:
            values[field] = _flag_value(field, value)

    notes: list[str] = []
    euid = os.geteuid() if euid is None else euid
    writable = writable or (lambda path: os.access(path, os.W_OK))
    unset = [field for field in PATH_FIELDS if field not in values]
    if unset and not system_paths_usable(euid, writable):
        base = local_base(env, cwd or str(Path.cwd()))
        values.update({field: str(Path(base) / LOCAL_NAMES[field]) for field in unset})
        notes.append(
            f"not root or /var is not writable: using {base} for {', '.join(unset)}"
            f" (set them in {config_path or DEFAULT_CONFIG}, DS01_* or flags)"
        )
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except (msgspec.ValidationError, RecursionError) as exc:
        msg = f"invalid setting: {exc}"
        raise ConfigError(msg) from exc
    if not settings.inventory_file:
        inventory = str(Path(settings.state_dir) / "workload-inventory.json")
        settings = msgspec.structs.replace(settings, inventory_file=inventory)
    return settings, notes


def _read_config(path: str | None) -> dict[str, object]:
    """Read the TOML file; a missing default file is fine, a missing named one is not."""
    try:
        with Path(path or DEFAULT_CONFIG).open("rb") as handle:
            values: dict[str, object] = tomllib.load(handle)
    except FileNotFoundError:
        if path is not None:
            msg = f"config file {path} does not exist"
            raise ConfigError(msg) from None
        return {}
    except (OSError, tomllib.TOMLDecodeError, RecursionError) as exc:
        msg = f"cannot read config file {path or DEFAULT_CONFIG}: {exc}"
        raise ConfigError(msg) from exc
    if "dcgm_url" in values and str(values["dcgm_url"]).lower() == "off":
        values["dcgm_url"] = None
    return values
