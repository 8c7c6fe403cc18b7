"""``ds01-watcher doctor``: gather the facts (each within a bound), run the checks, report.

Exit 0 when nothing needs action, 1 when a check failed. Every probe has a timeout:
NVML runs in a child process (a stuck driver hangs the caller), Docker and the DCGM
exporter get a few seconds each, so the doctor answers even on a sick host.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import TYPE_CHECKING

from watcher.doctor.checks import Check, Facts, PathFacts, run_checks
from watcher.sdnotify import systemd_running

if TYPE_CHECKING:
    from watcher.config import Settings

LOGROTATE_CONFIG = "/etc/logrotate.d/ds01"
UNITS = ("ds01-watcher.socket", "ds01-watcher.service")
PROBE_TIMEOUT = 3.0
NVML_TIMEOUT = 5.0
TAIL_BYTES = 4 * 1024 * 1024

_NVML_PROBE = """
try:
    from detectors.nvml import NvmlReader
except ImportError:  # the GPU side is not installed: ask pynvml directly
    import pynvml
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        print("missing:libnvidia-ml.so.1 not found")
    except Exception as exc:
        print("error:" + (str(exc) or type(exc).__name__))
    else:
        print("ok:%d" % pynvml.nvmlDeviceGetCount())
else:
    snapshot = NvmlReader().read()
    if snapshot.error is None:
        print("ok:%d" % len(snapshot.gpus))
    elif "not found" in snapshot.error:
        print("missing:" + snapshot.error)
    else:
        print("error:" + snapshot.error)
"""


def probe_docker(host: str, timeout: float = PROBE_TIMEOUT) -> tuple[str | None, bool]:
    """GET /_ping; return (None, False) when it answers, else (why, permission denied?)."""
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        elif host.startswith(("tcp://", "http://")):
            hostport = host.split("://", 1)[1].rstrip("/")
            name, _, port = hostport.rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port))
        else:
            return f"cannot probe {host!r} (unix:// or tcp:// only)", False
    except ValueError:
        return f"cannot read {host!r}", False
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(1024)
        except PermissionError:
            return "permission denied", True
        except OSError as exc:
            return exc.strerror or str(exc), False
    if b" 200 " not in answer.split(b"\r\n", 1)[0]:
        return f"unexpected answer {answer[:60]!r}", False
    return None, False


def probe_nvml(timeout: float = NVML_TIMEOUT) -> str:
    """Initialise NVML in a child process: ok:N, missing:..., error:... or hung."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _NVML_PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "hung"
    except OSError as exc:
        return f"error:{exc}"
    out = result.stdout.strip().splitlines()
    if out:
        return out[-1]
    tail = result.stderr.strip().splitlines()[-1:] or ["no answer"]
    return f"error:{tail[0]}"


def path_facts(path: str) -> PathFacts:
    """Lstat of one path (never follows a link planted there)."""
    try:
        info = os.lstat(path)
    except PermissionError:
        return PathFacts(path, denied=True)
    except OSError:
        return PathFacts(path)
    try:
        group: str | None = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = None
    return PathFacts(path, info.st_mode, info.st_uid, info.st_gid, group)


def probe_socket(path: str) -> str:
    """accepting, missing, not-a-socket, refused or error:..."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return "not-a-socket"
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"error:{exc.strerror}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(path)  # a datagram connect checks that someone is bound; sends nothing
        except ConnectionRefusedError:
            return "refused"
        except OSError as exc:
            return f"error:{exc.strerror}"
    return "accepting"


def spool_facts(spool: str, now: float) -> tuple[int | None, float | None, int]:
    """(waiting files, age of the oldest, quarantined files)."""
    try:
        entries = list(os.scandir(spool))
    except OSError:
        return None, None, 0
    waiting, oldest, quarantined = 0, None, 0
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                waiting += 1
                mtime = entry.stat(follow_symlinks=False).st_mtime
                oldest = mtime if oldest is None else min(oldest, mtime)
            elif entry.is_dir(follow_symlinks=False) and "quarantine" in entry.name:
                quarantined += len(os.listdir(entry.path))
    # The spool drain sets refused entries aside in <spool>.quarantine, beside it.
    with contextlib.suppress(OSError):
        quarantined += len(os.listdir(spool.rstrip("/") + ".quarantine"))
    return waiting, (None if oldest is None else max(0.0, now - oldest)), quarantined


def probe_logrotate(config: str) -> str | None:
    """None when the config is missing; "" when logrotate -d accepts it; else its error."""
    if not os.path.exists(config):
        return None
    # /usr/sbin is not on every user's PATH.
    logrotate = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
    if logrotate is None:
        return "logrotate is not installed (apt-get install logrotate)"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = subprocess.run(
                [logrotate, "-d", "-s", os.path.join(tmp, "state"), config],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot run logrotate: {exc}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if result.returncode != 0 or errors:
        return (errors or [f"exit {result.returncode}"])[0]
    return ""


def probe_dcgm(url: str, timeout: float = PROBE_TIMEOUT) -> str:
    """Ok when /metrics answers 200 with DCGM series within the bound, else what happened."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - admin's URL
            body = answer.read(8 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({reason})"
    return "ok" if b"DCGM_" in body else "answers, but with no DCGM series (collection stuck?)"


def unit_states() -> dict[str, str]:
    """Systemctl is-active of the watcher's units."""
    states = {}
    for unit in UNITS:
        try:
            out = subprocess.run(
                ["systemctl", "is-active", unit],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            states[unit] = out.stdout.strip() or "unknown"
        except (OSError, subprocess.TimeoutExpired):
            states[unit] = "unknown"
    return states


def log_tail_facts(path: str, now: float) -> tuple[float | None, str, float | None, str]:
    """(newest age, its type, last watcher.gap age, its details) from the log's tail."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None, "", None, ""
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - TAIL_BYTES), os.SEEK_SET)
        data = os.read(fd, TAIL_BYTES)
    finally:
        os.close(fd)
    newest: tuple[float | None, str] = (None, "")
    gap: tuple[float | None, str] = (None, "")
    for raw in reversed(data.splitlines()):
        event = _decode(raw)
        if event is None:
            continue
        when = _epoch(event.get("timestamp"))
        if newest[0] is None and when is not None:
            newest = (now - when, _printable(str(event.get("event_type", ""))[:80]))
        if event.get("event_type") == "watcher.gap" and when is not None:
            details = event.get("details")
            pairs = sorted(details.items()) if isinstance(details, dict) else []
            gap = (now - when, _printable(", ".join(f"{k}={v}" for k, v in pairs)[:160]))
            break
    return newest[0], newest[1], gap[0], gap[1]


def _printable(text: str) -> str:
    """Text from the log, safe for a terminal (no escape sequences)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _decode(raw: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # a line nested too deep is no event either
        return None
    return value if isinstance(value, dict) else None


def _epoch(value: object) -> float | None:
    from datetime import datetime  # noqa: PLC0415

    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def shipped_logrotate() -> str | None:
    """The logrotate file this package ships (checkout or wheel), to check in its place."""
    # watcher/ sits beside deploy/ in a checkout and beside ds01_deploy/ in site-packages.
    above = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for folder in ("deploy", "ds01_deploy"):
        candidate = os.path.join(above, folder, "logrotate", "ds01")
        if os.path.isfile(candidate):
            return candidate
    return None


def gather(settings: Settings, logrotate_config: str = LOGROTATE_CONFIG) -> Facts:
    """Look at the host (read only, each probe bounded)."""
    now = time.time()
    docker_error, permission = probe_docker(settings.docker_host)
    nvml = probe_nvml() if settings.gpu != "off" else None
    events_dir = os.path.dirname(settings.events_file) or "."
    waiting, oldest, quarantined = spool_facts(settings.spool_dir, now)
    free: int | None = None
    total: int | None = None
    with contextlib.suppress(OSError):
        vfs = os.statvfs(events_dir)
        free, total = vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize
    gpus = int(nvml[3:]) if nvml and nvml.startswith("ok:") else 0
    dcgm = probe_dcgm(settings.dcgm_url) if settings.dcgm_url else None
    systemd = systemd_running()
    newest_age, newest_type, gap_age, gap_details = log_tail_facts(settings.events_file, now)
    return Facts(
        docker_host=settings.docker_host,
        docker_error=docker_error,
        docker_permission=permission,
        gpu_setting=settings.gpu,
        nvml=nvml,
        events_dir=path_facts(events_dir),
        events_file=path_facts(settings.events_file),
        socket_path=settings.socket,
        socket_state=probe_socket(settings.socket),
        spool_dir=settings.spool_dir,
        spool_files=waiting,
        spool_oldest_age=oldest,
        quarantined=quarantined,
        disk_free=free,
        disk_total=total,
        logrotate_config=logrotate_config,
        logrotate=probe_logrotate(logrotate_config),
        logrotate_shipped=_shipped_result(logrotate_config),
        dcgm_url=settings.dcgm_url,
        dcgm=dcgm,
        gpus=gpus,
        systemd=systemd,
        units=unit_states() if systemd else {},
        newest_age=newest_age,
        newest_type=newest_type,
        last_gap_age=gap_age,
        last_gap_details=gap_details,
    )


def _shipped_result(config: str) -> str | None:
    """With the admin's file missing: what logrotate -d says of the shipped one."""
    if os.path.exists(config):
        return None
    shipped = shipped_logrotate()
    return None if shipped is None else probe_logrotate(shipped)


def render(checks: list[Check]) -> str:
    """One screen: a line per check, its fix under it when something is wrong."""
    lines = ["ds01-watcher doctor"]
    for check in checks:
        label = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "-"}[check.status]
        lines.append(f"  {label:<5} {check.name:<14} {check.summary}")
        if check.fix and check.status in ("warn", "fail"):
            lines.append(f"  {'':<5} {'':<14} fix: {check.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append(
        f"{failed} problem(s) need action." if failed else "healthy: nothing needs action."
    )
    return "\n".join(lines) + "\n"


def run_doctor(
    settings: Settings, *, as_json: bool = False, logrotate_config: str | None = None
) -> int:
    """Gather, check, print; 0 when healthy, 1 when something needs action."""
    checks = run_checks(gather(settings, logrotate_config or LOGROTATE_CONFIG))
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        report = {"healthy": not failed, "checks": [asdict(c) for c in checks]}
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        sys.stdout.write(render(checks))
    return 1 if failed else 0
