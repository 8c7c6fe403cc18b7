"""CPU cost of one DCGM watchdog probe (fetch, parse, decide) on answers of real sizes.

    python bench/dcgm_probe.py [--probes 200]

Serves a generated exporter answer from a separate process (python -m http.server, so
its CPU is not counted) and runs the watchdog's probe against it: the CPU time of this
process per probe, the wall time per probe, and the answer's size. Answers: 8 GPUs with
the exporter's default counters, and the same 8 GPUs each split into 7 MIG instances.
Also prints how long a hang takes to be found with the default settings (computed).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT)]

from watcher.config import Settings  # noqa: E402
from watcher.dcgm.job import DcgmProbe  # noqa: E402
from watcher.dcgm.watchdog import WatchdogPolicy  # noqa: E402

# The families of the exporter's default-counters.csv (names only matter for size).
FAMILIES = [
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
]  # fmt: skip


def answer(gpus: int, mig: int, energy: int) -> str:
    """One exporter answer: every family for every GPU (or GPU instance)."""
    lines = []
    for family in FAMILIES:
        kind = "counter" if "ENERGY" in family or "COUNTER" in family else "gauge"
        lines += [f"# HELP {family} {family}.", f"# TYPE {family} {kind}"]
        for gpu in range(gpus):
            uuid = f"GPU-{gpu:08x}-d595-d1c7-d1d2-179bcfa61660"
            for instance in range(mig or 1):
                extra = f',GPU_I_PROFILE="1g.10gb",GPU_I_ID="{instance + 7}"' if mig else ""
                lines.append(
                    f'{family}{{gpu="{gpu}",UUID="{uuid}",pci_bus_id="00000000:{gpu:02X}:00.0",'
                    f'device="nvidia{gpu}",modelName="NVIDIA A100-SXM4-80GB"{extra},'
                    f'Hostname="gpu01"}} {energy + gpu}'
                )
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(gpus: int, mig: int, probes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        body = answer(gpus, mig, 10**9)
        (Path(tmp) / "metrics").write_text(body)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port), "-d", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            events: list[object] = []
            probe = DcgmProbe(
                f"http://127.0.0.1:{port}/metrics",
                lambda e: events.append(e) or True,
                # A counter that never moves would be stale: the file stays; judge only hangs.
                policy=WatchdogPolicy(collect_interval_s=1e9),
                timeout=10.0,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                probe.probe()
                if probe.watchdog.state == "healthy":
                    break
                time.sleep(0.1)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(probes):
                probe.probe()
            cpu = (time.process_time() - cpu0) / probes
            wall = (time.perf_counter() - wall0) / probes
            if probe.watchdog.state != "healthy":
                sys.exit(f"the probe did not stay healthy: {probe.watchdog.error}")
            print(
                f"{gpus} GPUs x {mig or 1} {'MIG instances' if mig else 'device'}:"
                f" {len(body) / 1024:7.1f} KiB, {body.count(chr(10))} lines;"
                f" CPU {cpu * 1000:6.2f} ms/probe, wall {wall * 1000:6.2f} ms/probe;"
                f" at one probe per 30 s: {cpu / 30 * 100:.4f} % of a core"
            )
        finally:
            server.terminate()
            server.wait()


def detection() -> None:
    s = Settings()
    k, interval, timeout = s.dcgm_hung_after, s.dcgm_interval, s.dcgm_timeout
    # The hang starts just before a probe (best) or just after one succeeded (worst).
    best = (k - 1) * interval + timeout
    worst = k * interval + timeout
    stale = s.dcgm_collect_interval * 3
    print(
        f"defaults: interval {interval:g} s, timeout {timeout:g} s, hung after {k}:"
        f" a hang is found {best:g}-{worst:g} s after it starts;"
        f" then restarted (graceful stop <= {s.dcgm_stop_timeout:g} s)."
        f" A frozen counter is stale {stale:g} s after a probe first saw its last value,"
        f" {stale:g}-{stale + interval:g} s after it last moved"
        f" (3 x {s.dcgm_collect_interval:g} s collect interval)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    measure(8, 0, args.probes)
    measure(8, 7, max(args.probes // 4, 10))
    detection()


if __name__ == "__main__":
    main()
